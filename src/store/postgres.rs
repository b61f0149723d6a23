//! The backend for several gateway nodes sharing one state: PostgreSQL with its
//! native types (TIMESTAMPTZ, CIDR, INET). Audit appends take a transaction-scoped
//! advisory lock so that several processes extend one chain without forking it.
//!
//! Unlike SQLite's (see `sqlite.rs`), sqlx's PostgreSQL transactions recover from
//! a failed COMMIT by themselves: dropping the transaction queues a ROLLBACK and
//! resets sqlx's depth count, and ROLLBACK outside a transaction is harmless, so a
//! pooled connection never stays mid-transaction.

mod admission;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{PgPool, QueryBuilder, Row};

use super::*;
use crate::audit::{chain_hash, AuditEvent, AuditRecord, GENESIS_HASH};
use crate::domain::{DeviceName, Fingerprint, Role, WindowState};
use crate::policy::{DeviceEntry, TechnicianEntry, VendorEntry, WindowEntry};

// The notification outbox's SQL (delivery by claims with a lease).
mod outbox;
// Console sessions and account preferences.
mod console;
// Local passwords, second factors and sign-in attempts.
mod identity;
// Personal API tokens.
mod tokens;
// Accounts of the hospital's directory (issue 11).
mod directory;
// Secure disposal (`portier purge`).
mod retention;
// The journal's group commit, in a fixed handful of round trips.
mod journal;

/// Advisory lock key guarding the audit chain's tail ("PORTIER" in ASCII).
const AUDIT_CHAIN_LOCK: i64 = 0x0050_4f52_5449_4552;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    generation: Arc<Generation>,
    health: Arc<StoreHealth>,
    marked: Arc<journal::MarkedWindows>,
}

// TIMESTAMPTZ is native here; these keep the shape of the SQLite backend's code.
fn us(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

#[allow(clippy::unnecessary_wraps)]
fn from_us(v: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
    Ok(v)
}

#[allow(clippy::unnecessary_wraps)]
fn opt_from_us(v: Option<DateTime<Utc>>) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(v)
}

fn parse<T: FromStr>(what: &str, s: &str) -> StoreResult<T> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("{what} {s:?}")))
}

