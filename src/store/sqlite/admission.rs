//! SQLite's per-object admission reads (see [`AdmissionReads`]): the same
//! columns and rules as `load_admission_snapshot`, for one object, each read in
//! one transaction so the object is seen whole.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{from_us, opt_from_us, parse, us, SqliteStore, Tx};
use crate::domain::{DeviceId, Fingerprint, TechnicianId, VendorId, WindowId, WindowState};
use crate::policy::{DeviceEntry, TechnicianEntry, VendorEntry, WindowEntry};
use crate::store::{
    AdmissionReads, ChangeListener, DeviceAdmission, StoreResult, TechnicianAdmission, WindowAdmission,
};

#[async_trait]
impl AdmissionReads for SqliteStore {
    async fn admission_window(&self, id: &WindowId, now: DateTime<Utc>) -> StoreResult<Option<WindowAdmission>> {
        let mut tx = Tx::begin(&self.pool, "BEGIN").await?;
        let Some((vendor, state, starts, ends, emergency)) = sqlx::query_as::<_, (String, String, i64, i64, bool)>(
            "SELECT vendor_id, state, starts_at, ends_at, emergency FROM windows WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let devices: Vec<String> = sqlx::query_scalar("SELECT device_id FROM window_devices WHERE window_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let state = parse::<WindowState>("window state", &state)?;
        let ends_at = from_us(ends)?;
        let entry = if state == WindowState::Approved && ends > us(now) {
            let nets: Vec<String> = sqlx::query_scalar("SELECT network FROM window_extra_networks WHERE window_id = ?")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
            Some(WindowEntry {
                id: id.clone(),
                vendor_id: VendorId(vendor.clone()),
                starts_at: from_us(starts)?,
                ends_at,
                emergency,
                extra_networks: nets.iter().map(|n| parse("network", n)).collect::<StoreResult<_>>()?,
            })
        } else {
            None
        };
        tx.commit().await?;
        Ok(Some(WindowAdmission {
            vendor_id: VendorId(vendor),
            state,
            devices: devices.into_iter().map(DeviceId).collect(),
            entry,
        }))
    }

    async fn admission_technician(&self, id: &TechnicianId) -> StoreResult<Option<TechnicianAdmission>> {
        type Row = (String, String, String, bool, Option<i64>, i64);
        let row = sqlx::query_as::<_, Row>(
            "SELECT vendor_id, fingerprint_sha256, subject, revoked_at IS NOT NULL, not_before, not_after
             FROM technicians WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some((vendor, fp, subject, revoked, not_before, not_after)) = row else {
            return Ok(None);
        };
        Ok(Some(TechnicianAdmission {
            fingerprint: parse::<Fingerprint>("fingerprint", &fp)?,
            entry: TechnicianEntry {
                id: id.clone(),
                vendor_id: VendorId(vendor),
                subject,
                revoked,
                not_before: opt_from_us(not_before)?,
                not_after: from_us(not_after)?,
            },
        }))
    }

    async fn admission_vendor(&self, id: &VendorId) -> StoreResult<Option<VendorEntry>> {
        let mut tx = Tx::begin(&self.pool, "BEGIN").await?;
        let Some(enabled) = sqlx::query_scalar::<_, bool>("SELECT enabled FROM vendors WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let networks: Vec<String> = sqlx::query_scalar("SELECT network FROM vendor_networks WHERE vendor_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(w.closed_at, w.ends_at)) FROM windows w INDEXED BY windows_report_due
             WHERE w.vendor_id = ? AND w.had_session = 1 AND w.emergency = 0 AND w.state IN ('approved', 'revoked')
               AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.window_id = w.id)",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(VendorEntry {
            enabled,
            networks: networks.iter().map(|n| parse("network", n)).collect::<StoreResult<_>>()?,
            oldest_unreported_end: opt_from_us(oldest)?,
        }))
    }

    async fn admission_device(&self, id: &DeviceId) -> StoreResult<Option<DeviceAdmission>> {
        let mut tx = Tx::begin(&self.pool, "BEGIN").await?;
        let Some((name, address, enabled)) =
            sqlx::query_as::<_, (String, String, bool)>("SELECT name, address, enabled FROM devices WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let vendors: Vec<String> = sqlx::query_scalar("SELECT vendor_id FROM device_vendors WHERE device_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(DeviceAdmission {
            name,
            entry: DeviceEntry {
                id: id.clone(),
                address,
                enabled,
                vendor_ids: vendors.into_iter().map(VendorId).collect(),
            },
        }))
    }

    async fn change_listener(&self) -> StoreResult<Option<Box<dyn ChangeListener>>> {
        // One process writes SQLite: its own Generation wakes the follower.
        Ok(None)
    }
}
