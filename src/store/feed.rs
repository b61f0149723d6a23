//! What a node following the change feed reads besides the feed itself: the
//! admission entries of one object at a time (so a change is applied to the
//! admission snapshot without reloading it), and a wake-up when another
//! process commits a change (PostgreSQL `LISTEN`).
//!
//! Each backend implements [`AdmissionReads`] in its own `admission` child
//! module; [`super::Store`] requires it, so every store offers it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::{DeviceId, Fingerprint, TechnicianId, VendorId, WindowId, WindowState};
use crate::policy::{DeviceEntry, TechnicianEntry, VendorEntry, WindowEntry};

/// One window as admission needs it, whatever its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowAdmission {
    pub vendor_id: VendorId,
    pub state: WindowState,
    /// The devices it covers.
    pub devices: Vec<DeviceId>,
    /// Its admission entry: `Some` while it is approved and has not ended at the
    /// read's `now`, exactly the windows a full snapshot holds.
    pub entry: Option<WindowEntry>,
}

/// One technician as admission needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicianAdmission {
    /// The snapshot's key.
    pub fingerprint: Fingerprint,
    pub entry: TechnicianEntry,
}

/// One device as admission needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAdmission {
    /// The snapshot's key (the lower-case name).
    pub name: String,
    pub entry: DeviceEntry,
}

/// Wakes the follower when another process commits a change.
#[async_trait]
pub trait ChangeListener: Send {
    /// Completes when a change was announced, or when the connection was lost
    /// and re-established (announcements sent meanwhile are lost: the caller
    /// reads the feed either way). `Err`: the connection is lost for good; make
    /// a new listener.
    async fn changed(&mut self) -> StoreResult<()>;
}

/// Per-object admission reads (see the module documentation).
#[async_trait]
pub trait AdmissionReads: Send + Sync {
    /// One window; `None` if no such window exists.
    async fn admission_window(&self, id: &WindowId, now: DateTime<Utc>) -> StoreResult<Option<WindowAdmission>>;
    /// One technician; `None` if no such technician exists.
    async fn admission_technician(&self, id: &TechnicianId) -> StoreResult<Option<TechnicianAdmission>>;
    /// One vendor, with its networks and its oldest unreported window's end;
    /// `None` if no such vendor exists.
    async fn admission_vendor(&self, id: &VendorId) -> StoreResult<Option<VendorEntry>>;
    /// One device, with its vendors; `None` if no such device exists.
    async fn admission_device(&self, id: &DeviceId) -> StoreResult<Option<DeviceAdmission>>;
    /// A listener woken by other processes' commits (PostgreSQL `NOTIFY` on
    /// [`super::CHANGES_CHANNEL`]); `None` for a backend whose changes all come
    /// from this process (SQLite: the store's [`super::Generation`] wakes instead).
    async fn change_listener(&self) -> StoreResult<Option<Box<dyn ChangeListener>>>;
}
