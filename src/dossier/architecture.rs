//! The architecture schema of the deployment as it is: the nodes, the database,
//! the balancer, vendors' networks, devices grouped by subnet, the admin API's
//! accounts per role — as Graphviz DOT and Mermaid.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::domain::Role;
use crate::store::{Device, User, Vendor};

/// What the schema shows.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Node names (this configuration's, then the database's).
    pub nodes: Vec<String>,
    pub gateway: String,
    pub api: String,
    /// `SQLite` or `PostgreSQL`.
    pub database: String,
    pub balancers: Vec<String>,
    pub vendors: Vec<Vendor>,
    pub devices: Vec<Device>,
    pub users: Vec<User>,
}

/// The subnet a device address lies in: its /24 (IPv4) or /64 (IPv6), or the
/// host name itself when the address is a name.
pub fn subnet_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            let prefix = if ip.is_ipv4() { 24 } else { 64 };
            ipnet::IpNet::new(ip, prefix)
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| host.to_owned())
        }
        Err(_) => host.to_owned(),
    }
}

fn id(prefix: &str, s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Mermaid labels: no quotes, brackets or pipes inside.
fn mlabel(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '[' | ']' | '(' | ')' | '|' | '{' | '}' | '<' | '>' => ' ',
            c => c,
        })
        .collect()
}

impl Deployment {
    fn subnets(&self) -> BTreeMap<String, Vec<&Device>> {
        let mut map: BTreeMap<String, Vec<&Device>> = BTreeMap::new();
        for d in self.devices.iter().filter(|d| d.enabled) {
            map.entry(subnet_of(&d.address)).or_default().push(d);
        }
        map
    }

