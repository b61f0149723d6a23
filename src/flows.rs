//! The network flow matrix ("matrice des flux"), generated from the live
//! configuration: every flow a vendor's technician, an operator or Portier itself
//! opens, with its exposure and its encryption.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Serialize;

use crate::redact::redact_url;
use crate::store::{Device, Vendor};

/// What the matrix needs to know about this node.
#[derive(Debug, Clone)]
pub struct NodeFlows {
    pub gateway: SocketAddr,
    pub gateway_tls_versions: Vec<String>,
    pub api: SocketAddr,
    /// Database URL (shown redacted).
    pub database: String,
    /// Webhook URLs (shown redacted: they may carry credentials).
    pub webhooks: Vec<String>,
    pub syslog: Option<String>,
    /// Load balancers relaying technicians with a PROXY protocol v2 header.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Flow {
    pub id: String,
    pub description: String,
    /// Whether the flow crosses the internet.
    pub internet_exposure: String,
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub encryption: String,
}

/// The TLS 1.3 cipher suites the gateway offers, by name.
pub fn tls13_suites() -> String {
    rustls::crypto::ring::default_provider()
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .map(|s| format!("{:?}", s.suite()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn port_of(address: &str) -> &str {
    address.rsplit_once(':').map_or("?", |(_, p)| p)
}

/// Builds the matrix: vendors' inbound flows, tunnels to devices, then Portier's own.
pub fn matrix(node: &NodeFlows, vendors: &[Vendor], devices: &[Device]) -> Vec<Flow> {
    let mut rows = Vec::new();
    let versions = node
        .gateway_tls_versions
        .iter()
        .map(|v| format!("TLS {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let tls = format!(
        "{versions}; suites {}; client certificate required (vendor CA)",
        tls13_suites()
    );
    for v in vendors.iter().filter(|v| v.enabled) {
        for (i, n) in v.networks.iter().enumerate() {
            rows.push(Flow {
                id: format!("vendor-{}-{}", slug(&v.name), i + 1),
                description: format!("Technicians of {} reach the Portier gateway", v.name),
                internet_exposure: "yes: inbound from the vendor's declared network".into(),
                source: format!("{n} ({})", v.name),
                destination: format!("portier gateway {}", node.gateway),
                protocol: format!("TCP/{}", node.gateway.port()),
                encryption: tls.clone(),
            });
        }
    }
    for (i, n) in node.proxy_protocol_from.iter().enumerate() {
        rows.push(Flow {
            id: format!("balancer-{}", i + 1),
            description: "The TCP load balancer relays technicians' connections, each opened with a PROXY protocol v2 header naming the technician's address".into(),
            internet_exposure: "no: between the balancer and the Portier nodes".into(),
            source: format!("{n} (load balancer)"),
            destination: format!("portier gateway {}", node.gateway),
            protocol: format!("TCP/{} (PROXY v2 header, then TLS)", node.gateway.port()),
            encryption: format!("{tls}; end to end, the balancer does not terminate TLS"),
        });
    }
    for d in devices.iter().filter(|d| d.enabled) {
        for vid in &d.vendor_ids {
            let Some(v) = vendors.iter().find(|v| &v.id == vid && v.enabled) else {
                continue;
            };
            rows.push(Flow {
                id: format!("device-{}-{}", d.name, slug(&v.name)),
                description: format!(
                    "Tunnel of {} to {} ({}), inside an approved window",
                    v.name, d.name, d.protocol
                ),
                internet_exposure: "no: hospital internal network".into(),
                source: "portier gateway".into(),
                destination: d.address.clone(),
                protocol: format!("TCP/{} ({})", port_of(&d.address), d.protocol),
                encryption: format!("none added on this leg: {} as the device speaks it", d.protocol),
            });
        }
    }
    rows.push(Flow {
        id: "portier-api".into(),
        description: "Operators, security and auditors use the admin API".into(),
        internet_exposure: "no: hospital administration network".into(),
        source: "hospital operators".into(),
        destination: format!("portier api {}", node.api),
        protocol: format!("TCP/{} (HTTPS)", node.api.port()),
        encryption: format!("TLS 1.3; bearer tokens; suites {}", tls13_suites()),
    });
    let database = redact_url(&node.database);
    rows.push(if database.starts_with("sqlite:") {
        Flow {
            id: "portier-database".into(),
            description: "Portier state and audit trail (embedded SQLite)".into(),
            internet_exposure: "no".into(),
            source: "portier".into(),
            destination: database,
            protocol: "local file, no network flow".into(),
            encryption: "filesystem (encrypt the volume)".into(),
        }
    } else {
        Flow {
            id: "portier-database".into(),
            description: "Portier state and audit trail (shared PostgreSQL)".into(),
            internet_exposure: "no: hospital internal network".into(),
            source: "portier nodes".into(),
            destination: database,
            protocol: "TCP (PostgreSQL)".into(),
            encryption: "as set by the URL's sslmode".into(),
        }
    });
    for (i, url) in node.webhooks.iter().map(|u| redact_url(u)).enumerate() {
        rows.push(Flow {
            id: format!("portier-webhook-{}", i + 1),
            description: "Notifications to the hospital's tools".into(),
            internet_exposure: "depends on the receiver".into(),
            source: "portier".into(),
            destination: url.clone(),
            protocol: if url.starts_with("https://") {
                "HTTPS".into()
            } else {
                "HTTP".into()
            },
            encryption: if url.starts_with("https://") {
                "TLS; Standard Webhooks signature (HMAC-SHA256 of id.timestamp.body)".into()
            } else {
                "none (plain HTTP); Standard Webhooks signature (HMAC-SHA256 of id.timestamp.body)".into()
            },
        });
    }
    if let Some(target) = &node.syslog {
        rows.push(Flow {
            id: "portier-syslog".into(),
            description: "Events to the SIEM (RFC 5424)".into(),
            internet_exposure: "no: hospital internal network".into(),
            source: "portier".into(),
            destination: target.clone(),
            protocol: if target.starts_with("tcp://") {
                "TCP (syslog)".into()
            } else {
                "UDP (syslog)".into()
            },
            encryption: "none".into(),
        });
    }
    rows
}

/// The columns, in order.
pub const COLUMNS: [&str; 7] = [
    "id",
    "description",
    "internet_exposure",
    "source",
    "destination",
    "protocol",
    "encryption",
];

fn fields(f: &Flow) -> [&str; 7] {
    [
        &f.id,
        &f.description,
        &f.internet_exposure,
        &f.source,
        &f.destination,
        &f.protocol,
        &f.encryption,
    ]
}

/// CSV (RFC 4180).
pub fn to_csv(rows: &[Flow]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for r in rows {
        w.write_record(fields(r))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A Markdown table.
pub fn to_markdown(rows: &[Flow]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("| {} |\n|{}\n", COLUMNS.join(" | "), " --- |".repeat(COLUMNS.len()));
    for r in rows {
        let cells: Vec<String> = fields(r).iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}
