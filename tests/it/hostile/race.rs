//! The registration race (issue 9, item 5): a cut committed while a tunnel's
//! session record is being written (revocation, lockdown, termination, a device
//! disabled, a vendor's networks narrowed) must reach
//! that tunnel before it reaches the device. A store that holds
//! session starts for a while opens the gap wide; the revocation lands in it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use portier::audit::{AuditEvent, AuditRecord};
use portier::domain::{DeviceId, EndReason, SessionId, TechnicianId, TokenId, UserId, VendorId, WindowId, WindowState};
use portier::policy::Snapshot;
use portier::store::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::common::*;
use crate::on_both_backends;

/// How long a session start is held before it is written.
const HOLD: Duration = Duration::from_millis(500);

/// The real store, except that a journal write carrying a session start first
/// says so (`entered`) and then waits [`HOLD`].
struct SlowStarts {
    inner: Arc<dyn Store>,
    entered: Notify,
}

/// A device that counts the connections it receives and echoes what it reads.
async fn counting_device() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, count)
}

/// Which cut lands in the gap, and how it reaches the gateway.
#[derive(Clone, Copy)]
enum Cut {
    /// Committed, then the registry is told (what the API does).
    StoreThenRegistry,
    /// Committed only: the gateway must notice on its own (the change was
    /// committed after admission read its snapshot, and its registry cut ran
    /// before the tunnel registered).
    StoreOnly,
    /// Lockdown: every tunnel is cut through the registry.
    Lockdown,
    /// Security terminates the session by its id (listed as live).
    Terminate,
    /// The device is disabled, committed only: the re-check must cut for every
    /// reason the change-feed follower cuts a live tunnel for, not just revocations.
    DeviceDisabled,
    /// The vendor's networks are narrowed to exclude the technician's address,
    /// committed only.
    NetworksNarrowed,
}

impl Cut {
    fn end_reason(self) -> EndReason {
        match self {
            Cut::StoreThenRegistry | Cut::StoreOnly => EndReason::WindowRevoked,
            Cut::Lockdown => EndReason::Lockdown,
            Cut::Terminate => EndReason::Terminated,
            Cut::DeviceDisabled => EndReason::DeviceDisabled,
            Cut::NetworksNarrowed => EndReason::SourceIpNotDeclared,
        }
    }

    /// Whether only the store hears of it: the gateway's re-check must catch it.
    fn store_only(self) -> bool {
        matches!(self, Cut::StoreOnly | Cut::DeviceDisabled | Cut::NetworksNarrowed)
    }
}

