//! The state the policy decides on: everything admission needs, indexed for the
//! lookups the gateway makes on every connection.

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::SharedMap;
use crate::domain::{DeviceId, Fingerprint, TechnicianId, VendorId, WindowId};

/// What to do when a vendor has an overdue intervention report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverdueMode {
    /// Refuse its tunnels (emergency grants excepted) and new requests.
    #[default]
    Block,
    /// Only notify.
    Warn,
}

/// The configurable parts of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySettings {
    /// How long after a window's end its report is due.
    pub report_due: Duration,
    /// Behaviour when a report is overdue.
    pub on_overdue: OverdueMode,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            report_due: Duration::hours(24),
            on_overdue: OverdueMode::Block,
        }
    }
}

/// A technician as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicianEntry {
    pub id: TechnicianId,
    pub vendor_id: VendorId,
    /// The certificate subject, recorded with each session.
    pub subject: String,
    pub revoked: bool,
    /// Start of the certificate's validity (inclusive). `None`: unknown (a row whose
    /// stored certificate could not be read), and an unknown validity is refused.
    pub not_before: Option<DateTime<Utc>>,
    /// End of the certificate's validity (exclusive here, see [`TechnicianEntry::certificate_valid_at`]).
    pub not_after: DateTime<Utc>,
}

impl TechnicianEntry {
    /// Whether the certificate is valid at `now`: `not_before <= now < not_after`.
    ///
    /// RFC 5280 makes `notAfter` inclusive; Portier stops one instant earlier, at
    /// `not_after` itself, the same instant a live tunnel is cut, so that a
    /// technician cut for `certificate_expired` cannot reconnect in the same second.
    pub fn certificate_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before.is_some_and(|nb| nb <= now) && now < self.not_after
    }
}

/// A vendor as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorEntry {
    pub enabled: bool,
    /// The declared public networks its technicians connect from.
    pub networks: Vec<IpNet>,
    /// The earliest end of a non-emergency window that had a session and has no
    /// report yet; the report is overdue `report_due` after it.
    pub oldest_unreported_end: Option<DateTime<Utc>>,
}

/// A device as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub id: DeviceId,
    /// `host:port` the gateway connects to (not a policy input).
    pub address: String,
    pub enabled: bool,
    pub vendor_ids: Vec<VendorId>,
}

/// An approved window (or emergency grant) that has not ended when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    pub id: WindowId,
    pub vendor_id: VendorId,
    /// Inclusive.
    pub starts_at: DateTime<Utc>,
    /// Exclusive.
    pub ends_at: DateTime<Utc>,
    pub emergency: bool,
    /// Emergency grants only: extra source networks admitted for this grant.
    pub extra_networks: Vec<IpNet>,
}

/// Everything the policy needs, indexed for the gateway's lookups.
///
/// The maps are [`SharedMap`]s: a clone shares their storage, so the change
/// feed can apply one change to a copy without copying every window.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub lockdown: bool,
    pub settings: PolicySettings,
    /// Keyed by the lower-case device name (the SNI).
    pub devices: SharedMap<String, DeviceEntry>,
    pub technicians: SharedMap<Fingerprint, TechnicianEntry>,
    pub vendors: SharedMap<VendorId, VendorEntry>,
    /// Approved windows by device; a window over several devices appears under each.
    pub windows: SharedMap<DeviceId, Vec<WindowEntry>>,
}

impl Snapshot {
    /// The device a server name designates. SNI is case-insensitive; the common
    /// case (already lower-case) does not allocate.
    pub fn device_by_name(&self, sni: &str) -> Option<&DeviceEntry> {
        if sni.bytes().any(|b| b.is_ascii_uppercase()) {
            self.devices.get(&sni.to_ascii_lowercase())
        } else {
            self.devices.get(sni)
        }
    }

    /// Approved windows that include this device.
    pub fn windows_for(&self, device: &DeviceId) -> &[WindowEntry] {
        self.windows.get(device).map(Vec::as_slice).unwrap_or(&[])
    }
}
