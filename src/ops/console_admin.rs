//! The admin console's reads, with the API handlers' role checks. Temporary:
//! the API's reads are moving into `ops` queries (branch h-reads); the console
//! switches to them once merged and this file goes away. No change here.

use super::{Actor, Ops, OpsError, OpsResult};
use crate::domain::{Role, TechnicianId, VendorId};
use crate::store::{Device, Technician, User, Vendor};

impl Ops {
    /// Every vendor (admin).
    pub async fn adm_vendors(&self, who: &Actor) -> OpsResult<Vec<Vendor>> {
        who.require(&[Role::Admin])?;
        Ok(self.store.list_vendors().await?)
    }

    /// One vendor (admin).
    pub async fn adm_vendor(&self, who: &Actor, id: &VendorId) -> OpsResult<Vendor> {
        who.require(&[Role::Admin])?;
        Ok(self.store.vendor(id).await?)
    }

    /// A vendor's technicians, revoked ones included (admin).
    pub async fn adm_technicians(&self, who: &Actor, vendor: &VendorId) -> OpsResult<Vec<Technician>> {
        who.require(&[Role::Admin])?;
        let vendor = self.store.vendor(vendor).await?;
        Ok(self.store.list_technicians(&vendor.id).await?)
    }

    /// One technician of a vendor (admin); 404 if it belongs to another.
    pub async fn adm_technician(&self, who: &Actor, vendor: &VendorId, id: &TechnicianId) -> OpsResult<Technician> {
        who.require(&[Role::Admin])?;
        let t = self.store.technician(id).await?;
        if t.vendor_id != *vendor {
            return Err(OpsError::not_found("technician"));
        }
        Ok(t)
    }

    /// Every device with its vendor assignments (admin).
    pub async fn adm_devices(&self, who: &Actor) -> OpsResult<Vec<Device>> {
        who.require(&[Role::Admin])?;
        Ok(self.store.list_devices().await?)
    }

    /// Every account (admin). Tokens are never shown: only their SHA-256 is stored.
    pub async fn adm_users(&self, who: &Actor) -> OpsResult<Vec<User>> {
        who.require(&[Role::Admin])?;
        Ok(self.store.list_users().await?)
    }
}
