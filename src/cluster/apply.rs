//! Applying one change to the admission state: the changed object, as re-read
//! from the store, replaces what the snapshot held about it. Pure and
//! synchronous; the reads are the follower's (see `feed.rs`).

use std::collections::HashMap;

use crate::domain::{DeviceId, Fingerprint, SessionId, TechnicianId, VendorId, WindowId};
use super::compare::Skip;
use crate::policy::{DeviceEntry, Snapshot, TechnicianEntry, VendorEntry, WindowEntry};
use crate::store::{DeviceAdmission, TechnicianAdmission, WindowAdmission};

/// A changed object as the store holds it now (`None`: it no longer exists).
/// The feed says *what* changed; the object is read again rather than carried
/// in the feed, so applying a change twice, or late, still yields the stored state.
#[derive(Debug, Clone, PartialEq)]
pub enum Reread {
    Window {
        id: WindowId,
        window: Option<WindowAdmission>,
        /// The window's vendor: closing a window that had a session can make a
        /// report due, which moves the vendor's oldest unreported end.
        vendor: Option<VendorEntry>,
    },
    Technician {
        id: TechnicianId,
        technician: Option<TechnicianAdmission>,
    },
    Vendor {
        id: VendorId,
        vendor: Option<VendorEntry>,
    },
    /// A vendor's reports changed: only its overdue state can have.
    Reports {
        id: VendorId,
        vendor: Option<VendorEntry>,
    },
    Device {
        id: DeviceId,
        device: Option<DeviceAdmission>,
    },
    Lockdown(bool),
    /// Nothing to read: a session to cut wherever it is held.
    Terminate(SessionId),
}

/// The admission snapshot with the indexes that find an object's entries by its
/// id (the snapshot itself is keyed for the gateway's lookups: devices by name,
/// technicians by fingerprint, windows by device).
#[derive(Debug, Clone, Default)]
pub struct Indexed {
    snapshot: Snapshot,
    window_devices: HashMap<WindowId, Vec<DeviceId>>,
    device_names: HashMap<DeviceId, String>,
    technician_fingerprints: HashMap<TechnicianId, Fingerprint>,
}

impl Indexed {
    /// Indexes a snapshot loaded in full.
    pub fn new(snapshot: Snapshot) -> Self {
        let mut window_devices: HashMap<WindowId, Vec<DeviceId>> = HashMap::new();
        for (device, list) in snapshot.windows.iter() {
            for w in list {
                window_devices.entry(w.id.clone()).or_default().push(device.clone());
            }
        }
        let device_names = snapshot
            .devices
            .iter()
            .map(|(name, d)| (d.id.clone(), name.clone()))
            .collect();
        let technician_fingerprints = snapshot
            .technicians
            .iter()
            .map(|(fp, t)| (t.id.clone(), *fp))
            .collect();
        Self {
            snapshot,
            window_devices,
            device_names,
            technician_fingerprints,
        }
    }

    /// The snapshot as it stands.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// A technician by id.
    pub fn technician(&self, id: &TechnicianId) -> Option<&TechnicianEntry> {
        self.technician_fingerprints
            .get(id)
            .and_then(|fp| self.snapshot.technicians.get(fp))
    }

    /// A device by id.
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceEntry> {
        self.device_names.get(id).and_then(|name| self.snapshot.devices.get(name))
    }

    /// Replaces what the snapshot holds about the re-read object. Only the
    /// entries of that object are touched (and, the snapshot's maps sharing
    /// their storage with earlier copies, only their shards are copied).
    pub fn apply(&mut self, r: &Reread) {
        match r {
            Reread::Window { id, window, vendor } => {
                match window {
                    Some(w) => self.set_window(id, &w.devices, w.entry.as_ref()),
                    None => self.set_window(id, &[], None),
                }
                if let (Some(w), Some(v)) = (window, vendor) {
                    if let Some(e) = self.snapshot.vendors.get_mut(&w.vendor_id) {
                        e.oldest_unreported_end = v.oldest_unreported_end;
                    }
                }
            }
            Reread::Technician { id, technician } => self.set_technician(id, technician.as_ref()),
            Reread::Vendor { id, vendor } | Reread::Reports { id, vendor } => match vendor {
                Some(v) => {
                    self.snapshot.vendors.insert(id.clone(), v.clone());
                }
                None => {
                    self.snapshot.vendors.remove(id);
                }
            },
            Reread::Device { id, device } => self.set_device(id, device.as_ref()),
            Reread::Lockdown(on) => self.snapshot.lockdown = *on,
            Reread::Terminate(_) => {}
        }
    }