    fn roles(&self) -> BTreeMap<String, usize> {
        let mut map = BTreeMap::new();
        for u in self.users.iter().filter(|u| u.disabled_at.is_none()) {
            let role = match u.role {
                Role::Admin => "admin",
                Role::Security => "security",
                Role::Auditor => "auditor",
                Role::Vendor => "vendor",
            };
            *map.entry(role.to_owned()).or_default() += 1;
        }
        map
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph portier {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        out.push_str("  subgraph cluster_internet {\n    label=\"Vendors (internet)\";\n");
        for v in self.vendors.iter().filter(|v| v.enabled) {
            for n in &v.networks {
                let _ = writeln!(
                    out,
                    "    {} [label=\"{}\\n{}\"];",
                    id("net", &format!("{}_{n}", v.name)),
                    quote(&v.name),
                    n
                );
            }
        }
        out.push_str("  }\n");
        for b in &self.balancers {
            let _ = writeln!(
                out,
                "  {} [label=\"TCP load balancer\\n{}\\n(PROXY v2)\"];",
                id("lb", b),
                b
            );
        }
        out.push_str("  subgraph cluster_portier {\n    label=\"Portier\";\n");
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "    {} [label=\"node {}\\ngateway {}\\nAPI {}\"];",
                id("node", n),
                quote(n),
                self.gateway,
                self.api
            );
        }
        let _ = writeln!(out, "    db [shape=cylinder, label=\"{}\"];", self.database);
        out.push_str("  }\n");
        let roles = self.roles();
        let who = roles
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect::<Vec<_>>()
            .join("\\n");
        let _ = writeln!(
            out,
            "  operators [shape=ellipse, label=\"Admin API accounts\\n{who}\"];"
        );
        out.push_str("  subgraph cluster_hospital {\n    label=\"Hospital networks\";\n");
        for (subnet, devices) in self.subnets() {
            let _ = writeln!(
                out,
                "    subgraph {} {{\n      label=\"{}\";",
                id("cluster_subnet", &subnet),
                quote(&subnet)
            );
            for d in devices {
                let _ = writeln!(
                    out,
                    "      {} [label=\"{}\\n{} ({})\"];",
                    id("dev", &d.name.to_string()),
                    quote(&d.name.to_string()),
                    d.address,
                    quote(&d.protocol)
                );
            }
            out.push_str("    }\n");
        }
        out.push_str("  }\n");
        for v in self.vendors.iter().filter(|v| v.enabled) {
            for n in &v.networks {
                let from = id("net", &format!("{}_{n}", v.name));
                match self.balancers.first() {
                    Some(b) => {
                        let _ = writeln!(out, "  {from} -> {} [label=\"TLS\"];", id("lb", b));
                    }
                    None => {
                        for node in &self.nodes {
                            let _ = writeln!(
                                out,
                                "  {from} -> {} [label=\"TLS, client certificate\"];",
                                id("node", node)
                            );
                        }
                    }
                }
            }
        }
        for b in &self.balancers {
            for node in &self.nodes {
                let _ = writeln!(
                    out,
                    "  {} -> {} [label=\"PROXY v2 + TLS\"];",
                    id("lb", b),
                    id("node", node)
                );
            }
        }
        for node in &self.nodes {
            let _ = writeln!(out, "  operators -> {} [label=\"HTTPS\"];", id("node", node));
            let _ = writeln!(out, "  {} -> db;", id("node", node));
            for d in self.devices.iter().filter(|d| d.enabled) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [label=\"tunnel\"];",
                    id("node", node),
                    id("dev", &d.name.to_string())
                );
            }
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        out.push_str("  subgraph internet[Vendors - internet]\n");
        for v in self.vendors.iter().filter(|v| v.enabled) {
            for n in &v.networks {
                let _ = writeln!(
                    out,
                    "    {}[\"{}: {}\"]",
                    id("net", &format!("{}_{n}", v.name)),
                    mlabel(&v.name),
                    n
                );
            }
        }
        out.push_str("  end\n");
        for b in &self.balancers {
            let _ = writeln!(out, "  {}[\"TCP load balancer {b} - PROXY v2\"]", id("lb", b));
        }
        out.push_str("  subgraph portier[Portier]\n");
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "    {}[\"node {}: gateway {}, API {}\"]",
                id("node", n),
                mlabel(n),
                self.gateway,
                self.api
            );
        }
        let _ = writeln!(out, "    db[(\"{}\")]", self.database);
        out.push_str("  end\n");
        let who = self
            .roles()
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "  operators([\"Admin API accounts - {who}\"])");
        out.push_str("  subgraph hospital[Hospital networks]\n");
        for (subnet, devices) in self.subnets() {
            let _ = writeln!(out, "    subgraph {}[\"{}\"]", id("subnet", &subnet), mlabel(&subnet));
            for d in devices {
                let _ = writeln!(
                    out,
                    "      {}[\"{} {} {}\"]",
                    id("dev", &d.name.to_string()),
                    mlabel(&d.name.to_string()),
                    d.address,
                    mlabel(&d.protocol)
                );
            }
            out.push_str("    end\n");
        }
        out.push_str("  end\n");
        for v in self.vendors.iter().filter(|v| v.enabled) {
            for n in &v.networks {
                let from = id("net", &format!("{}_{n}", v.name));
                match self.balancers.first() {
                    Some(b) => {
                        let _ = writeln!(out, "  {from} -->|TLS| {}", id("lb", b));
                    }
                    None => {
                        for node in &self.nodes {
                            let _ = writeln!(out, "  {from} -->|TLS, client certificate| {}", id("node", node));
                        }
                    }
                }
            }
        }
        for b in &self.balancers {
            for node in &self.nodes {
                let _ = writeln!(out, "  {} -->|PROXY v2 + TLS| {}", id("lb", b), id("node", node));
            }
        }
        for node in &self.nodes {
            let _ = writeln!(out, "  operators -->|HTTPS| {}", id("node", node));
            let _ = writeln!(out, "  {} --> db", id("node", node));
            for d in self.devices.iter().filter(|d| d.enabled) {
                let _ = writeln!(
                    out,
                    "  {} -->|tunnel| {}",
                    id("node", node),
                    id("dev", &d.name.to_string())
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::subnet_of;

    #[test]
    fn subnets_of_addresses() {
        assert_eq!(subnet_of("10.20.30.40:22"), "10.20.30.0/24");
        assert_eq!(subnet_of("[2001:db8::5]:443"), "2001:db8::/64");
        assert_eq!(subnet_of("mri.hospital.local:104"), "mri.hospital.local");
    }
}
