//! Identifiers and small value types shared by every layer. Each one is parsed
//! once at the edge, so the inside of the program never sees an invalid value.

use std::borrow::Borrow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random identifier.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A vendor (a medical-device manufacturer or its service company).
    VendorId
);
string_id!(
    /// A technician: one client certificate bound to one vendor.
    TechnicianId
);
string_id!(
    /// A device behind the gateway.
    DeviceId
);
string_id!(
    /// A maintenance window or emergency grant.
    WindowId
);
string_id!(
    /// One tunnel, from admission to its end.
    SessionId
);
string_id!(
    /// An account of the admin API.
    UserId
);
string_id!(
    /// A personal API token of an account.
    TokenId
);

/// SHA-256 of a certificate's DER encoding: how the gateway recognises a technician.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Lower-case hexadecimal, the form stored and shown.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Error for a fingerprint that is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error("a SHA-256 fingerprint is 64 hexadecimal digits (colons allowed)")]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cleaned: String = s.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(cleaned).map_err(|_| BadFingerprint)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| BadFingerprint)?;
        Ok(Self(arr))
    }
}

/// Error for a device name that cannot be an SNI label.
#[derive(Debug, thiserror::Error)]
#[error("device name {0:?} must be 1-253 characters of a-z, 0-9, '-' and '.', as a TLS server name")]
pub struct BadDeviceName(pub String);

/// A device name, which is also the TLS server name (SNI) technicians ask for.
/// Stored lower-case because SNI comparison is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "mri-1")]
pub struct DeviceName(String);

impl DeviceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceName {
    type Error = BadDeviceName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let lower = s.to_ascii_lowercase();
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        // An all-numeric name would look like an IP address, which is never sent as SNI.
        let numeric = lower.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if lower.is_empty() || lower.len() > 253 || numeric || !lower.split('.').all(valid_label) {
            return Err(BadDeviceName(s));
        }
        Ok(Self(lower))
    }
}

impl FromStr for DeviceName {
    type Err = BadDeviceName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<DeviceName> for String {
    fn from(n: DeviceName) -> Self {
        n.0
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Error for a declared network entry that is neither a CIDR nor an address.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP network (expected e.g. 203.0.113.0/24, 2001:db8::/48 or a single address)")]
pub struct BadNetwork(pub String);

/// Parses a declared network: a CIDR, or a bare address taken as /32 or /128.
/// The host bits are cleared so the stored form is canonical.
pub fn parse_network(s: &str) -> Result<IpNet, BadNetwork> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(canonical_net(net).trunc());
    }
    match t.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip.to_canonical())),
        Err(_) => Err(BadNetwork(s.to_owned())),
    }
}

/// The broadest networks that may be declared without an admin's explicit
/// consent: a prefix shorter than these is refused (`policy.min_network_prefix_v4`
/// and `_v6`). Two /1 networks declare all of IPv4 as surely as one /0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkBreadth {
    pub min_prefix_v4: u8,
    pub min_prefix_v6: u8,
}

impl Default for NetworkBreadth {
    fn default() -> Self {
        Self {
            min_prefix_v4: 16,
            min_prefix_v6: 32,
        }
    }
}

