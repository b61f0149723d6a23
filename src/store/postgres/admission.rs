//! PostgreSQL's per-object admission reads (see [`AdmissionReads`]): the same
//! columns and rules as `load_admission_snapshot`, for one object, each read in
//! one transaction so the object is seen whole; and the `LISTEN` that wakes the
//! follower when another node commits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;

use super::{parse, PgStore};
use crate::domain::{DeviceId, Fingerprint, TechnicianId, VendorId, WindowId, WindowState};
use crate::policy::{DeviceEntry, TechnicianEntry, VendorEntry, WindowEntry};
use crate::store::{
    AdmissionReads, ChangeListener, DeviceAdmission, StoreError, StoreResult, TechnicianAdmission,
    WindowAdmission, CHANGES_CHANNEL,
};

#[async_trait]
impl AdmissionReads for PgStore {
    async fn admission_window(&self, id: &WindowId, now: DateTime<Utc>) -> StoreResult<Option<WindowAdmission>> {
        let mut tx = self.pool.begin().await?;
        type Row = (String, String, DateTime<Utc>, DateTime<Utc>, bool);
        let Some((vendor, state, starts_at, ends_at, emergency)) = sqlx::query_as::<_, Row>(
            "SELECT vendor_id, state, starts_at, ends_at, emergency FROM windows WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let devices: Vec<String> = sqlx::query_scalar("SELECT device_id FROM window_devices WHERE window_id = $1")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let state = parse::<WindowState>("window state", &state)?;
        let entry = if state == WindowState::Approved && ends_at > now {
            let nets: Vec<String> =
                sqlx::query_scalar("SELECT network::text FROM window_extra_networks WHERE window_id = $1")
                    .bind(id.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
            Some(WindowEntry {
                id: id.clone(),
                vendor_id: VendorId(vendor.clone()),
                starts_at,
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
        type Row = (String, String, String, bool, Option<DateTime<Utc>>, DateTime<Utc>);
        let row = sqlx::query_as::<_, Row>(
            "SELECT vendor_id, fingerprint_sha256, subject, revoked_at IS NOT NULL, not_before, not_after
             FROM technicians WHERE id = $1",
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
                not_before,
                not_after,
            },
        }))
    }

    async fn admission_vendor(&self, id: &VendorId) -> StoreResult<Option<VendorEntry>> {
        let mut tx = self.pool.begin().await?;
        let Some(enabled) = sqlx::query_scalar::<_, bool>("SELECT enabled FROM vendors WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let networks: Vec<String> =
            sqlx::query_scalar("SELECT network::text FROM vendor_networks WHERE vendor_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(w.closed_at, w.ends_at)) FROM windows w
             WHERE w.vendor_id = $1 AND w.had_session AND NOT w.emergency AND w.state IN ('approved', 'revoked')
               AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.window_id = w.id)",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(VendorEntry {
            enabled,
            networks: networks.iter().map(|n| parse("network", n)).collect::<StoreResult<_>>()?,
            oldest_unreported_end: oldest,
        }))
    }

    async fn admission_device(&self, id: &DeviceId) -> StoreResult<Option<DeviceAdmission>> {
        let mut tx = self.pool.begin().await?;
        let Some((name, address, enabled)) =
            sqlx::query_as::<_, (String, String, bool)>("SELECT name, address, enabled FROM devices WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let vendors: Vec<String> = sqlx::query_scalar("SELECT vendor_id FROM device_vendors WHERE device_id = $1")
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
        // A connection of its own, kept for as long as the listener lives.
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(Box::new(PgChanges(listener))))
    }
}

/// `LISTEN portier_changes` on a dedicated connection.
struct PgChanges(PgListener);

#[async_trait]
impl ChangeListener for PgChanges {
    async fn changed(&mut self) -> StoreResult<()> {
        // `Ok(None)`: the connection was lost and re-established; whatever was
        // announced meanwhile is lost, so the caller reads the feed all the same.
        self.0.try_recv().await.map(|_| ()).map_err(StoreError::Unavailable)
    }
}