    fn set_window(&mut self, id: &WindowId, devices: &[DeviceId], entry: Option<&WindowEntry>) {
        if let Some(old) = self.window_devices.remove(id) {
            for d in &old {
                let emptied = match self.snapshot.windows.get_mut(d) {
                    Some(list) => {
                        list.retain(|w| &w.id != id);
                        list.is_empty()
                    }
                    None => false,
                };
                // A full load holds no empty list: neither does the incremental state.
                if emptied {
                    self.snapshot.windows.remove(d);
                }
            }
        }
        let Some(entry) = entry else {
            return;
        };
        let mut devices = devices.to_vec();
        devices.sort_unstable();
        devices.dedup();
        for d in &devices {
            self.snapshot.windows.entry(d.clone()).or_default().push(entry.clone());
        }
        if !devices.is_empty() {
            self.window_devices.insert(id.clone(), devices);
        }
    }

    fn set_technician(&mut self, id: &TechnicianId, read: Option<&TechnicianAdmission>) {
        if let Some(fp) = self.technician_fingerprints.remove(id) {
            self.snapshot.technicians.remove(&fp);
        }
        if let Some(t) = read {
            self.technician_fingerprints.insert(id.clone(), t.fingerprint);
            self.snapshot.technicians.insert(t.fingerprint, t.entry.clone());
        }
    }

    fn set_device(&mut self, id: &DeviceId, read: Option<&DeviceAdmission>) {
        if let Some(name) = self.device_names.remove(id) {
            self.snapshot.devices.remove(&name);
        }
        if let Some(d) = read {
            self.device_names.insert(id.clone(), d.name.clone());
            self.snapshot.devices.insert(d.name.clone(), d.entry.clone());
        }
    }

    /// Takes `newer`'s entries for the objects of `skip`: those that changed
    /// while this state was loaded, which `newer` (the incremental state, read
    /// after each change) holds as they are now.
    pub fn merge_from(&mut self, newer: &Indexed, skip: &Skip) {
        for id in &skip.windows {
            let devices = newer.window_devices.get(id).cloned().unwrap_or_default();
            let entry = devices
                .first()
                .and_then(|d| newer.snapshot.windows_for(d).iter().find(|w| &w.id == id))
                .cloned();
            self.set_window(id, &devices, entry.as_ref());
        }
        for id in &skip.technicians {
            let read = newer.technician_fingerprints.get(id).and_then(|fp| {
                newer.snapshot.technicians.get(fp).map(|entry| TechnicianAdmission {
                    fingerprint: *fp,
                    entry: entry.clone(),
                })
            });
            self.set_technician(id, read.as_ref());
        }
        for id in &skip.vendors {
            match newer.snapshot.vendors.get(id) {
                Some(v) => {
                    self.snapshot.vendors.insert(id.clone(), v.clone());
                }
                None => {
                    self.snapshot.vendors.remove(id);
                }
            }
        }
        for id in &skip.devices {
            let read = newer.device_names.get(id).and_then(|name| {
                newer.snapshot.devices.get(name).map(|entry| DeviceAdmission {
                    name: name.clone(),
                    entry: entry.clone(),
                })
            });
            self.set_device(id, read.as_ref());
        }
        if skip.lockdown {
            self.snapshot.lockdown = newer.snapshot.lockdown;
        }
    }

    /// Sets the policy settings every snapshot carries.
    pub fn set_settings(&mut self, settings: crate::policy::PolicySettings) {
        self.snapshot.settings = settings;
    }
}