impl NetworkBreadth {
    /// The minimum prefix `net` falls short of, if it is too broad.
    pub fn too_broad(&self, net: &IpNet) -> Option<u8> {
        let min = match net {
            IpNet::V4(_) => self.min_prefix_v4,
            IpNet::V6(_) => self.min_prefix_v6,
        };
        (net.prefix_len() < min).then_some(min)
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let Some(v4) = v6.addr().to_ipv4_mapped() {
            if v6.prefix_len() >= 96 {
                if let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}

/// Why a piece of free text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadText {
    #[error("{field} must be 1 to {max} characters")]
    Length { field: &'static str, max: usize },
    #[error("{field} must not contain control characters (found U+{code:04X}){hint}")]
    Control {
        field: &'static str,
        code: u32,
        hint: &'static str,
    },
    #[error("{field} must not contain bidirectional formatting characters (found U+{code:04X}): they can make text read differently from what it is")]
    Bidi { field: &'static str, code: u32 },
}

/// Invisible characters that reorder displayed text (Trojan Source, CVE-2021-42574):
/// LRM, RLM, ALM, the embeddings and overrides, and the isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Line and paragraph separators end a line in many viewers, like `\n`.
fn is_line_break(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn checked_text(field: &'static str, value: &str, max: usize, allow: &[char]) -> Result<String, BadText> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(BadText::Length { field, max });
    }
    for c in v.chars() {
        if is_line_break(c) && !allow.contains(&c) {
            let hint = if allow.is_empty() {
                ": it is one line of text"
            } else {
                " other than line feed and tab"
            };
            return Err(BadText::Control {
                field,
                code: u32::from(c),
                hint,
            });
        }
        if is_bidi_control(c) {
            return Err(BadText::Bidi {
                field,
                code: u32::from(c),
            });
        }
    }
    Ok(v.to_owned())
}

/// A name or one-line free text (names, reasons, justifications, contacts):
/// trimmed, 1 to `max` characters, no control characters (C0, DEL, C1, NUL, line
/// breaks) and no bidirectional formatting characters. Such text ends up in
/// certificate subjects, logs, CSV exports and syslog lines, where a newline or an
/// override would forge or disguise a record.
pub fn one_line(field: &'static str, value: &str, max: usize) -> Result<String, BadText> {
    checked_text(field, value, max, &[])
}

/// Multi-line free text (report summaries, actions, comments): as [`one_line`]
/// but line feeds and tabs are allowed.
pub fn multi_line(field: &'static str, value: &str, max: usize) -> Result<String, BadText> {
    checked_text(field, value, max, &['\n', '\t'])
}

/// The state a window is stored in. `active` and `ended` are not stored: they
/// follow from `approved` and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Asked for by a vendor, waiting for security.
    Requested,
    /// Approved: opens tunnels between its start and end.
    Approved,
    /// Refused by security.
    Rejected,
    /// Withdrawn before it started.
    Cancelled,
    /// Withdrawn by security; its tunnels were cut.
    Revoked,
}

impl WindowState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
        }
    }
}

/// Error for an unknown stored enum value.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    /// What was being parsed.
    pub kind: &'static str,
    /// The offending text.
    pub value: String,
}

impl FromStr for WindowState {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "requested" => Self::Requested,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            "revoked" => Self::Revoked,
            _ => {
                return Err(UnknownValue {
                    kind: "window state",
                    value: s.to_owned(),
                })
            }
        })
    }
}

/// Why a tunnel ended (DESIGN.md, session record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    ClientClosed,
    DeviceClosed,
    WindowEnded,
    WindowRevoked,
    Terminated,
    TechnicianRevoked,
    VendorDisabled,
    /// The device was disabled.
    DeviceDisabled,
    Lockdown,
    CertificateExpired,
    GatewayShutdown,
    GatewayRestart,
    /// The node carrying it stopped beating; another node closed it.
    NodeLost,
    /// Its device is no longer assigned to its vendor.
    DeviceNotAssigned,
    /// Its source address is no longer in its vendor's declared networks.
    SourceIpNotDeclared,
    /// This node could not confirm the change feed within `cluster.max_staleness_secs`
    /// (`cluster.on_stale = "cut"`).
    NodeStale,
    Error,
}

impl EndReason {
    /// The stable snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::DeviceClosed => "device_closed",
            Self::WindowEnded => "window_ended",
            Self::WindowRevoked => "window_revoked",
            Self::Terminated => "terminated",
            Self::TechnicianRevoked => "technician_revoked",
            Self::VendorDisabled => "vendor_disabled",
            Self::DeviceDisabled => "device_disabled",
            Self::Lockdown => "lockdown",
            Self::CertificateExpired => "certificate_expired",
            Self::GatewayShutdown => "gateway_shutdown",
            Self::GatewayRestart => "gateway_restart",
            Self::NodeLost => "node_lost",
            Self::DeviceNotAssigned => "device_not_assigned",
            Self::SourceIpNotDeclared => "source_ip_not_declared",
            Self::NodeStale => "node_stale",
            Self::Error => "error",
        }
    }

    /// Every reason, for parsing and documentation.
    pub const ALL: [EndReason; 17] = [
        Self::ClientClosed,
        Self::DeviceClosed,
        Self::WindowEnded,
        Self::WindowRevoked,
        Self::Terminated,
        Self::TechnicianRevoked,
        Self::VendorDisabled,
        Self::DeviceDisabled,
        Self::Lockdown,
        Self::CertificateExpired,
        Self::GatewayShutdown,
        Self::GatewayRestart,
        Self::NodeLost,
        Self::DeviceNotAssigned,
        Self::SourceIpNotDeclared,
        Self::NodeStale,
        Self::Error,
    ];
}