async fn cut_in_the_gap(db: TestDb, how: Cut) {
    let pki = Pki::generate();
    let (device, connections) = counting_device().await;
    let s = scene(db.store.as_ref(), &pki, device).await;
    let slow = Arc::new(SlowStarts {
        inner: db.store.clone(),
        entered: Notify::new(),
    });
    let gw = TestGateway::spawn(slow.clone(), &pki).await;

    let mut tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&s.tech_cert), TLS13))
        .await
        .unwrap();
    tls.write_all(b"hello device").await.unwrap();
    tls.flush().await.unwrap();

    // The session start is being written: cut now.
    tokio::time::timeout(Duration::from_secs(5), slow.entered.notified())
        .await
        .expect("the session start never reached the store");
    if matches!(how, Cut::StoreThenRegistry | Cut::StoreOnly) {
        db.store
            .transition_window(
                &s.window.id,
                &WindowTransition {
                    from: vec![WindowState::Approved],
                    to: WindowState::Revoked,
                    by: "security-user".into(),
                    reason: Some("race test".into()),
                    at: Utc::now(),
                },
                &|w| test_effects().change(Change::Window(w.id.clone())),
            )
            .await
            .unwrap();
    }
    match how {
        Cut::DeviceDisabled => {
            db.store
                .set_device_enabled(&s.device.id, false, &|d| {
                    test_effects().change(Change::Device(d.id.clone()))
                })
                .await
                .unwrap();
        }
        Cut::NetworksNarrowed => {
            // The technician connects from 127.0.0.2; the window adds no networks.
            let elsewhere: IpNet = "10.20.0.0/16".parse().unwrap();
            db.store
                .replace_vendor_networks(&s.vendor.id, &[elsewhere], &|v| {
                    test_effects().change(Change::Vendor(v.id.clone()))
                })
                .await
                .unwrap();
        }
        _ => {}
    }
    let registered = gw.registry.len();
    let cut = match how {
        Cut::StoreThenRegistry => gw.registry.cut_window(&s.window.id, EndReason::WindowRevoked),
        Cut::StoreOnly | Cut::DeviceDisabled | Cut::NetworksNarrowed => 0,
        Cut::Lockdown => gw.registry.cut_all(EndReason::Lockdown),
        Cut::Terminate => gw.registry.list().first().map_or(0, |l| {
            usize::from(gw.registry.cut_session(&l.id, EndReason::Terminated))
        }),
    };

    // Nothing from the device, and the connection closes.
    match read_all(&mut tls).await {
        Ok(got) => assert!(!got.contains("hello"), "the device echoed: {got:?}"),
        Err(e) => assert!(!e.to_string().contains("no close"), "{e}"),
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the gateway connected to the device"
    );
    assert_eq!(registered, 1, "the tunnel is registered before its record is written");
    if !how.store_only() {
        assert_eq!(cut, 1, "the registry cut finds the registering tunnel");
    }

    // Recorded as started and ended by the cut.
    let session = eventually(|| {
        let store = db.store.clone();
        let window = s.window.id.clone();
        async move {
            let f = SessionFilter {
                window_id: Some(window),
                ..SessionFilter::default()
            };
            let found = store.list_sessions(&f).await.ok()?;
            found.into_iter().find(|s| s.end_reason.is_some())
        }
    })
    .await;
    let id = session.id.clone();
    assert_eq!(session.end_reason, Some(how.end_reason()));
    assert_eq!((session.bytes_from_vendor, session.bytes_to_vendor), (0, 0));
    let ended = db
        .store
        .list_audit(&AuditFilter {
            action: Some("session.ended".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let e = ended
        .iter()
        .find(|e| e.object == id.as_str())
        .unwrap_or_else(|| panic!("no session.ended for {id}: {ended:?}"));
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["end_reason"], how.end_reason().as_str());
    assert!(gw.registry.is_empty());
    gw.stop().await;
}

async fn revoke_through_the_registry_in_the_gap(db: TestDb) {
    cut_in_the_gap(db, Cut::StoreThenRegistry).await;
}
on_both_backends!(
    revoke_through_the_registry_in_the_gap_is_honoured,
    super::revoke_through_the_registry_in_the_gap
);

async fn revoke_missed_by_the_registry_is_caught_by_the_recheck(db: TestDb) {
    cut_in_the_gap(db, Cut::StoreOnly).await;
}
on_both_backends!(
    revoke_committed_in_the_gap_is_caught_by_the_recheck,
    super::revoke_missed_by_the_registry_is_caught_by_the_recheck
);

async fn lockdown_in_the_gap(db: TestDb) {
    cut_in_the_gap(db, Cut::Lockdown).await;
}
on_both_backends!(lockdown_in_the_gap_is_honoured, super::lockdown_in_the_gap);

async fn terminate_in_the_gap(db: TestDb) {
    cut_in_the_gap(db, Cut::Terminate).await;
}
on_both_backends!(terminate_in_the_gap_is_honoured, super::terminate_in_the_gap);

async fn device_disabled_in_the_gap(db: TestDb) {
    cut_in_the_gap(db, Cut::DeviceDisabled).await;
}
on_both_backends!(
    device_disabled_in_the_gap_is_caught_by_the_recheck,
    super::device_disabled_in_the_gap
);

async fn networks_narrowed_in_the_gap(db: TestDb) {
    cut_in_the_gap(db, Cut::NetworksNarrowed).await;
}
on_both_backends!(
    networks_narrowed_in_the_gap_is_caught_by_the_recheck,
    super::networks_narrowed_in_the_gap
);

// Plain delegation, except `write_journal`.
#[async_trait]
impl AdmissionReads for SlowStarts {
    async fn admission_window(&self, id: &WindowId, now: DateTime<Utc>) -> StoreResult<Option<WindowAdmission>> {
        self.inner.admission_window(id, now).await
    }
    async fn admission_technician(&self, id: &TechnicianId) -> StoreResult<Option<TechnicianAdmission>> {
        self.inner.admission_technician(id).await
    }
    async fn admission_vendor(&self, id: &VendorId) -> StoreResult<Option<portier::policy::VendorEntry>> {
        self.inner.admission_vendor(id).await
    }
    async fn admission_device(&self, id: &DeviceId) -> StoreResult<Option<DeviceAdmission>> {
        self.inner.admission_device(id).await
    }
    async fn change_listener(&self) -> StoreResult<Option<Box<dyn ChangeListener>>> {
        self.inner.change_listener().await
    }
}

#[async_trait]
impl Store for SlowStarts {
    async fn write_journal(&self, entries: &[JournalEntry]) -> StoreResult<()> {
        if entries.iter().any(|e| matches!(e, JournalEntry::SessionStarted(..))) {
            self.entered.notify_one();
            tokio::time::sleep(HOLD).await;
        }
        self.inner.write_journal(entries).await
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.inner.migrate().await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    fn generation(&self) -> Arc<Generation> {
        self.inner.generation()
    }
    fn health(&self) -> Arc<StoreHealth> {
        self.inner.health()
    }
    async fn probe_write(&self, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.probe_write(at).await
    }
    async fn claim_node(&self, claim: &NodeIdentity, stale_before: DateTime<Utc>) -> StoreResult<NodeClaim> {
        self.inner.claim_node(claim, stale_before).await
    }
    async fn node_heartbeat(&self, beat: &Heartbeat) -> StoreResult<bool> {
        self.inner.node_heartbeat(beat).await
    }
    async fn release_node(&self, node: &NodeIdentity, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.release_node(node, at).await
    }
    async fn live_nodes(&self, after: DateTime<Utc>) -> StoreResult<Vec<String>> {
        self.inner.live_nodes(after).await
    }
    async fn list_nodes(&self) -> StoreResult<Vec<portier::store::NodeRecord>> {
        self.inner.list_nodes().await
    }
    async fn create_vendor(&self, v: &NewVendor, at: DateTime<Utc>, record: Record<'_, Vendor>) -> StoreResult<Vendor> {
        self.inner.create_vendor(v, at, record).await
    }
    async fn vendor(&self, id: &VendorId) -> StoreResult<Vendor> {
        self.inner.vendor(id).await
    }
    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>> {
        self.inner.list_vendors().await
    }
    async fn replace_vendor_networks(
        &self,
        id: &VendorId,
        networks: &[IpNet],
        record: Record<'_, Vendor>,
    ) -> StoreResult<Vendor> {
        self.inner.replace_vendor_networks(id, networks, record).await
    }
    async fn set_vendor_enabled(
        &self,
        id: &VendorId,
        enabled: bool,
        record: Record<'_, Vendor>,
    ) -> StoreResult<Vendor> {
        self.inner.set_vendor_enabled(id, enabled, record).await
    }
    async fn add_technician(
        &self,
        t: &NewTechnician,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician> {
        self.inner.add_technician(t, at, record).await
    }
    async fn technician(&self, id: &TechnicianId) -> StoreResult<Technician> {
        self.inner.technician(id).await
    }
    async fn list_technicians(&self, vendor: &VendorId) -> StoreResult<Vec<Technician>> {
        self.inner.list_technicians(vendor).await
    }
    async fn revoke_technician(
        &self,
        vendor: &VendorId,
        id: &TechnicianId,
        at: DateTime<Utc>,
        record: Record<'_, Technician>,
    ) -> StoreResult<Technician> {
        self.inner.revoke_technician(vendor, id, at, record).await
    }
    async fn create_device(&self, d: &NewDevice, at: DateTime<Utc>, record: Record<'_, Device>) -> StoreResult<Device> {
        self.inner.create_device(d, at, record).await
    }
    async fn device(&self, id: &DeviceId) -> StoreResult<Device> {
        self.inner.device(id).await
    }
    async fn list_devices(&self) -> StoreResult<Vec<Device>> {
        self.inner.list_devices().await
    }
    async fn set_device_enabled(
        &self,
        id: &DeviceId,
        enabled: bool,
        record: Record<'_, Device>,
    ) -> StoreResult<Device> {
        self.inner.set_device_enabled(id, enabled, record).await
    }
    async fn create_window(&self, w: &NewWindow, at: DateTime<Utc>, record: Record<'_, Window>) -> StoreResult<Window> {
        self.inner.create_window(w, at, record).await
    }
    async fn window(&self, id: &WindowId) -> StoreResult<Window> {
        self.inner.window(id).await
    }
    async fn list_windows(&self, f: &WindowFilter) -> StoreResult<Vec<Window>> {
        self.inner.list_windows(f).await
    }
    async fn transition_window(
        &self,
        id: &WindowId,
        t: &WindowTransition,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        self.inner.transition_window(id, t, record).await
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
        self.inner.review_window(id, verdict, comment, by, at, record).await
    }
    async fn request_extension(
        &self,
        id: &WindowId,
        ends_at: DateTime<Utc>,
        reason: &str,
        by: &str,
        record: Record<'_, Window>,
    ) -> StoreResult<Window> {
        self.inner.request_extension(id, ends_at, reason, by, record).await
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
        self.inner.decide_extension(id, pending, approve, by, at, record).await
    }
    async fn unreported_windows(
        &self,
        vendor: Option<&VendorId>,
        ended_before: DateTime<Utc>,
    ) -> StoreResult<Vec<Window>> {
        self.inner.unreported_windows(vendor, ended_before).await
    }
    async fn file_report(&self, r: &NewReport, at: DateTime<Utc>, record: Record<'_, Report>) -> StoreResult<Report> {
        self.inner.file_report(r, at, record).await
    }
    async fn report(&self, window: &WindowId) -> StoreResult<Report> {
        self.inner.report(window).await
    }
    async fn list_reports(&self, f: &ReportFilter) -> StoreResult<Vec<Report>> {
        self.inner.list_reports(f).await
    }
    async fn add_report_addendum(
        &self,
        window: &WindowId,
        text: &str,
        by: &str,
        at: DateTime<Utc>,
        record: Record<'_, Report>,
    ) -> StoreResult<Report> {
        self.inner.add_report_addendum(window, text, by, at, record).await
    }
    async fn session(&self, id: &SessionId) -> StoreResult<Session> {
        self.inner.session(id).await
    }
    async fn list_sessions(&self, f: &SessionFilter) -> StoreResult<Vec<Session>> {
        self.inner.list_sessions(f).await
    }
    async fn close_orphan_sessions(&self, node: &str, last_alive: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.close_orphan_sessions(node, last_alive).await
    }
    async fn close_lost_node_sessions(&self, closed_by: &str, stale_before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.close_lost_node_sessions(closed_by, stale_before).await
    }
    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        self.inner.list_audit(f).await
    }
    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>> {
        self.inner.audit_head().await
    }
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<AuditRecord> {
        self.inner.append_audit(e).await
    }
    async fn create_user(&self, u: &NewUser, at: DateTime<Utc>, record: Record<'_, User>) -> StoreResult<User> {
        self.inner.create_user(u, at, record).await
    }
    async fn record(&self, effects: &Effects) -> StoreResult<AuditRecord> {
        self.inner.record(effects).await
    }
    async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<ChangeRecord>> {
        self.inner.changes_since(after, limit).await
    }
    async fn last_change_seq(&self) -> StoreResult<i64> {
        self.inner.last_change_seq().await
    }
    async fn prune_changes(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        self.inner.prune_changes(before).await
    }
    async fn user(&self, id: &UserId) -> StoreResult<User> {
        self.inner.user(id).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled_at: Option<DateTime<Utc>>,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.inner.set_user_disabled(id, disabled_at, record).await
    }
    async fn user_by_token_hash(&self, token_sha256: &str, now: DateTime<Utc>) -> StoreResult<Option<User>> {
        self.inner.user_by_token_hash(token_sha256, now).await
    }
    async fn create_api_token(
        &self,
        t: &NewApiToken,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        self.inner.create_api_token(t, at, record).await
    }
    async fn api_token(&self, id: &TokenId) -> StoreResult<ApiToken> {
        self.inner.api_token(id).await
    }
    async fn list_api_tokens(&self, user: Option<&UserId>) -> StoreResult<Vec<ApiToken>> {
        self.inner.list_api_tokens(user).await
    }
    async fn revoke_api_token(
        &self,
        id: &TokenId,
        at: DateTime<Utc>,
        record: Record<'_, ApiToken>,
    ) -> StoreResult<ApiToken> {
        self.inner.revoke_api_token(id, at, record).await
    }
    async fn set_user_lang(&self, id: &UserId, lang: Option<&str>, record: Record<'_, User>) -> StoreResult<User> {
        self.inner.set_user_lang(id, lang, record).await
    }
    async fn create_console_session(
        &self,
        session: &ConsoleSession,
        record: Record<'_, ConsoleSession>,
    ) -> StoreResult<ConsoleSession> {
        self.inner.create_console_session(session, record).await
    }
    async fn console_session(&self, id_sha256: &str) -> StoreResult<Option<(ConsoleSession, User)>> {
        self.inner.console_session(id_sha256).await
    }
    async fn touch_console_session(&self, id_sha256: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.touch_console_session(id_sha256, at).await
    }
    async fn end_console_sessions(
        &self,
        user: &UserId,
        only: Option<&str>,
        record: Record<'_, u64>,
    ) -> StoreResult<u64> {
        self.inner.end_console_sessions(user, only, record).await
    }
    async fn prune_console_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.inner.prune_console_sessions(idle_before, created_before).await
    }
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<(User, Credentials)>> {
        self.inner.user_by_name(name).await
    }
    async fn credentials(&self, id: &UserId) -> StoreResult<Credentials> {
        self.inner.credentials(id).await
    }
    async fn replace_totp_secret(&self, id: &UserId, old: &str, new: &str) -> StoreResult<bool> {
        self.inner.replace_totp_secret(id, old, new).await
    }
    async fn all_credentials(&self) -> StoreResult<Vec<(UserId, Credentials)>> {
        self.inner.all_credentials().await
    }
    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        must_change: bool,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.inner.set_password(id, hash, must_change, record).await
    }
    async fn set_directory_account(
        &self,
        id: &UserId,
        dn: &str,
        role: portier::domain::Role,
        record: Record<'_, User>,
    ) -> StoreResult<User> {
        self.inner.set_directory_account(id, dn, role, record).await
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
        self.inner
            .set_totp(id, secret, enabled_at, last_step, recovery_sha256, record)
            .await
    }
    async fn use_totp_step(&self, id: &UserId, step: i64) -> StoreResult<bool> {
        self.inner.use_totp_step(id, step).await
    }
    async fn use_recovery_code(
        &self,
        id: &UserId,
        code_sha256: &str,
        at: DateTime<Utc>,
        record: Record<'_, ()>,
    ) -> StoreResult<bool> {
        self.inner.use_recovery_code(id, code_sha256, at, record).await
    }
    async fn add_sign_in_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        count_since: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        self.inner
            .add_sign_in_failure(keys, at, count_since, forget_before)
            .await
    }
    async fn sign_in_failures(&self, key: &str, since: DateTime<Utc>) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        self.inner.sign_in_failures(key, since).await
    }
    async fn clear_sign_in_failures(&self, key: &str) -> StoreResult<()> {
        self.inner.clear_sign_in_failures(key).await
    }
    async fn create_pending_sign_in(&self, p: &PendingSignIn, expired_before: DateTime<Utc>) -> StoreResult<()> {
        self.inner.create_pending_sign_in(p, expired_before).await
    }
    async fn pending_sign_in(&self, id_sha256: &str) -> StoreResult<Option<PendingSignIn>> {
        self.inner.pending_sign_in(id_sha256).await
    }
    async fn end_pending_sign_in(&self, id_sha256: &str) -> StoreResult<()> {
        self.inner.end_pending_sign_in(id_sha256).await
    }
    async fn lockdown(&self) -> StoreResult<LockdownState> {
        self.inner.lockdown().await
    }
    async fn set_lockdown(&self, state: &LockdownState, record: Record<'_, LockdownState>) -> StoreResult<()> {
        self.inner.set_lockdown(state, record).await
    }
    async fn load_admission_snapshot(&self, now: DateTime<Utc>) -> StoreResult<Snapshot> {
        self.inner.load_admission_snapshot(now).await
    }
    async fn enqueue_notices(&self, notices: &[Notice], at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.enqueue_notices(notices, at).await
    }
    async fn claim_outbox(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.inner.claim_outbox(node, now, until, limit).await
    }
    async fn release_outbox_claims(&self, node: &str) -> StoreResult<u64> {
        self.inner.release_outbox_claims(node).await
    }
    async fn outbox_delivered(&self, seq: i64, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.outbox_delivered(seq, at).await
    }
    async fn outbox_retry(
        &self,
        seq: i64,
        node: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        sinks_done: &[String],
    ) -> StoreResult<()> {
        self.inner
            .outbox_retry(seq, node, next_attempt_at, error, sinks_done)
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
        self.inner.outbox_failed(seq, node, at, error, sinks_done).await
    }
    async fn purge_outbox(
        &self,
        settled_before: DateTime<Utc>,
        expire_before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> StoreResult<OutboxPurge> {
        self.inner.purge_outbox(settled_before, expire_before, at).await
    }
    async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        self.inner.outbox_backlog().await
    }
    async fn purge_personal_data(
        &self,
        req: &portier::store::PurgeRequest,
        record: Record<'_, portier::store::PurgeCounts>,
    ) -> StoreResult<portier::store::PurgeCounts> {
        self.inner.purge_personal_data(req, record).await
    }
    async fn audit_anchor(&self) -> StoreResult<Option<portier::store::AuditAnchor>> {
        self.inner.audit_anchor().await
    }
}
