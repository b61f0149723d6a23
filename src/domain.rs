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
    Lockdown,
    CertificateExpired,
    GatewayShutdown,
    GatewayRestart,
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
            Self::Lockdown => "lockdown",
            Self::CertificateExpired => "certificate_expired",
            Self::GatewayShutdown => "gateway_shutdown",
            Self::GatewayRestart => "gateway_restart",
            Self::Error => "error",
        }
    }

    /// Every reason, for parsing and documentation.
    pub const ALL: [EndReason; 12] = [
        Self::ClientClosed,
        Self::DeviceClosed,
        Self::WindowEnded,
        Self::WindowRevoked,
        Self::Terminated,
        Self::TechnicianRevoked,
        Self::VendorDisabled,
        Self::Lockdown,
        Self::CertificateExpired,
        Self::GatewayShutdown,
        Self::GatewayRestart,
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