impl FromStr for EndReason {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "end reason",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles of the admin API (DESIGN.md, "Users and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Security,
    Auditor,
    Vendor,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Security => "security",
            Self::Auditor => "auditor",
            Self::Vendor => "vendor",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "admin" => Self::Admin,
            "security" => Self::Security,
            "auditor" => Self::Auditor,
            "vendor" => Self::Vendor,
            _ => {
                return Err(UnknownValue {
                    kind: "role",
                    value: s.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_cidrs_and_bare_addresses() {
        assert_eq!(parse_network("203.0.113.7").unwrap().to_string(), "203.0.113.7/32");
        assert_eq!(parse_network("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(parse_network("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network("::ffff:192.0.2.1").unwrap().to_string(), "192.0.2.1/32");
        for bad in ["", "10.0.0.0/33", "banana", "10.0.0/8", "1.2.3.4/", "::/129"] {
            assert!(parse_network(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn broad_networks_are_named() {
        let b = NetworkBreadth::default();
        for broad in [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "10.0.0.0/8",
            "10.0.0.0/15",
            "2001::/16",
            "::/1",
        ] {
            assert!(b.too_broad(&parse_network(broad).unwrap()).is_some(), "{broad}");
        }
        for fine in [
            "10.1.0.0/16",
            "203.0.113.7",
            "2001:db8::/32",
            "2001:db8::1",
            "::ffff:10.1.0.0/112",
        ] {
            assert_eq!(b.too_broad(&parse_network(fine).unwrap()), None, "{fine}");
        }
    }

    #[test]
    fn device_names_are_sni_labels() {
        assert_eq!(
            "MRI-1.Radiology".parse::<DeviceName>().unwrap().as_str(),
            "mri-1.radiology"
        );
        for bad in ["", "-a", "a-", "a..b", "a b", "10.0.0.1", "é", &"a".repeat(64)] {
            assert!(bad.parse::<DeviceName>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn one_line_text_refuses_controls_and_bidi() {
        assert_eq!(one_line("name", "  Acme Medical  ", 100).unwrap(), "Acme Medical");
        assert_eq!(
            one_line("name", "Siemens Healthineers — Ürün", 100).unwrap(),
            "Siemens Healthineers — Ürün"
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{9b}b",
            "a\u{1b}[31mb",
            "a\u{202e}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200f}b",
            "a\u{2028}b",
        ] {
            assert!(one_line("name", bad, 100).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(one_line("name", "abc", 2), Err(BadText::Length { .. })));
        assert!(matches!(
            one_line("name", "a\u{202e}b", 9),
            Err(BadText::Bidi { code: 0x202e, .. })
        ));
    }

    #[test]
    fn multi_line_text_allows_newlines_and_tabs_only() {
        assert_eq!(
            multi_line("summary", "line 1\n\tline 2\n", 100).unwrap(),
            "line 1\n\tline 2"
        );
        for bad in ["a\rb", "a\u{0}b", "a\u{1b}b", "a\u{202d}b", "a\u{85}b"] {
            assert!(multi_line("summary", bad, 100).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn fingerprints_round_trip() {
        let f = Fingerprint::of_der(b"cert");
        assert_eq!(f.to_hex().parse::<Fingerprint>().unwrap(), f);
        assert!("abcd".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn end_reasons_round_trip() {
        for r in EndReason::ALL {
            assert_eq!(r.as_str().parse::<EndReason>().unwrap(), r);
        }
    }
}
