//! Vendors, their technicians, and devices.

use ipnet::IpNet;

use super::{effects, unavailable, Actor, Ops, OpsError, OpsResult};
use crate::domain::{DeviceId, EndReason, TechnicianId, VendorId};
use crate::events::Event;
use crate::guard::{Pending, Restriction};
use crate::rights::Function;
use crate::store::{Change, Device, Effects, NewDevice, NewTechnician, NewVendor, StoreError, Technician, Vendor};

impl Ops {
    /// Creates a vendor (admin). `allow_broad` is recorded: the networks were
    /// checked at the edge against the breadth rule unless an admin waived it.
    pub async fn create_vendor(&self, who: &Actor, new: NewVendor, allow_broad: bool) -> OpsResult<Vendor> {
        who.may(Function::CreateVendor)?;
        if allow_broad {
            who.may(Function::AllowBroadNetworks)?;
        }
        if new.networks.is_empty() {
            return Err(OpsError::bad_request("a vendor must declare at least one network"));
        }
        let record = effects(|v: &Vendor| {
            Effects::audit(self.event(
                who,
                Event::VendorCreated,
                v.id.as_str(),
                serde_json::json!({"name": v.name, "networks": v.networks, "allow_broad_networks": allow_broad}),
            ))
            .change(Change::Vendor(v.id.clone()))
        });
        let v = self
            .store
            .create_vendor(&new, self.now(), &record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => OpsError::conflict(format!("a vendor named {:?} already exists", new.name)),
                other => other.into(),
            })?;
        self.changed().await;
        Ok(v)
    }

    /// Replaces a vendor's declared networks (admin); live tunnels from an
    /// address no longer declared are cut on every node.
    pub async fn replace_vendor_networks(
        &self,
        who: &Actor,
        id: &VendorId,
        networks: Vec<IpNet>,
        allow_broad: bool,
    ) -> OpsResult<Vendor> {
        who.may(Function::ReplaceVendorNetworks)?;
        if allow_broad {
            who.may(Function::AllowBroadNetworks)?;
        }
        if networks.is_empty() {
            return Err(OpsError::bad_request(
                "a vendor must declare at least one network (disable it instead)",
            ));
        }
        let record = effects(|v: &Vendor| {
            Effects::audit(self.event(
                who,
                Event::VendorNetworksReplaced,
                v.id.as_str(),
                serde_json::json!({"networks": v.networks, "allow_broad_networks": allow_broad}),
            ))
            .change(Change::Vendor(v.id.clone()))
        });
        let v = self.store.replace_vendor_networks(id, &networks, &record).await?;
        self.changed().await;
        Ok(v)
    }

    /// Disables a vendor (admin, security): its live tunnels are cut on every
    /// node. Cut and refused on this node first; `Unavailable` if the database
    /// cannot take it (then retried until stored).
    pub async fn disable_vendor(&self, who: &Actor, id: &VendorId) -> OpsResult<Vendor> {
        who.may(Function::DisableVendor)?;
        let restriction = Restriction::Vendor(id.clone());
        let guard = self.guard();
        guard.restrict(restriction.clone());
        let cut = self.registry.cut_vendor(id, EndReason::VendorDisabled);
        let done = Effects::audit(self.event(
            who,
            Event::VendorDisabled,
            id.as_str(),
            serde_json::json!({"tunnels_cut_here": cut}),
        ))
        .change(Change::Vendor(id.clone()))
        .notice(
            Event::VendorDisabled,
            serde_json::json!({"vendor_id": id, "by": who.name}),
        );
        let v = match self.store.set_vendor_enabled(id, false, &|_| done.clone()).await {
            Ok(v) => v,
            Err(e) if unavailable(&e) => {
                tracing::error!(error = %e, vendor = %id, "vendor disabling not stored; kept on this node and retried");
                guard.defer(Pending::DisableVendor {
                    id: id.clone(),
                    effects: done,
                });
                return Err(OpsError::unavailable(format!(
                    "the database cannot be reached: {cut} live tunnels of this vendor were cut on this node and it stays refused here; the change is stored as soon as the database is back"
                )));
            }
            Err(e) => {
                guard.release(&restriction);
                return Err(e.into());
            }
        };
        guard.release(&restriction);
        self.changed().await;
        Ok(v)
    }

    /// Enables a vendor again (admin, security).
    pub async fn enable_vendor(&self, who: &Actor, id: &VendorId) -> OpsResult<Vendor> {
        who.may(Function::EnableVendor)?;
        let record = effects(|v: &Vendor| {
            Effects::audit(self.event(who, Event::VendorEnabled, v.id.as_str(), serde_json::json!({})))
                .change(Change::Vendor(v.id.clone()))
        });
        let v = self.store.set_vendor_enabled(id, true, &record).await?;
        self.changed().await;
        Ok(v)
    }

    /// Registers a technician (admin); the certificate was signed or verified
    /// at the edge. `pinned`: an externally issued certificate.
    pub async fn add_technician(&self, who: &Actor, new: NewTechnician, pinned: bool) -> OpsResult<Technician> {
        who.may(Function::AddTechnician)?;
        let record = effects(|t: &Technician| {
            Effects::audit(self.event(
                who,
                Event::TechnicianAdded,
                t.id.as_str(),
                serde_json::json!({"vendor_id": t.vendor_id, "subject": t.subject, "fingerprint_sha256": t.fingerprint.to_hex(), "pinned": pinned}),
            ))
            .change(Change::Technician(t.id.clone()))
        });
        let t = self.store.add_technician(&new, self.now(), &record).await?;
        self.changed().await;
        Ok(t)
    }

    /// Revokes a technician (admin, security): their live tunnels are cut on
    /// every node. Cut and refused on this node first; `Unavailable` if the
    /// database cannot take it (then retried until stored).
    pub async fn revoke_technician(&self, who: &Actor, vendor: &VendorId, id: &TechnicianId) -> OpsResult<Technician> {
        who.may(Function::RevokeTechnician)?;
        let restriction = Restriction::Technician(vendor.clone(), id.clone());
        let guard = self.guard();
        guard.restrict(restriction.clone());
        let cut = self.registry.cut_where(EndReason::TechnicianRevoked, |l| {
            l.technician_id == *id && l.vendor_id == *vendor
        });
        let at = self.now();
        let done = Effects::audit(self.event(
            who,
            Event::TechnicianRevoked,
            id.as_str(),
            serde_json::json!({"vendor_id": vendor, "tunnels_cut_here": cut}),
        ))
        .change(Change::Technician(id.clone()));
        let t = match self.store.revoke_technician(vendor, id, at, &|_| done.clone()).await {
            Ok(t) => t,
            Err(e) if unavailable(&e) => {
                tracing::error!(error = %e, technician = %id, "revocation not stored; kept on this node and retried");
                guard.defer(Pending::RevokeTechnician {
                    vendor: vendor.clone(),
                    id: id.clone(),
                    at,
                    effects: done,
                });
                return Err(OpsError::unavailable(format!(
                    "the database cannot be reached: {cut} live tunnels of this technician were cut on this node and they stay refused here; the revocation is stored as soon as the database is back"
                )));
            }
            Err(e) => {
                guard.release(&restriction);
                return Err(e.into());
            }
        };
        guard.release(&restriction);
        self.changed().await;
        Ok(t)
    }

    /// Creates a device (admin), assigned to existing vendors.
    pub async fn create_device(&self, who: &Actor, mut new: NewDevice) -> OpsResult<Device> {
        who.may(Function::CreateDevice)?;
        new.vendor_ids.sort();
        new.vendor_ids.dedup();
        for v in &new.vendor_ids {
            self.store
                .vendor(v)
                .await
                .map_err(|e| OpsError::unless_found(e, || OpsError::unprocessable(format!("unknown vendor {v}"))))?;
        }
        let record = effects(|d: &Device| {
            Effects::audit(self.event(
                who,
                Event::DeviceCreated,
                d.id.as_str(),
                serde_json::json!({"name": d.name, "address": d.address, "vendor_ids": d.vendor_ids}),
            ))
            .change(Change::Device(d.id.clone()))
        });
        let d = self
            .store
            .create_device(&new, self.now(), &record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    OpsError::conflict(format!("a device named {:?} already exists", new.name.as_str()))
                }
                other => other.into(),
            })?;
        self.changed().await;
        Ok(d)
    }

    /// Disables a device (admin, security): its live tunnels are cut on every
    /// node and it admits none until enabled again. Cut and refused on this node
    /// first; `Unavailable` if the database cannot take it (then retried until stored).
    pub async fn disable_device(&self, who: &Actor, id: &DeviceId) -> OpsResult<Device> {
        who.may(Function::DisableDevice)?;
        let restriction = Restriction::Device(id.clone());
        let guard = self.guard();
        guard.restrict(restriction.clone());
        let cut = self
            .registry
            .cut_where(EndReason::DeviceDisabled, |l| l.device_id == *id);
        let done = Effects::audit(self.event(
            who,
            Event::DeviceDisabled,
            id.as_str(),
            serde_json::json!({"tunnels_cut_here": cut}),
        ))
        .change(Change::Device(id.clone()))
        .notice(
            Event::DeviceDisabled,
            serde_json::json!({"device_id": id, "by": who.name}),
        );
        let d = match self.store.set_device_enabled(id, false, &|_| done.clone()).await {
            Ok(d) => d,
            Err(e) if unavailable(&e) => {
                tracing::error!(error = %e, device = %id, "device disabling not stored; kept on this node and retried");
                guard.defer(Pending::DisableDevice {
                    id: id.clone(),
                    effects: done,
                });
                return Err(OpsError::unavailable(format!(
                    "the database cannot be reached: {cut} live tunnels of this device were cut on this node and it stays refused here; the change is stored as soon as the database is back"
                )));
            }
            Err(e) => {
                guard.release(&restriction);
                return Err(e.into());
            }
        };
        guard.release(&restriction);
        self.changed().await;
        Ok(d)
    }

    /// Enables a device again (admin).
    pub async fn enable_device(&self, who: &Actor, id: &DeviceId) -> OpsResult<Device> {
        who.may(Function::EnableDevice)?;
        let record = effects(|d: &Device| {
            Effects::audit(self.event(
                who,
                Event::DeviceEnabled,
                d.id.as_str(),
                serde_json::json!({"name": d.name}),
            ))
            .change(Change::Device(d.id.clone()))
        });
        let d = self.store.set_device_enabled(id, true, &record).await?;
        self.changed().await;
        Ok(d)
    }
}
