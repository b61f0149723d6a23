//! Which of this node's live tunnels a changed state forbids, and why. A tunnel
//! is bound to the window, technician, vendor, device and source address it was
//! admitted with; it is cut as soon as the state no longer admits one of them.

use chrono::{DateTime, Utc};

use super::apply::{Indexed, Reread};
use crate::domain::{EndReason, Fingerprint};
use crate::gateway::{LiveSession, Registry};
use crate::policy::{DeviceEntry, Snapshot, TechnicianEntry};

/// Why `st` no longer admits the live tunnel `s`, if it does not. Time is not
/// checked: a tunnel's own deadline ends it at its window's end.
pub fn forbids(s: &LiveSession, st: &Indexed) -> Option<EndReason> {
    rule(
        s,
        st.snapshot(),
        st.technician(&s.technician_id),
        st.device(&s.device_id),
    )
}

/// [`forbids`] on a snapshot without the follower's id indexes: the gateway's
/// re-check of a tunnel it just registered, so that it cuts for exactly what the
/// follower cuts for. The technician and device are found by the certificate's
/// `fingerprint` and the `device_name` (SNI) admission used; failing that (re-keyed
/// or gone since) by id, as `forbids` finds them.
pub fn forbids_on(
    s: &LiveSession,
    snap: &Snapshot,
    fingerprint: Option<&Fingerprint>,
    device_name: Option<&str>,
) -> Option<EndReason> {
    let technician = fingerprint
        .and_then(|fp| snap.technicians.get(fp))
        .filter(|t| t.id == s.technician_id)
        .or_else(|| snap.technicians.values().find(|t| t.id == s.technician_id));
    let device = device_name
        .and_then(|n| snap.device_by_name(n))
        .filter(|d| d.id == s.device_id)
        .or_else(|| snap.devices.values().find(|d| d.id == s.device_id));
    rule(s, snap, technician, device)
}

/// The one rule both entry points apply, given the tunnel's technician and
/// device as the state holds them.
fn rule(
    s: &LiveSession,
    snap: &Snapshot,
    technician: Option<&TechnicianEntry>,
    device: Option<&DeviceEntry>,
) -> Option<EndReason> {
    if snap.lockdown {
        return Some(EndReason::Lockdown);
    }
    if technician.is_none_or(|t| t.revoked) {
        return Some(EndReason::TechnicianRevoked);
    }
    let Some(vendor) = snap.vendors.get(&s.vendor_id).filter(|v| v.enabled) else {
        return Some(EndReason::VendorDisabled);
    };
    let Some(device) = device.filter(|d| d.enabled) else {
        return Some(EndReason::DeviceDisabled);
    };
    if !device.vendor_ids.contains(&s.vendor_id) {
        return Some(EndReason::DeviceNotAssigned);
    }
    let Some(window) = snap.windows_for(&s.device_id).iter().find(|w| w.id == s.window_id) else {
        return Some(EndReason::WindowRevoked);
    };
    if let Some(ip) = s.source_ip {
        let declared = vendor.networks.iter().any(|n| n.contains(&ip));
        if !declared && !window.extra_networks.iter().any(|n| n.contains(&ip)) {
            return Some(EndReason::SourceIpNotDeclared);
        }
    }
    None
}

/// Cuts the tunnels a change forbids and moves the deadlines it moves; returns
/// how many were cut.
pub fn enforce(registry: &Registry, st: &Indexed, r: &Reread, now: DateTime<Utc>) -> usize {
    match r {
        Reread::Terminate(id) => usize::from(registry.cut_session(id, EndReason::Terminated)),
        Reread::Reports { .. } => 0,
        Reread::Window { id, window, .. } => {
            if let Some(entry) = window.as_ref().and_then(|w| w.entry.as_ref()) {
                // An approved extension (or a shortened end) reaches the tunnels.
                registry.move_window_deadline(id, entry.ends_at);
            }
            check(registry, st, now, |s| &s.window_id == id)
        }
        Reread::Technician { id, .. } => check(registry, st, now, |s| &s.technician_id == id),
        Reread::Vendor { id, .. } => check(registry, st, now, |s| &s.vendor_id == id),
        Reread::Device { id, .. } => check(registry, st, now, |s| &s.device_id == id),
        Reread::Lockdown(_) => sweep(registry, st, now),
    }
}

/// Checks every live tunnel (after a full reload).
pub fn sweep(registry: &Registry, st: &Indexed, now: DateTime<Utc>) -> usize {
    check(registry, st, now, |_| true)
}

fn check(registry: &Registry, st: &Indexed, now: DateTime<Utc>, which: impl Fn(&LiveSession) -> bool) -> usize {
    let mut cut = 0;
    for s in registry.sessions() {
        // Past its deadline the tunnel's own timer ends it, as `window_ended`
        // or `certificate_expired`: the window is gone from the state for that reason.
        if !which(&s) || s.deadline() <= now || s.cut_reason().is_some() {
            continue;
        }
        if let Some(reason) = forbids(&s, st) {
            tracing::info!(session = %s.id, reason = reason.as_str(), "tunnel cut: the change feed forbids it");
            s.cut(reason);
            cut += 1;
        }
    }
    cut
}