impl PgStore {
    /// Connects to the database of a `postgres://` URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl(url.to_owned()))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Self {
            pool,
            generation: Arc::new(Generation::default()),
            health: Arc::new(StoreHealth::default()),
            marked: Arc::default(),
        })
    }

    /// Fills `not_before` (and re-reads `not_after`) from the stored certificate of
    /// technicians registered before migration 0003. Idempotent; rows whose
    /// certificate cannot be read stay NULL and are refused at admission.
    async fn backfill_certificate_validity(&self) -> StoreResult<()> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, certificate_pem FROM technicians WHERE not_before IS NULL")
                .fetch_all(&self.pool)
                .await?;
        let mut filled = 0u64;
        for (id, pem) in &rows {
            let Some((not_before, not_after)) = stored_certificate_validity(id, pem) else {
                continue;
            };
            sqlx::query("UPDATE technicians SET not_before = $1, not_after = $2 WHERE id = $3")
                .bind(us(not_before))
                .bind(us(not_after))
                .bind(id)
                .execute(&self.pool)
                .await?;
            filled += 1;
        }
        if !rows.is_empty() {
            tracing::info!(
                filled,
                unreadable = rows.len() as u64 - filled,
                "technician certificate validity backfilled"
            );
            self.generation.bump();
        }
        Ok(())
    }

    async fn networks_of(conn: &mut PgConnection, vendor: &VendorId) -> StoreResult<Vec<IpNet>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT network::text FROM vendor_networks WHERE vendor_id = $1 ORDER BY network::text")
                .bind(vendor.as_str())
                .fetch_all(&mut *conn)
                .await?;
        rows.iter().map(|n| parse("network", n)).collect()
    }

    fn vendor_row(row: &PgRow, networks: Vec<IpNet>) -> StoreResult<Vendor> {
        Ok(Vendor {
            id: VendorId(row.try_get("id")?),
            name: row.try_get("name")?,
            networks,
            security_contact: row.try_get("security_contact")?,
            enabled: row.try_get("enabled")?,
            created_at: from_us(row.try_get("created_at")?)?,
        })
    }

    fn technician_row(row: &PgRow) -> StoreResult<Technician> {
        let fp: String = row.try_get("fingerprint_sha256")?;
        Ok(Technician {
            id: TechnicianId(row.try_get("id")?),
            vendor_id: VendorId(row.try_get("vendor_id")?),
            name: row.try_get("name")?,
            subject: row.try_get("subject")?,
            fingerprint: parse::<Fingerprint>("fingerprint", &fp)?,
            certificate_pem: row.try_get("certificate_pem")?,
            not_before: opt_from_us(row.try_get("not_before")?)?,
            not_after: from_us(row.try_get("not_after")?)?,
            revoked_at: opt_from_us(row.try_get("revoked_at")?)?,
            created_at: from_us(row.try_get("created_at")?)?,
        })
    }

    fn device_row(row: &PgRow, vendor_ids: Vec<VendorId>) -> StoreResult<Device> {
        let name: String = row.try_get("name")?;
        Ok(Device {
            id: DeviceId(row.try_get("id")?),
            name: parse::<DeviceName>("device name", &name)?,
            address: row.try_get("address")?,
            protocol: row.try_get("protocol")?,
            description: row.try_get("description")?,
            enabled: row.try_get("enabled")?,
            vendor_ids,
            created_at: from_us(row.try_get("created_at")?)?,
        })
    }

    fn window_row(row: &PgRow, device_ids: Vec<DeviceId>, extra_networks: Vec<IpNet>) -> StoreResult<Window> {
        let state: String = row.try_get("state")?;
        Ok(Window {
            id: WindowId(row.try_get("id")?),
            vendor_id: VendorId(row.try_get("vendor_id")?),
            device_ids,
            starts_at: from_us(row.try_get("starts_at")?)?,
            ends_at: from_us(row.try_get("ends_at")?)?,
            state: parse::<WindowState>("window state", &state)?,
            reason: row.try_get("reason")?,
            emergency: row.try_get("emergency")?,
            extra_networks,
            requested_by: row.try_get("requested_by")?,
            approved_by: row.try_get("approved_by")?,
            decided_by: row.try_get("decided_by")?,
            decided_at: opt_from_us(row.try_get("decided_at")?)?,
            decision_reason: row.try_get("decision_reason")?,
            closed_at: opt_from_us(row.try_get("closed_at")?)?,
            created_at: from_us(row.try_get("created_at")?)?,
            review_verdict: row.try_get("review_verdict")?,
            review_comment: row.try_get("review_comment")?,
            reviewed_by: row.try_get("reviewed_by")?,
            reviewed_at: opt_from_us(row.try_get("reviewed_at")?)?,
            extension_ends_at: opt_from_us(row.try_get("extension_ends_at")?)?,
            extension_reason: row.try_get("extension_reason")?,
            extension_requested_by: row.try_get("extension_requested_by")?,
        })
    }

    fn session_row(row: &PgRow) -> StoreResult<Session> {
        let ip: std::net::IpAddr = row.try_get("source_ip")?;
        let port: i32 = row.try_get("source_port")?;
        let reason: Option<String> = row.try_get("end_reason")?;
        let from_vendor: i64 = row.try_get("bytes_from_vendor")?;
        let to_vendor: i64 = row.try_get("bytes_to_vendor")?;
        Ok(Session {
            id: SessionId(row.try_get("id")?),
            window_id: WindowId(row.try_get("window_id")?),
            vendor_id: VendorId(row.try_get("vendor_id")?),
            technician_id: TechnicianId(row.try_get("technician_id")?),
            technician_subject: row.try_get("technician_subject")?,
            device_id: DeviceId(row.try_get("device_id")?),
            source_ip: ip,
            source_port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
            node: row.try_get("node")?,
            started_at: from_us(row.try_get("started_at")?)?,
            ended_at: opt_from_us(row.try_get("ended_at")?)?,
            bytes_from_vendor: u64::try_from(from_vendor).unwrap_or(0),
            bytes_to_vendor: u64::try_from(to_vendor).unwrap_or(0),
            end_reason: reason.map(|r| parse("end reason", &r)).transpose()?,
        })
    }

    fn audit_row(row: &PgRow) -> StoreResult<AuditRecord> {
        Ok(AuditRecord {
            seq: row.try_get("seq")?,
            at: from_us(row.try_get("at")?)?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            object: row.try_get("object")?,
            outcome: row.try_get("outcome")?,
            details: row.try_get("details")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    fn user_row(row: &PgRow) -> StoreResult<User> {
        let role: String = row.try_get("role")?;
        let vendor: Option<String> = row.try_get("vendor_id")?;
        Ok(User {
            id: crate::domain::UserId(row.try_get("id")?),
            name: row.try_get("name")?,
            role: parse::<Role>("role", &role)?,
            vendor_id: vendor.map(VendorId),
            created_at: from_us(row.try_get("created_at")?)?,
            disabled_at: opt_from_us(row.try_get("disabled_at")?)?,
            lang: row.try_get("lang")?,
            email: row.try_get("email")?,
            last_sign_in_at: opt_from_us(row.try_get("last_sign_in_at")?)?,
        })
    }

    async fn report_addenda(conn: &mut PgConnection, window: &WindowId) -> StoreResult<Vec<Addendum>> {
        sqlx::query("SELECT * FROM report_addenda WHERE window_id = $1 ORDER BY filed_at, id")
            .bind(window.as_str())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(Addendum {
                    id: r.try_get("id")?,
                    text: r.try_get("text")?,
                    filed_by: r.try_get("filed_by")?,
                    filed_at: from_us(r.try_get("filed_at")?)?,
                })
            })
            .collect()
    }

    async fn report_row(conn: &mut PgConnection, row: &PgRow) -> StoreResult<Report> {
        let window_id = WindowId(row.try_get("window_id")?);
        Ok(Report {
            addenda: Self::report_addenda(conn, &window_id).await?,
            window_id,
            vendor_id: VendorId(row.try_get("vendor_id")?),
            summary: row.try_get("summary")?,
            actions: row.try_get("actions")?,
            outcome: row.try_get("outcome")?,
            follow_up: row.try_get("follow_up")?,
            filed_by: row.try_get("filed_by")?,
            filed_at: from_us(row.try_get("filed_at")?)?,
        })
    }

    async fn windows_where(
        conn: &mut PgConnection,
        filter: &WindowFilter,
        id: Option<&WindowId>,
    ) -> StoreResult<Vec<Window>> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("SELECT * FROM windows w WHERE 1 = 1");
        if let Some(id) = id {
            q.push(" AND w.id = ").push_bind(id.as_str());
        }
        if let Some(s) = filter.state {
            q.push(" AND w.state = ").push_bind(s.as_str());
        }
        if let Some(v) = &filter.vendor_id {
            q.push(" AND w.vendor_id = ").push_bind(v.as_str());
        }
        if let Some(d) = &filter.device_id {
            q.push(" AND EXISTS (SELECT 1 FROM window_devices wd WHERE wd.window_id = w.id AND wd.device_id = ")
                .push_bind(d.as_str())
                .push(")");
        }
        if let Some(t) = filter.since {
            q.push(" AND w.ends_at > ").push_bind(us(t));
        }
        if let Some(t) = filter.until {
            q.push(" AND w.starts_at < ").push_bind(us(t));
        }
        if let Some(e) = filter.emergency {
            q.push(" AND w.emergency = ").push_bind(e);
        }
        match filter.reviewed {
            Some(true) => {
                q.push(" AND w.reviewed_at IS NOT NULL");
            }
            Some(false) => {
                q.push(" AND w.reviewed_at IS NULL");
            }
            None => {}
        }
        q.push(" ORDER BY w.starts_at, w.id");
        let rows = q.build().fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let wid: String = row.try_get("id")?;
            let devices: Vec<String> =
                sqlx::query_scalar("SELECT device_id FROM window_devices WHERE window_id = $1 ORDER BY device_id")
                    .bind(&wid)
                    .fetch_all(&mut *conn)
                    .await?;
            let extra: Vec<String> = sqlx::query_scalar(
                "SELECT network::text FROM window_extra_networks WHERE window_id = $1 ORDER BY network::text",
            )
            .bind(&wid)
            .fetch_all(&mut *conn)
            .await?;
            let extra = extra.iter().map(|n| parse("network", n)).collect::<StoreResult<_>>()?;
            out.push(Self::window_row(
                row,
                devices.into_iter().map(DeviceId).collect(),
                extra,
            )?);
        }
        Ok(out)
    }

    async fn window_in(conn: &mut PgConnection, id: &WindowId) -> StoreResult<Window> {
        Self::windows_where(conn, &WindowFilter::default(), Some(id))
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound("window"))
    }

    async fn vendor_in(conn: &mut PgConnection, id: &VendorId) -> StoreResult<Vendor> {
        let row = sqlx::query("SELECT * FROM vendors WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("vendor"))?;
        Self::vendor_row(&row, Self::networks_of(conn, id).await?)
    }

    async fn technician_in(conn: &mut PgConnection, id: &TechnicianId) -> StoreResult<Technician> {
        let row = sqlx::query("SELECT * FROM technicians WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("technician"))?;
        Self::technician_row(&row)
    }

    async fn device_in(conn: &mut PgConnection, id: &DeviceId) -> StoreResult<Device> {
        let row = sqlx::query("SELECT * FROM devices WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("device"))?;
        let vendors: Vec<String> =
            sqlx::query_scalar("SELECT vendor_id FROM device_vendors WHERE device_id = $1 ORDER BY vendor_id")
                .bind(id.as_str())
                .fetch_all(&mut *conn)
                .await?;
        Self::device_row(&row, vendors.into_iter().map(VendorId).collect())
    }

    async fn report_in(conn: &mut PgConnection, window: &WindowId) -> StoreResult<Report> {
        let row = sqlx::query("SELECT * FROM reports WHERE window_id = $1")
            .bind(window.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("report"))?;
        Self::report_row(conn, &row).await
    }

    async fn user_in(conn: &mut PgConnection, id: &UserId) -> StoreResult<User> {
        let row = sqlx::query("SELECT * FROM api_users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        Self::user_row(&row)
    }

    async fn lockdown_in(conn: &mut PgConnection) -> StoreResult<LockdownState> {
        let row = sqlx::query("SELECT * FROM lockdown WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        Ok(LockdownState {
            active: row.try_get("active")?,
            reason: row.try_get("reason")?,
            set_by: row.try_get("set_by")?,
            set_at: opt_from_us(row.try_get("set_at")?)?,
        })
    }

    /// Opens a transaction that will append to the audit chain, taking the
    /// chain's lock before anything else: every such transaction takes it first,
    /// so none can hold a row another waits for while waiting for the chain
    /// (a change, then its audit event, against a journal batch whose first
    /// event is appended before its next session's window row is updated).
    async fn begin_chained(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        lock_chain(&mut tx).await?;
        Ok(tx)
    }

    /// Writes `result`'s effects in the open transaction, commits, and tells the
    /// admission cache (`bump`, or any feed entry written) that state changed.
    async fn finish<T: Send>(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        result: T,
        record: Record<'_, T>,
        bump: bool,
    ) -> StoreResult<T> {
        let effects = record(&result);
        record_in(&mut tx, &effects).await?;
        tx.commit().await?;
        if bump || !effects.changes.is_empty() {
            self.generation.bump();
        }
        Ok(result)
    }
}

/// Takes the audit chain's lock until the transaction ends (reentrant).
async fn lock_chain(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_CHAIN_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Appends one event to the chain inside an open write transaction.
async fn append_audit_in(conn: &mut PgConnection, e: &AuditEvent) -> StoreResult<AuditRecord> {
    // Serializes appends across every process sharing the database: no fork, no gap.
    lock_chain(conn).await?;
    let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
    let seq = prev_seq + 1;
    let details = e.details.to_string();
    let hash = chain_hash(
        &prev_hash, seq, e.at, &e.actor, &e.action, &e.object, &e.outcome, &details,
    );
    sqlx::query("INSERT INTO audit_events (seq, at, actor, action, object, outcome, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(seq)
        .bind(us(e.at))
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.object)
        .bind(&e.outcome)
        .bind(&details)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(AuditRecord {
        seq,
        at: e.at,
        actor: e.actor.clone(),
        action: e.action.clone(),
        object: e.object.clone(),
        outcome: e.outcome.clone(),
        details,
        prev_hash,
        hash,
    })
}

/// Writes a change's effects inside its open write transaction: the audit event
/// first, which takes the chain's lock, so the feed entries' `seq` (MAX + 1,
/// assigned under that lock, held until commit) grows in commit order across
/// nodes; then one outbox row per notice, and a notification waking the nodes
/// that follow the feed (delivered at commit, dropped on rollback).
async fn record_in(conn: &mut PgConnection, effects: &Effects) -> StoreResult<AuditRecord> {
    let audit = append_audit_in(conn, &effects.audit).await?;
    let mut last = None;
    for change in &effects.changes {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO changes (seq, at, kind, object, audit_seq)
             SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4 FROM changes RETURNING seq",
        )
        .bind(us(audit.at))
        .bind(change.kind())
        .bind(change.object())
        .bind(audit.seq)
        .fetch_one(&mut *conn)
        .await?;
        last = Some(seq);
    }
    for notice in &effects.notices {
        outbox::insert_in(&mut *conn, notice, audit.at).await?;
    }
    if let Some(seq) = last {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(seq.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(audit)
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        self.backfill_certificate_validity().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn generation(&self) -> Arc<Generation> {
        self.generation.clone()
    }

    fn health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    async fn probe_write(&self, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE store_probe SET at = $1 WHERE id = 1")
            .bind(us(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_node(&self, me: &NodeIdentity, stale_before: DateTime<Utc>) -> StoreResult<NodeClaim> {
        let mut tx = self.pool.begin().await?;
        // Two nodes starting at once with one name: the second waits for the first's row.
        sqlx::query("INSERT INTO nodes (name, instance_id, pid, host, started_at, last_seen, stopped_at) VALUES ($1, '', 0, '', $2, $2, $2) ON CONFLICT (name) DO NOTHING")
            .bind(&me.name)
            .bind(us(me.started_at))
            .execute(&mut *tx)
            .await?;
        let row =
            sqlx::query("SELECT instance_id, pid, host, last_seen, stopped_at FROM nodes WHERE name = $1 FOR UPDATE")
                .bind(&me.name)
                .fetch_one(&mut *tx)
                .await?;
        let holder = NodeHolder {
            instance_id: row.try_get("instance_id")?,
            pid: u32::try_from(row.try_get::<i64, _>("pid")?).unwrap_or(0),
            host: row.try_get("host")?,
            last_seen: from_us(row.try_get("last_seen")?)?,
            stopped: row.try_get::<Option<DateTime<Utc>>, _>("stopped_at")?.is_some(),
        };
        if let Some(refused) = holder.refuses(me, stale_before) {
            return Ok(refused);
        }
        // A clean stop's last_seen is its stop: what it left open ended then.
        let previous_last_seen = Some(holder.last_seen);
        sqlx::query(
            "UPDATE nodes SET instance_id = $2, pid = $3, host = $4, started_at = $5, last_seen = $5, stopped_at = NULL WHERE name = $1",
        )
        .bind(&me.name)
        .bind(&me.instance_id)
        .bind(i64::from(me.pid))
        .bind(&me.host)
        .bind(us(me.started_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(NodeClaim::Claimed { previous_last_seen })
    }

    async fn node_heartbeat(&self, beat: &Heartbeat) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let ours = sqlx::query("UPDATE nodes SET last_seen = $1 WHERE name = $2 AND instance_id = $3")
            .bind(us(beat.at))
            .bind(&beat.node.name)
            .bind(&beat.node.instance_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if !beat.checkpoints.is_empty() {
            // One statement for every live tunnel (thousands on a busy node):
            // a round trip each made the beat outlast its timeout at ~9,000
            // tunnels, and the node then refused tunnels as if the store were
            // down. Rows are locked in id order, as a batch of ends does.
            let mut rows: Vec<_> = beat.checkpoints.iter().collect();
            rows.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
            let ups: Vec<i64> = rows
                .iter()
                .map(|(_, up, _)| i64::try_from(*up).unwrap_or(i64::MAX))
                .collect();
            let downs: Vec<i64> = rows
                .iter()
                .map(|(_, _, down)| i64::try_from(*down).unwrap_or(i64::MAX))
                .collect();
            sqlx::query(
                "WITH c AS (SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS c(id, up, down)),
                      locked AS (SELECT s.id FROM sessions s JOIN c ON c.id = s.id
                                 WHERE s.ended_at IS NULL ORDER BY s.id FOR UPDATE OF s)
                 UPDATE sessions s SET bytes_from_vendor = c.up, bytes_to_vendor = c.down, checkpoint_at = $4
                 FROM c, locked WHERE s.id = c.id AND locked.id = c.id",
            )
            .bind(&ids)
            .bind(&ups)
            .bind(&downs)
            .bind(us(beat.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ours)
    }

    async fn live_nodes(&self, after: DateTime<Utc>) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM nodes WHERE stopped_at IS NULL AND last_seen >= $1 ORDER BY name")
                .bind(us(after))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn list_nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        let rows = sqlx::query(
            "SELECT n.name, n.instance_id, n.pid, n.host, n.started_at, n.last_seen, n.stopped_at,
                    (SELECT COUNT(*) FROM sessions s WHERE s.node = n.name AND s.ended_at IS NULL) AS open_sessions
             FROM nodes n ORDER BY n.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeRecord {
                    name: row.try_get("name")?,
                    instance_id: row.try_get("instance_id")?,
                    pid: u32::try_from(row.try_get::<i64, _>("pid")?).unwrap_or(0),
                    host: row.try_get("host")?,
                    started_at: from_us(row.try_get("started_at")?)?,
                    last_seen: from_us(row.try_get("last_seen")?)?,
                    stopped_at: opt_from_us(row.try_get("stopped_at")?)?,
                    open_sessions: row.try_get("open_sessions")?,
                })
            })
            .collect()
    }

    async fn release_node(&self, me: &NodeIdentity, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET stopped_at = $1, last_seen = $1 WHERE name = $2 AND instance_id = $3")
            .bind(us(at))
            .bind(&me.name)
            .bind(&me.instance_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_vendor(&self, v: &NewVendor, at: DateTime<Utc>, record: Record<'_, Vendor>) -> StoreResult<Vendor> {
        let id = VendorId::generate();
        let mut tx = self.begin_chained().await?;
        sqlx::query(
            "INSERT INTO vendors (id, name, security_contact, enabled, created_at) VALUES ($1, $2, $3, TRUE, $4)",
        )
        .bind(id.as_str())
        .bind(&v.name)
        .bind(&v.security_contact)
        .bind(us(at))
        .execute(&mut *tx)
        .await?;
        for n in &v.networks {
            sqlx::query(
                "INSERT INTO vendor_networks (vendor_id, network) VALUES ($1, $2::cidr) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(n.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let vendor = Self::vendor_in(&mut tx, &id).await?;
        self.finish(tx, vendor, record, true).await
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Vendor> {
        let mut conn = self.pool.acquire().await?;
        Self::vendor_in(&mut conn, id).await
    }

    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>> {
        let rows = sqlx::query("SELECT * FROM vendors ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut nets: HashMap<String, Vec<IpNet>> = HashMap::new();
        for (v, n) in sqlx::query_as::<_, (String, String)>(
            "SELECT vendor_id, network::text FROM vendor_networks ORDER BY network::text",
        )
        .fetch_all(&self.pool)
        .await?
        {
            nets.entry(v).or_default().push(parse("network", &n)?);
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Self::vendor_row(r, nets.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    async fn replace_vendor_networks(
        &self,
        id: &VendorId,
        networks: &[IpNet],
        record: Record<'_, Vendor>,
    ) -> StoreResult<Vendor> {
        let mut tx = self.begin_chained().await?;
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM vendors WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("vendor"));
        }
        sqlx::query("DELETE FROM vendor_networks WHERE vendor_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        for n in networks {
            sqlx::query(
                "INSERT INTO vendor_networks (vendor_id, network) VALUES ($1, $2::cidr) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(n.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let vendor = Self::vendor_in(&mut tx, id).await?;
        self.finish(tx, vendor, record, true).await
    }

    async fn set_vendor_enabled(
        &self,
        id: &VendorId,
        enabled: bool,
        record: Record<'_, Vendor>,
    ) -> StoreResult<Vendor> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query("UPDATE vendors SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("vendor"));
        }
        let vendor = Self::vendor_in(&mut tx, id).await?;
        self.finish(tx, vendor, record, true).await
    }

    async fn add_technician(
        &self,
        t: &NewTechnician,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician> {
        let id = TechnicianId::generate();
        let mut tx = self.begin_chained().await?;
        sqlx::query(
            "INSERT INTO technicians (id, vendor_id, name, subject, fingerprint_sha256, certificate_pem, not_before, not_after, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.as_str())
        .bind(t.vendor_id.as_str())
        .bind(&t.name)
        .bind(&t.subject)
        .bind(t.fingerprint.to_hex())
        .bind(&t.certificate_pem)
        .bind(us(t.not_before))
        .bind(us(t.not_after))
        .bind(us(at))
        .execute(&mut *tx)
        .await?;
        let technician = Self::technician_in(&mut tx, &id).await?;
        self.finish(tx, technician, record, true).await
    }

    async fn technician(&self, id: &TechnicianId) -> StoreResult<Technician> {
        let mut conn = self.pool.acquire().await?;
        Self::technician_in(&mut conn, id).await
    }

    async fn list_technicians(&self, vendor: &VendorId) -> StoreResult<Vec<Technician>> {
        sqlx::query("SELECT * FROM technicians WHERE vendor_id = $1 ORDER BY created_at, id")
            .bind(vendor.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::technician_row)
            .collect()
    }

    async fn revoke_technician(
        &self,
        vendor: &VendorId,
        id: &TechnicianId,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "UPDATE technicians SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND vendor_id = $3",
        )
        .bind(us(at))
        .bind(id.as_str())
        .bind(vendor.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("technician"));
        }
        let technician = Self::technician_in(&mut tx, id).await?;
        self.finish(tx, technician, record, true).await
    }

    async fn create_device(&self, d: &NewDevice, at: DateTime<Utc>, record: Record<'_, Device>) -> StoreResult<Device> {
        let id = DeviceId::generate();
        let mut tx = self.begin_chained().await?;
        sqlx::query("INSERT INTO devices (id, name, address, protocol, description, enabled, created_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6)")
            .bind(id.as_str())
            .bind(d.name.as_str())
            .bind(&d.address)
            .bind(&d.protocol)
            .bind(&d.description)
            .bind(us(at))
            .execute(&mut *tx)
            .await?;
        for v in &d.vendor_ids {
            sqlx::query("INSERT INTO device_vendors (device_id, vendor_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id.as_str())
                .bind(v.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let device = Self::device_in(&mut tx, &id).await?;
        self.finish(tx, device, record, true).await
    }

    async fn device(&self, id: &DeviceId) -> StoreResult<Device> {
        let mut conn = self.pool.acquire().await?;
        Self::device_in(&mut conn, id).await
    }

    async fn list_devices(&self) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query("SELECT * FROM devices ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut assigned: HashMap<String, Vec<VendorId>> = HashMap::new();
        for (d, v) in
            sqlx::query_as::<_, (String, String)>("SELECT device_id, vendor_id FROM device_vendors ORDER BY vendor_id")
                .fetch_all(&self.pool)
                .await?
        {
            assigned.entry(d).or_default().push(VendorId(v));
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Self::device_row(r, assigned.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    async fn set_device_enabled(
        &self,
        id: &DeviceId,
        enabled: bool,
        record: Record<'_, Device>,
    ) -> StoreResult<Device> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query("UPDATE devices SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("device"));
        }
        let device = Self::device_in(&mut tx, id).await?;
        self.finish(tx, device, record, true).await
    }

    async fn create_window(&self, w: &NewWindow, at: DateTime<Utc>, record: Record<'_, Window>) -> StoreResult<Window> {
        let id = WindowId::generate();
        let state = if w.approved_by.is_some() {
            WindowState::Approved
        } else {
            WindowState::Requested
        };
        let mut tx = self.begin_chained().await?;
        sqlx::query(
            "INSERT INTO windows (id, vendor_id, starts_at, ends_at, state, reason, emergency, requested_by, approved_by, decided_by, decided_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(id.as_str())
        .bind(w.vendor_id.as_str())
        .bind(us(w.starts_at))
        .bind(us(w.ends_at))
        .bind(state.as_str())
        .bind(&w.reason)
        .bind(w.emergency)
        .bind(&w.requested_by)
        .bind(&w.approved_by)
        .bind(&w.approved_by)
        .bind(w.approved_by.as_ref().map(|_| us(at)))
        .bind(us(at))
        .execute(&mut *tx)
        .await?;
        for d in &w.device_ids {
            sqlx::query("INSERT INTO window_devices (window_id, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id.as_str())
                .bind(d.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for n in &w.extra_networks {
            sqlx::query(
                "INSERT INTO window_extra_networks (window_id, network) VALUES ($1, $2::cidr) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(n.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let window = Self::window_in(&mut tx, &id).await?;
        self.finish(tx, window, record, state == WindowState::Approved).await
    }

    async fn window(&self, id: &WindowId) -> StoreResult<Window> {
        let mut conn = self.pool.acquire().await?;
        Self::window_in(&mut conn, id).await
    }

    async fn list_windows(&self, f: &WindowFilter) -> StoreResult<Vec<Window>> {
        let mut conn = self.pool.acquire().await?;
        Self::windows_where(&mut conn, f, None).await
    }

    async fn transition_window(
        &self,
        id: &WindowId,
        t: &WindowTransition,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("UPDATE windows SET state = ");
        q.push_bind(t.to.as_str());
        q.push(", decided_by = ").push_bind(&t.by);
        q.push(", decided_at = ").push_bind(us(t.at));
        q.push(", decision_reason = ").push_bind(&t.reason);
        if t.to == WindowState::Approved {
            q.push(", approved_by = ").push_bind(&t.by);
        }
        if t.to == WindowState::Revoked {
            q.push(", closed_at = ").push_bind(us(t.at));
        }
        q.push(" WHERE id = ").push_bind(id.as_str());
        q.push(" AND state IN (");
        let mut sep = q.separated(", ");
        for s in &t.from {
            sep.push_bind(s.as_str());
        }
        q.push(")");
        let mut tx = self.begin_chained().await?;
        let done = q.build().execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            let current = Self::window_in(&mut tx, id).await?;
            return Err(StoreError::Conflict(format!("window is {}", current.state.as_str())));
        }
        let window = Self::window_in(&mut tx, id).await?;
        self.finish(tx, window, record, true).await
    }

    async fn review_window(
        &self,
        id: &WindowId,
        verdict: &str,
        comment: &str,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "UPDATE windows SET review_verdict = $1, review_comment = $2, reviewed_by = $3, reviewed_at = $4
             WHERE id = $5 AND emergency = $6 AND reviewed_at IS NULL",
        )
        .bind(verdict)
        .bind(comment)
        .bind(by)
        .bind(us(at))
        .bind(id.as_str())
        .bind(true)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let w = Self::window_in(&mut tx, id).await?;
            return Err(StoreError::Conflict(if w.emergency {
                "this emergency grant has already been reviewed".into()
            } else {
                "only emergency grants are reviewed".into()
            }));
        }
        let window = Self::window_in(&mut tx, id).await?;
        self.finish(tx, window, record, false).await
    }

    async fn request_extension(
        &self,
        id: &WindowId,
        ends_at: DateTime<Utc>,
        reason: &str,
        by: &str,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "UPDATE windows SET extension_ends_at = $1, extension_reason = $2, extension_requested_by = $3
             WHERE id = $4 AND state = 'approved' AND extension_ends_at IS NULL AND ends_at < $5",
        )
        .bind(us(ends_at))
        .bind(reason)
        .bind(by)
        .bind(id.as_str())
        .bind(us(ends_at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let w = Self::window_in(&mut tx, id).await?;
            return Err(StoreError::Conflict(if w.extension_ends_at.is_some() {
                "an extension is already pending for this window".into()
            } else if w.state != WindowState::Approved {
                format!("window is {}", w.state.as_str())
            } else {
                "an extension must end after the current end".into()
            }));
        }
        let window = Self::window_in(&mut tx, id).await?;
        self.finish(tx, window, record, false).await
    }

    async fn decide_extension(
        &self,
        id: &WindowId,
        pending: DateTime<Utc>,
        approve: bool,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        let sql = if approve {
            "UPDATE windows SET ends_at = extension_ends_at, extension_ends_at = NULL, decided_by = $1, decided_at = $2
             WHERE id = $3 AND state = 'approved' AND extension_ends_at = $4"
        } else {
            "UPDATE windows SET extension_ends_at = NULL, decided_by = $1, decided_at = $2
             WHERE id = $3 AND state = 'approved' AND extension_ends_at = $4"
        };
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(sql)
            .bind(by)
            .bind(us(at))
            .bind(id.as_str())
            .bind(us(pending))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            Self::window_in(&mut tx, id).await?;
            return Err(StoreError::Conflict(
                "no extension is pending for this window, or it changed meanwhile".into(),
            ));
        }
        let window = Self::window_in(&mut tx, id).await?;
        self.finish(tx, window, record, approve).await
    }

    async fn unreported_windows(
        &self,
        vendor: Option<&VendorId>,
        ended_before: DateTime<Utc>,
    ) -> StoreResult<Vec<Window>> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("SELECT w.id FROM windows w WHERE w.had_session = ");
        q.push_bind(true);
        q.push(" AND w.emergency = ").push_bind(false);
        q.push(
            " AND w.state IN ('approved', 'revoked') AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.window_id = w.id)",
        );
        q.push(" AND COALESCE(w.closed_at, w.ends_at) <= ")
            .push_bind(us(ended_before));
        if let Some(v) = vendor {
            q.push(" AND w.vendor_id = ").push_bind(v.as_str());
        }
        q.push(" ORDER BY COALESCE(w.closed_at, w.ends_at)");
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(Self::window_in(&mut conn, &WindowId(id)).await?);
        }
        Ok(out)
    }

    async fn file_report(&self, r: &NewReport, at: DateTime<Utc>, record: Record<'_, Report>) -> StoreResult<Report> {
        let mut tx = self.begin_chained().await?;
        let done = sqlx::query(
            "INSERT INTO reports (window_id, vendor_id, summary, actions, outcome, follow_up, filed_by, filed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.window_id.as_str())
        .bind(r.vendor_id.as_str())
        .bind(&r.summary)
        .bind(&r.actions)
        .bind(&r.outcome)
        .bind(&r.follow_up)
        .bind(&r.filed_by)
        .bind(us(at))
        .execute(&mut *tx)
        .await;
        match done {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::Conflict(
                    "this window already has a report; file an addendum to correct it".into(),
                ))
            }
            other => {
                other?;
            }
        }
        let report = Self::report_in(&mut tx, &r.window_id).await?;
        // A filed report may lift an overdue block.
        self.finish(tx, report, record, true).await
    }

    async fn report(&self, window: &WindowId) -> StoreResult<Report> {
        let mut conn = self.pool.acquire().await?;
        Self::report_in(&mut conn, window).await
    }

    async fn list_reports(&self, f: &ReportFilter) -> StoreResult<Vec<Report>> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("SELECT * FROM reports WHERE 1 = 1");
        if let Some(v) = &f.vendor_id {
            q.push(" AND vendor_id = ").push_bind(v.as_str());
        }
        if let Some(t) = f.since {
            q.push(" AND filed_at >= ").push_bind(us(t));
        }
        if let Some(t) = f.until {
            q.push(" AND filed_at < ").push_bind(us(t));
        }
        q.push(" ORDER BY filed_at, window_id");
        let mut conn = self.pool.acquire().await?;
        let rows = q.build().fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(Self::report_row(&mut conn, row).await?);
        }
        Ok(out)
    }

    async fn add_report_addendum(
        &self,
        window: &WindowId,
        text: &str,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Report>,
    ) -> StoreResult<Report> {
        let mut tx = self.begin_chained().await?;
        Self::report_in(&mut tx, window).await?;
        sqlx::query("INSERT INTO report_addenda (id, window_id, text, filed_by, filed_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(window.as_str())
            .bind(text)
            .bind(by)
            .bind(us(at))
            .execute(&mut *tx)
            .await?;
        let report = Self::report_in(&mut tx, window).await?;
        self.finish(tx, report, record, false).await
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Session> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        Self::session_row(&row)
    }

    async fn list_sessions(&self, f: &SessionFilter) -> StoreResult<Vec<Session>> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("SELECT * FROM sessions WHERE 1 = 1");
        if let Some(v) = &f.vendor_id {
            q.push(" AND vendor_id = ").push_bind(v.as_str());
        }
        if let Some(d) = &f.device_id {
            q.push(" AND device_id = ").push_bind(d.as_str());
        }
        if let Some(w) = &f.window_id {
            q.push(" AND window_id = ").push_bind(w.as_str());
        }
        match (f.active, f.live_after) {
            (Some(true), None) => {
                q.push(" AND ended_at IS NULL");
            }
            (Some(false), None) => {
                q.push(" AND ended_at IS NOT NULL");
            }
            (Some(active), Some(after)) => {
                q.push(if active { " AND " } else { " AND NOT " })
                    .push("(ended_at IS NULL AND EXISTS (SELECT 1 FROM nodes n WHERE n.name = sessions.node AND n.stopped_at IS NULL AND n.last_seen >= ")
                    .push_bind(us(after))
                    .push("))");
            }
            (None, _) => {}
        }
        if let Some(t) = f.since {
            q.push(" AND started_at >= ").push_bind(us(t));
        }
        if let Some(t) = f.until {
            q.push(" AND started_at < ").push_bind(us(t));
        }
        q.push(" ORDER BY started_at, id");
        if let Some(l) = f.limit {
            q.push(" LIMIT ").push_bind(i64::from(l));
        }
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::session_row)
            .collect()
    }

    async fn close_orphan_sessions(&self, node: &str, last_alive: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.begin_chained().await?;
        let rows = sqlx::query(
            "SELECT id, window_id, vendor_id, started_at, checkpoint_at, bytes_from_vendor, bytes_to_vendor
             FROM sessions WHERE node = $1 AND ended_at IS NULL ORDER BY started_at, id FOR UPDATE",
        )
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let started = from_us(row.try_get("started_at")?)?;
            let checkpoint = opt_from_us(row.try_get("checkpoint_at")?)?;
            let ended_at = orphan_end(last_alive, started, checkpoint);
            let up: i64 = row.try_get("bytes_from_vendor")?;
            let down: i64 = row.try_get("bytes_to_vendor")?;
            sqlx::query(
                "UPDATE sessions SET ended_at = $1, end_reason = 'gateway_restart' WHERE id = $2 AND ended_at IS NULL",
            )
            .bind(us(ended_at))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            let event = orphan_event(
                &id,
                ended_at,
                row.try_get("window_id")?,
                row.try_get("vendor_id")?,
                up,
                down,
                node,
                OrphanCloser::Restart,
            );
            append_audit_in(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn close_lost_node_sessions(&self, closed_by: &str, stale_before: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // The lost nodes' rows, locked: a node sweeping at the same time skips
        // them (no double close), and the lost node's restart (`claim_node`
        // locks its row) waits for this sweep, so a session it starts after is
        // never taken for a lost one. The staleness is re-checked under the lock.
        let lost = sqlx::query(
            "SELECT name, last_seen FROM nodes n
             WHERE name <> $1 AND last_seen < $2
               AND EXISTS (SELECT 1 FROM sessions s WHERE s.node = n.name AND s.ended_at IS NULL)
             ORDER BY name FOR UPDATE SKIP LOCKED",
        )
        .bind(closed_by)
        .bind(us(stale_before))
        .fetch_all(&mut *tx)
        .await?;
        // The chain's lock before any session row (see `begin_chained`); only
        // when something is lost, so the usual empty sweep never waits for it.
        if !lost.is_empty() {
            lock_chain(&mut tx).await?;
        }
        let mut closed = 0;
        for node_row in &lost {
            let node: String = node_row.try_get("name")?;
            let last_seen = from_us(node_row.try_get("last_seen")?)?;
            let rows = sqlx::query(
                "SELECT id, window_id, vendor_id, started_at, checkpoint_at, bytes_from_vendor, bytes_to_vendor
                 FROM sessions WHERE node = $1 AND ended_at IS NULL ORDER BY started_at, id FOR UPDATE",
            )
            .bind(&node)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let id: String = row.try_get("id")?;
                let started = from_us(row.try_get("started_at")?)?;
                let checkpoint = opt_from_us(row.try_get("checkpoint_at")?)?;
                let ended_at = orphan_end(last_seen, started, checkpoint);
                let done = sqlx::query(
                    "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
                )
                .bind(us(ended_at))
                .bind(crate::domain::EndReason::NodeLost.as_str())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                // Written by someone else since: theirs to record.
                if done.rows_affected() == 0 {
                    continue;
                }
                closed += 1;
                let event = orphan_event(
                    &id,
                    ended_at,
                    row.try_get("window_id")?,
                    row.try_get("vendor_id")?,
                    row.try_get("bytes_from_vendor")?,
                    row.try_get("bytes_to_vendor")?,
                    &node,
                    OrphanCloser::Survivor(closed_by),
                );
                append_audit_in(&mut tx, &event).await?;
            }
        }
        tx.commit().await?;
        Ok(closed)
    }

    async fn write_journal(&self, entries: &[JournalEntry]) -> StoreResult<()> {
        self.write_journal_batch(entries).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let mut q = QueryBuilder::<sqlx::Postgres>::new("SELECT * FROM audit_events WHERE 1 = 1");
        if let Some(t) = f.since {
            q.push(" AND at >= ").push_bind(us(t));
        }
        if let Some(t) = f.until {
            q.push(" AND at < ").push_bind(us(t));
        }
        if let Some(s) = f.after_seq {
            q.push(" AND seq > ").push_bind(s);
        }
        if let Some(a) = &f.action {
            q.push(" AND action = ").push_bind(a);
        }
        q.push(if f.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        });
        if let Some(l) = f.limit {
            q.push(" LIMIT ").push_bind(i64::from(l));
        }
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::audit_row)
            .collect()
    }

    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<AuditRecord> {
        let mut tx = self.begin_chained().await?;
        let rec = append_audit_in(&mut tx, e).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn record(&self, effects: &Effects) -> StoreResult<AuditRecord> {
        let mut tx = self.begin_chained().await?;
        let rec = record_in(&mut tx, effects).await?;
        tx.commit().await?;
        if !effects.changes.is_empty() {
            self.generation.bump();
        }
        Ok(rec)
    }

    async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<ChangeRecord>> {
        sqlx::query_as::<_, (i64, DateTime<Utc>, String, String)>(
            "SELECT seq, at, kind, object FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(seq, at, kind, object)| {
            Ok(ChangeRecord {
                seq,
                at: from_us(at)?,
                change: Change::from_row(&kind, &object),
            })
        })
        .collect()
    }

    async fn last_change_seq(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn prune_changes(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        // The newest entry stays whatever its age: the next seq is MAX(seq) + 1.
        let done = sqlx::query("DELETE FROM changes WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(us(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_user(&self, u: &NewUser, at: DateTime<Utc>, record: Record<'_, User>) -> StoreResult<User> {
        let id = UserId::generate();
        let mut tx = self.begin_chained().await?;
        // api_users.token_sha256 is no longer read (tokens live in api_tokens):
        // a unique placeholder fills the old NOT NULL UNIQUE column.
        sqlx::query(
            "INSERT INTO api_users (id, name, role, vendor_id, token_sha256, created_at, email) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(&u.name)
        .bind(u.role.as_str())
        .bind(u.vendor_id.as_ref().map(VendorId::as_str))
        .bind(format!("unused:{id}"))
        .bind(us(at))
        .bind(&u.email)
        .execute(&mut *tx)
        .await?;
        let first = NewApiToken {
            user_id: id.clone(),
            name: "initial".into(),
            prefix: u.token_prefix.clone(),
            token_sha256: u.token_sha256.clone(),
            expires_at: u.token_expires_at,
        };
        Self::insert_token_in(&mut tx, &crate::domain::TokenId::generate(), &first, at).await?;
        let user = Self::user_in(&mut tx, &id).await?;
        self.finish(tx, user, record, false).await
    }

    async fn user(&self, id: &UserId) -> StoreResult<User> {
        let mut conn = self.pool.acquire().await?;
        Self::user_in(&mut conn, id).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        sqlx::query("SELECT * FROM api_users ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::user_row)
            .collect()
    }

    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled_at: Option<DateTime<Utc>>,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        let mut tx = self.begin_chained().await?;
        // Disabling twice keeps the first instant (like a technician's revocation).
        let done = sqlx::query(
            "UPDATE api_users SET disabled_at = CASE WHEN $1::timestamptz IS NULL THEN NULL ELSE COALESCE(disabled_at, $1) END
             WHERE id = $2",
        )
        .bind(disabled_at.map(us))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        let user = Self::user_in(&mut tx, id).await?;
        self.finish(tx, user, record, false).await
    }

    async fn set_user_lang(&self, id: &UserId, lang: Option<&str>, record: Record<'_, User>) -> StoreResult<User> {
        self.console_set_lang(id, lang, record).await
    }

    async fn create_console_session(
        &self,
        session: &ConsoleSession,
        record: Record<'_, ConsoleSession>,
    ) -> StoreResult<ConsoleSession> {
        self.console_create(session, record).await
    }

    async fn console_session(&self, id_sha256: &str) -> StoreResult<Option<(ConsoleSession, User)>> {
        self.console_lookup(id_sha256).await
    }

    async fn touch_console_session(&self, id_sha256: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.console_touch(id_sha256, at).await
    }

    async fn end_console_sessions(
        &self,
        user: &UserId,
        only: Option<&str>,
        record: Record<'_, u64>,
    ) -> StoreResult<u64> {
        self.console_end(user, only, record).await
    }

    async fn prune_console_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.console_prune(idle_before, created_before).await
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<(User, Credentials)>> {
        self.identity_by_name(name).await
    }

    async fn credentials(&self, id: &UserId) -> StoreResult<Credentials> {
        self.identity_credentials(id).await
    }

    async fn all_credentials(&self) -> StoreResult<Vec<(UserId, Credentials)>> {
        self.identity_all_credentials().await
    }

    async fn set_password(
        &self,
        id: &UserId,
        password_hash: &str,
        must_change: bool,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.identity_set_password(id, password_hash, must_change, record).await
    }

    async fn set_directory_account(
        &self,
        id: &UserId,
        dn: &str,
        role: Role,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.directory_set_account(id, dn, role, record).await
    }

    async fn set_totp(
        &self,
        id: &UserId,
        secret: Option<&str>,
        enabled_at: Option<DateTime<Utc>>,
        last_step: Option<i64>,
        recovery_sha256: &[String],
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.identity_set_totp(id, secret, enabled_at, last_step, recovery_sha256, record)
            .await
    }

    async fn replace_totp_secret(&self, id: &UserId, old: &str, new: &str) -> StoreResult<bool> {
        self.identity_replace_totp_secret(id, old, new).await
    }

    async fn use_totp_step(&self, id: &UserId, step: i64) -> StoreResult<bool> {
        self.identity_use_step(id, step).await
    }

    async fn use_recovery_code(
        &self,
        id: &UserId,
        code_sha256: &str,
        at: DateTime<Utc>,
        record: Record<'_, ()>,
    ) -> StoreResult<bool> {
        self.identity_use_recovery(id, code_sha256, at, record).await
    }

    async fn add_sign_in_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        count_since: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        self.identity_add_failure(keys, at, count_since, forget_before).await
    }

    async fn sign_in_failures(&self, key: &str, since: DateTime<Utc>) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        self.identity_failures(key, since).await
    }

    async fn clear_sign_in_failures(&self, key: &str) -> StoreResult<()> {
        self.identity_clear_failures(key).await
    }

    async fn create_pending_sign_in(&self, p: &PendingSignIn, expired_before: DateTime<Utc>) -> StoreResult<()> {
        self.identity_create_pending(p, expired_before).await
    }

    async fn pending_sign_in(&self, id_sha256: &str) -> StoreResult<Option<PendingSignIn>> {
        self.identity_pending(id_sha256).await
    }

    async fn end_pending_sign_in(&self, id_sha256: &str) -> StoreResult<()> {
        self.identity_end_pending(id_sha256).await
    }

    async fn user_by_token_hash(&self, token_sha256: &str, now: DateTime<Utc>) -> StoreResult<Option<User>> {
        self.tokens_authenticate(token_sha256, now).await
    }

    async fn create_api_token(
        &self,
        t: &NewApiToken,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        self.tokens_create(t, at, record).await
    }

    async fn api_token(&self, id: &TokenId) -> StoreResult<ApiToken> {
        self.tokens_get(id).await
    }

    async fn list_api_tokens(&self, user: Option<&UserId>) -> StoreResult<Vec<ApiToken>> {
        self.tokens_list(user).await
    }

    async fn revoke_api_token(
        &self,
        id: &TokenId,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        self.tokens_revoke(id, at, record).await
    }

    async fn lockdown(&self) -> StoreResult<LockdownState> {
        let mut conn = self.pool.acquire().await?;
        Self::lockdown_in(&mut conn).await
    }

    async fn set_lockdown(&self, s: &LockdownState, record: Record<'_, LockdownState>) -> StoreResult<()> {
        let mut tx = self.begin_chained().await?;
        sqlx::query("UPDATE lockdown SET active = $1, reason = $2, set_by = $3, set_at = $4 WHERE id = 1")
            .bind(s.active)
            .bind(&s.reason)
            .bind(&s.set_by)
            .bind(s.set_at.map(us))
            .execute(&mut *tx)
            .await?;
        let state = Self::lockdown_in(&mut tx).await?;
        self.finish(tx, state, record, true).await?;
        Ok(())
    }

    async fn load_admission_snapshot(&self, now: DateTime<Utc>) -> StoreResult<Snapshot> {
        // One read transaction, so the snapshot is consistent.
        let mut tx = self.pool.begin().await?;
        let mut snap = Snapshot {
            lockdown: sqlx::query_scalar("SELECT active FROM lockdown WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?,
            ..Snapshot::default()
        };
        for (id, enabled) in sqlx::query_as::<_, (String, bool)>("SELECT id, enabled FROM vendors")
            .fetch_all(&mut *tx)
            .await?
        {
            snap.vendors.insert(
                VendorId(id),
                VendorEntry {
                    enabled,
                    networks: Vec::new(),
                    oldest_unreported_end: None,
                },
            );
        }
        for (vendor, net) in
            sqlx::query_as::<_, (String, String)>("SELECT vendor_id, network::text FROM vendor_networks")
                .fetch_all(&mut *tx)
                .await?
        {
            if let Some(v) = snap.vendors.get_mut(vendor.as_str()) {
                v.networks.push(parse("network", &net)?);
            }
        }
        for (vendor, end) in sqlx::query_as::<_, (String, DateTime<Utc>)>(
            "SELECT w.vendor_id, MIN(COALESCE(w.closed_at, w.ends_at)) FROM windows w
             WHERE w.had_session AND NOT w.emergency AND w.state IN ('approved', 'revoked')
               AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.window_id = w.id)
             GROUP BY w.vendor_id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            if let Some(v) = snap.vendors.get_mut(vendor.as_str()) {
                v.oldest_unreported_end = Some(from_us(end)?);
            }
        }
        type TechRow = (
            String,
            String,
            String,
            String,
            bool,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
        );
        for (id, vendor, fp, subject, revoked, not_before, not_after) in sqlx::query_as::<_, TechRow>(
            "SELECT id, vendor_id, fingerprint_sha256, subject, revoked_at IS NOT NULL, not_before, not_after FROM technicians",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            snap.technicians.insert(
                parse("fingerprint", &fp)?,
                TechnicianEntry {
                    id: TechnicianId(id),
                    vendor_id: VendorId(vendor),
                    subject,
                    revoked,
                    not_before: opt_from_us(not_before)?,
                    not_after: from_us(not_after)?,
                },
            );
        }
        let mut by_id: HashMap<String, String> = HashMap::new();
        for (id, name, address, enabled) in
            sqlx::query_as::<_, (String, String, String, bool)>("SELECT id, name, address, enabled FROM devices")
                .fetch_all(&mut *tx)
                .await?
        {
            by_id.insert(id.clone(), name.clone());
            snap.devices.insert(
                name,
                DeviceEntry {
                    id: DeviceId(id),
                    address,
                    enabled,
                    vendor_ids: Vec::new(),
                },
            );
        }
        for (device, vendor) in sqlx::query_as::<_, (String, String)>("SELECT device_id, vendor_id FROM device_vendors")
            .fetch_all(&mut *tx)
            .await?
        {
            if let Some(d) = by_id.get(&device).and_then(|name| snap.devices.get_mut(name)) {
                d.vendor_ids.push(VendorId(vendor));
            }
        }
        let mut extra: HashMap<String, Vec<IpNet>> = HashMap::new();
        for (window, net) in sqlx::query_as::<_, (String, String)>(
            "SELECT n.window_id, n.network::text FROM window_extra_networks n JOIN windows w ON w.id = n.window_id
             WHERE w.state = 'approved' AND w.ends_at > $1",
        )
        .bind(us(now))
        .fetch_all(&mut *tx)
        .await?
        {
            extra.entry(window).or_default().push(parse("network", &net)?);
        }
        for (id, vendor, starts, ends, emergency, device) in
            sqlx::query_as::<_, (String, String, DateTime<Utc>, DateTime<Utc>, bool, String)>(
                "SELECT w.id, w.vendor_id, w.starts_at, w.ends_at, w.emergency, wd.device_id
             FROM windows w JOIN window_devices wd ON wd.window_id = w.id
             WHERE w.state = 'approved' AND w.ends_at > $1",
            )
            .bind(us(now))
            .fetch_all(&mut *tx)
            .await?
        {
            let extra_networks = extra.get(&id).cloned().unwrap_or_default();
            snap.windows.entry(DeviceId(device)).or_default().push(WindowEntry {
                id: WindowId(id),
                vendor_id: VendorId(vendor),
                starts_at: from_us(starts)?,
                ends_at: from_us(ends)?,
                emergency,
                extra_networks,
            });
        }
        tx.commit().await?;
        Ok(snap)
    }

    async fn enqueue_notices(&self, notices: &[Notice], at: DateTime<Utc>) -> StoreResult<()> {
        self.outbox_enqueue(notices, at).await
    }
    async fn claim_outbox(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.outbox_claim(node, now, until, limit).await
    }
    async fn release_outbox_claims(&self, node: &str) -> StoreResult<u64> {
        self.outbox_release(node).await
    }
    async fn outbox_delivered(&self, seq: i64, at: DateTime<Utc>) -> StoreResult<()> {
        self.outbox_mark_delivered(seq, at).await
    }
    async fn outbox_retry(
        &self,
        seq: i64,
        node: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()> {
        self.outbox_mark_retry(seq, node, next_attempt_at, error, sinks_done)
            .await
    }
    async fn outbox_failed(
        &self,
        seq: i64,
        node: &str,
        at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()> {
        self.outbox_mark_failed(seq, node, at, error, sinks_done).await
    }
    async fn purge_outbox(
        &self,
        settled_before: DateTime<Utc>,
        expire_before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> StoreResult<OutboxPurge> {
        self.outbox_purge(settled_before, expire_before, at).await
    }
    async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        self.outbox_count().await
    }

    async fn purge_personal_data(
        &self,
        req: &PurgeRequest,
        record: Record<'_, PurgeCounts>,
    ) -> StoreResult<PurgeCounts> {
        self.purge(req, record).await
    }

    async fn audit_anchor(&self) -> StoreResult<Option<AuditAnchor>> {
        self.anchor().await
    }
}
