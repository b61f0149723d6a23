//! The admission policy: a pure function of the connection's facts, a snapshot of
//! the state and the time. No I/O, no clock, no async: every rule of DESIGN.md's
//! invariant 1 lives here and is tested table by table in `tests.rs`.

mod shared_map;
mod snapshot;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::{DeviceId, Fingerprint, TechnicianId, VendorId, WindowId};

pub use shared_map::SharedMap;
pub use snapshot::{DeviceEntry, OverdueMode, PolicySettings, Snapshot, TechnicianEntry, VendorEntry, WindowEntry};

/// What the gateway knows about a connection once its TLS handshake is done.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The TLS server name the client asked for, if any.
    pub sni: Option<&'a str>,
    /// SHA-256 of the client's leaf certificate (the handshake already verified its chain).
    pub fingerprint: Option<Fingerprint>,
    /// The peer address as accepted; IPv4-mapped IPv6 is handled by the policy.
    pub source_ip: IpAddr,
}

/// Why a connection is refused. The spelling is stable: technicians see it on the
/// wire and auditors search for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    UnknownDevice,
    DeviceDisabled,
    UnknownTechnician,
    VendorDisabled,
    DeviceNotAssigned,
    SourceIpNotDeclared,
    NoActiveWindow,
    Lockdown,
    ReportOverdue,
    /// The technician's certificate is not valid now (expired, not yet valid, or of unknown validity).
    CertificateExpired,
    StoreUnavailable,
    DeviceUnreachable,
}

impl DenyReason {
    /// The stable snake_case reason code.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownDevice => "unknown_device",
            Self::DeviceDisabled => "device_disabled",
            Self::UnknownTechnician => "unknown_technician",
            Self::VendorDisabled => "vendor_disabled",
            Self::DeviceNotAssigned => "device_not_assigned",
            Self::SourceIpNotDeclared => "source_ip_not_declared",
            Self::NoActiveWindow => "no_active_window",
            Self::Lockdown => "lockdown",
            Self::ReportOverdue => "report_overdue",
            Self::CertificateExpired => "certificate_expired",
            Self::StoreUnavailable => "store_unavailable",
            Self::DeviceUnreachable => "device_unreachable",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The tunnel the policy allows: which window covers it and when it must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub vendor_id: VendorId,
    pub technician_id: TechnicianId,
    pub device_id: DeviceId,
    pub window_id: WindowId,
    /// When the tunnel is cut: the earlier of the covering window's end and the
    /// technician certificate's `not_after`.
    pub deadline: DateTime<Utc>,
    /// The technician certificate's `not_after`: an extension of the window never
    /// moves the deadline past it, and a cut there is `certificate_expired`.
    pub certificate_not_after: DateTime<Utc>,
    /// The window is an emergency grant.
    pub emergency: bool,
    /// The vendor has an overdue report but the policy only warns (`on_overdue_report = "warn"`).
    pub report_overdue_warning: bool,
}

/// A refusal, with whatever the policy had identified before refusing (for the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub vendor_id: Option<VendorId>,
    pub technician_id: Option<TechnicianId>,
    pub device_id: Option<DeviceId>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Admission),
    Deny(Denial),
}

/// The overdue-report rule, in one place: the report of a window that ended
/// (or was revoked) at `ended_at` is overdue once `report_due` has passed.
pub fn report_overdue(ended_at: DateTime<Utc>, report_due: Duration, now: DateTime<Utc>) -> bool {
    ended_at + report_due <= now
}

/// Windows that ended at or before this instant have an overdue report at `now`
/// (the same rule as [`report_overdue`], as a bound for the store's query).
pub fn overdue_if_ended_by(report_due: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    now - report_due
}

/// Decides whether a connection may open a tunnel (DESIGN.md invariant 1).
///
/// Checks run from the cheapest global one (lockdown) to the most specific, and the
/// technician is identified before the device so that a revoked certificate cannot
/// probe which device names exist.
pub fn decide(facts: &Facts<'_>, snap: &Snapshot, now: DateTime<Utc>) -> Decision {
    let mut denial = Denial {
        reason: DenyReason::Lockdown,
        vendor_id: None,
        technician_id: None,
        device_id: None,
    };
    let deny = |mut d: Denial, reason| {
        d.reason = reason;
        Decision::Deny(d)
    };

    if snap.lockdown {
        return deny(denial, DenyReason::Lockdown);
    }

    let Some(tech) = facts.fingerprint.and_then(|f| snap.technicians.get(&f)) else {
        return deny(denial, DenyReason::UnknownTechnician);
    };
    denial.technician_id = Some(tech.id.clone());
    denial.vendor_id = Some(tech.vendor_id.clone());
    if tech.revoked {
        return deny(denial, DenyReason::UnknownTechnician);
    }
    // The handshake checked the chain against the real clock, once; admission
    // checks the recorded validity against `now` on every connection.
    if !tech.certificate_valid_at(now) {
        return deny(denial, DenyReason::CertificateExpired);
    }
    let Some(vendor) = snap.vendors.get(&tech.vendor_id) else {
        return deny(denial, DenyReason::UnknownTechnician);
    };
    if !vendor.enabled {
        return deny(denial, DenyReason::VendorDisabled);
    }

    let Some(device) = facts.sni.and_then(|name| snap.device_by_name(name)) else {
        return deny(denial, DenyReason::UnknownDevice);
    };
    denial.device_id = Some(device.id.clone());
    if !device.enabled {
        return deny(denial, DenyReason::DeviceDisabled);
    }
    if !device.vendor_ids.contains(&tech.vendor_id) {
        return deny(denial, DenyReason::DeviceNotAssigned);
    }

    let source = facts.source_ip.to_canonical();
    let declared = vendor.networks.iter().any(|n| n.contains(&source));
    let covering = snap
        .windows_for(&device.id)
        .iter()
        .filter(|w| w.vendor_id == tech.vendor_id && w.starts_at <= now && now < w.ends_at);
    // A window admits this source if it comes from a declared network, or from one of
    // the emergency grant's own extra networks.
    let admits = |w: &&WindowEntry| declared || w.extra_networks.iter().any(|n| n.contains(&source));

    let overdue = vendor
        .oldest_unreported_end
        .is_some_and(|end| report_overdue(end, snap.settings.report_due, now));
    let block_overdue = overdue && snap.settings.on_overdue == OverdueMode::Block;

    let mut any_covering = false;
    let mut any_admitting = false;
    let mut best: Option<&WindowEntry> = None;
    for w in covering {
        any_covering = true;
        if !admits(&w) {
            continue;
        }
        any_admitting = true;
        if block_overdue && !w.emergency {
            continue;
        }
        // Of several usable windows, the one ending last gives the longest tunnel.
        if best.is_none_or(|b| w.ends_at > b.ends_at) {
            best = Some(w);
        }
    }

    if !declared && !any_admitting {
        return deny(denial, DenyReason::SourceIpNotDeclared);
    }
    if !any_covering {
        return deny(denial, DenyReason::NoActiveWindow);
    }
    let Some(window) = best else {
        return deny(denial, DenyReason::ReportOverdue);
    };

    Decision::Allow(Admission {
        vendor_id: tech.vendor_id.clone(),
        technician_id: tech.id.clone(),
        device_id: device.id.clone(),
        window_id: window.id.clone(),
        deadline: window.ends_at.min(tech.not_after),
        certificate_not_after: tech.not_after,
        emergency: window.emergency,
        report_overdue_warning: overdue && !block_overdue,
    })
}
