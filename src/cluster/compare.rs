//! Comparing the incrementally maintained snapshot with one loaded in full: the
//! periodic check that every change reached the feed and was applied right.
//! Only what admission decides on counts: lists are compared as sets, a
//! vendor's unreported windows by whether a report is overdue at the load's
//! instant, and windows that ended before that instant (the full load leaves
//! them out; the incremental state keeps them until the next reload) are skipped.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::domain::{DeviceId, TechnicianId, VendorId, WindowId};
use crate::policy::{Snapshot, VendorEntry, WindowEntry};
use crate::store::Change;

/// Objects changed while the full load ran: the two snapshots may rightly
/// differ about them, so they are not compared.
#[derive(Debug, Default)]
pub struct Skip {
    pub(super) windows: HashSet<WindowId>,
    pub(super) technicians: HashSet<TechnicianId>,
    pub(super) vendors: HashSet<VendorId>,
    pub(super) devices: HashSet<DeviceId>,
    pub(super) lockdown: bool,
}

impl Skip {
    /// Skips the objects of these changes.
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Self {
        let mut s = Self::default();
        for c in changes {
            s.add(c);
        }
        s
    }

    /// Skips the object of a change.
    pub fn add(&mut self, c: &Change) {
        match c {
            Change::Window(id) => {
                self.windows.insert(id.clone());
            }
            Change::Technician(id) => {
                self.technicians.insert(id.clone());
            }
            Change::Vendor(id) | Change::Reports(id) => {
                self.vendors.insert(id.clone());
            }
            Change::Device(id) => {
                self.devices.insert(id.clone());
            }
            Change::Lockdown => self.lockdown = true,
            Change::Terminate(_) => {}
        }
    }

    /// Skips a vendor (whose overdue state a window change moved).
    pub fn add_vendor(&mut self, id: &VendorId) {
        self.vendors.insert(id.clone());
    }
}

fn sorted_nets(n: &[IpNet]) -> Vec<IpNet> {
    let mut v = n.to_vec();
    v.sort_unstable();
    v
}

fn same_window(a: &WindowEntry, b: &WindowEntry) -> bool {
    a.id == b.id
        && a.vendor_id == b.vendor_id
        && a.starts_at == b.starts_at
        && a.ends_at == b.ends_at
        && a.emergency == b.emergency
        && sorted_nets(&a.extra_networks) == sorted_nets(&b.extra_networks)
}

fn same_vendor(a: &VendorEntry, b: &VendorEntry, snap: &Snapshot, now: DateTime<Utc>) -> bool {
    let overdue = |v: &VendorEntry| {
        v.oldest_unreported_end
            .is_some_and(|end| end + snap.settings.report_due <= now)
    };
    a.enabled == b.enabled && sorted_nets(&a.networks) == sorted_nets(&b.networks) && overdue(a) == overdue(b)
}

/// How `incremental` differs from `full` (loaded at `now`), one line per
/// differing object, at most `limit` lines; and how many differ in all.
pub fn differences(
    incremental: &Snapshot,
    full: &Snapshot,
    now: DateTime<Utc>,
    skip: &Skip,
    limit: usize,
) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut count = 0usize;
    let mut differ = |what: String| {
        count += 1;
        if out.len() < limit {
            out.push(what);
        }
    };

    if !skip.lockdown && incremental.lockdown != full.lockdown {
        differ(format!(
            "lockdown: incremental {} / stored {}",
            incremental.lockdown, full.lockdown
        ));
    }

    for (name, d) in full.devices.iter() {
        if skip.devices.contains(&d.id) {
            continue;
        }
        let same = incremental.devices.get(name).is_some_and(|i| {
            let mut a = i.vendor_ids.clone();
            let mut b = d.vendor_ids.clone();
            a.sort_unstable();
            b.sort_unstable();
            i.id == d.id && i.address == d.address && i.enabled == d.enabled && a == b
        });
        if !same {
            differ(format!("device {} ({name})", d.id));
        }
    }
    for (name, d) in incremental.devices.iter() {
        if !skip.devices.contains(&d.id) && !full.devices.contains_key(name) {
            differ(format!("device {} ({name}): not stored", d.id));
        }
    }

    for (fp, t) in full.technicians.iter() {
        if skip.technicians.contains(&t.id) {
            continue;
        }
        if incremental.technicians.get(fp) != Some(t) {
            differ(format!("technician {}", t.id));
        }
    }
    for (fp, t) in incremental.technicians.iter() {
        if !skip.technicians.contains(&t.id) && !full.technicians.contains_key(fp) {
            differ(format!("technician {}: not stored", t.id));
        }
    }

    for (id, v) in full.vendors.iter() {
        if skip.vendors.contains(id) {
            continue;
        }
        if !incremental
            .vendors
            .get(id)
            .is_some_and(|i| same_vendor(i, v, full, now))
        {
            differ(format!("vendor {id}"));
        }
    }
    for id in incremental.vendors.keys() {
        if !skip.vendors.contains(id) && !full.vendors.contains_key(id) {
            differ(format!("vendor {id}: not stored"));
        }
    }

    let open = |w: &&WindowEntry| w.ends_at > now && !skip.windows.contains(&w.id);
    for (device, list) in full.windows.iter() {
        let mine = incremental.windows_for(device);
        for w in list.iter().filter(open) {
            if !mine.iter().any(|i| same_window(i, w)) {
                differ(format!("window {} on device {device}", w.id));
            }
        }
    }
    for (device, list) in incremental.windows.iter() {
        let stored = full.windows_for(device);
        for w in list.iter().filter(open) {
            if !stored.iter().any(|s| s.id == w.id) {
                differ(format!("window {} on device {device}: not stored as open", w.id));
            }
        }
    }
    (out, count)
}
