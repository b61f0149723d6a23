//! Hostile tests: store outages (issue 9, item 7). A store that fails answers
//! 503 `store_unavailable` on every path that creates something, never a 4xx
//! that would blame the caller (422 "unknown device", 409, 400): only NotFound
//! and Conflict are the caller's.

use chrono::Utc;
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

/// Runs `sql` (one or more statements) on the test's database, under the running node.
async fn sabotage(db: &TestDb, sql: &str) {
    use sqlx::Connection;
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

/// Makes every insert into `table` fail with a database error that is neither
/// a uniqueness, foreign key nor check violation (as a full disk or an I/O
/// error would).
async fn refuse_inserts(db: &TestDb, table: &str) {
    let sql = if db.url.starts_with("sqlite:") {
        format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk failure'); END;"
        )
    } else {
        format!(
            "CREATE OR REPLACE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk failure'; END $$;\n\
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_insert();"
        )
    };
    sabotage(db, &sql).await;
}

fn assert_unavailable(what: &str, st: u16, e: &serde_json::Value) {
    assert_eq!(st, 503, "{what}: {e}");
    assert_eq!(e["error"], "store_unavailable", "{what}: {e}");
}

/// The create step itself fails: user creation (with a vendor_id) and device
/// creation (with vendor_ids) answer 503.
async fn failing_inserts(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    refuse_inserts(&t.db, "api_users").await;
    refuse_inserts(&t.db, "device_vendors").await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "desk-2", "role": "vendor", "vendor_id": sc.vendor_id})),
        )
        .await;
    assert_unavailable("user creation", st, &e);
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "ct-2", "address": "127.0.0.1:9", "protocol": "echo", "vendor_ids": [sc.vendor_id]})),
        )
        .await;
    assert_unavailable("device creation", st, &e);
    t.stop().await;
}
on_both_backends!(
    failing_inserts_answer_503_on_user_and_device_creation,
    super::failing_inserts
);

/// The device lookup of a window request or an emergency grant fails: 503,
/// not 422 "unknown device".
async fn failing_device_lookup(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let security = t.token("security", "soc", None).await;
    sabotage(&t.db, "ALTER TABLE devices RENAME TO devices_hidden").await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    for (path, token, body) in [
        (
            "/api/v1/windows",
            t.admin.clone(),
            json!({"vendor_id": sc.vendor_id, "device_ids": ["mri-1"], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "r"}),
        ),
        (
            "/api/v1/emergency",
            security.clone(),
            json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 10, "justification": "MRI down"}),
        ),
    ] {
        let (st, e) = t.call("POST", path, Some(&token), Some(body)).await;
        assert_unavailable(path, st, &e);
    }
    t.stop().await;
}
on_both_backends!(
    a_failing_device_lookup_is_not_an_unknown_device,
    super::failing_device_lookup
);

/// The number of audit events named `action` about `object`.
async fn audited(t: &TestApp, reader: &str, action: &str, object: &str) -> usize {
    let (st, events) = t.call("GET", "/api/v1/audit", Some(reader), None).await;
    assert_eq!(st, 200, "{events}");
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["object"] == object)
        .count()
}

/// A change whose transaction fails at its very end (the change-feed row, written
/// last) leaves nothing: neither the change, nor its audit event, nor its
/// notification; once the fault is gone the same call succeeds, recorded once.
async fn a_failed_commit_leaves_no_trace(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(json!({"device_ids": ["mri-1"], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "r"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let id = w["id"].as_str().unwrap().to_owned();

    let pending = || async { t.app.store.outbox_backlog().await.unwrap().pending };
    let before = pending().await;
    refuse_inserts(&t.db, "changes").await;
    let (st, e) = t
        .call("POST", &format!("/api/v1/windows/{id}/approve"), Some(&security), None)
        .await;
    assert_unavailable("approval", st, &e);
    let (_, w) = t
        .call("GET", &format!("/api/v1/windows/{id}"), Some(&security), None)
        .await;
    assert_eq!(w["state"], "requested", "the approval must not be stored: {w}");
    assert_eq!(
        audited(&t, &security, "window.approved", &id).await,
        0,
        "no audit event for a change not stored"
    );
    assert_eq!(pending().await, before, "no notification for a change not stored");

    let drop = if t.db.url.starts_with("sqlite:") {
        "DROP TRIGGER refuse_changes"
    } else {
        "DROP TRIGGER refuse_changes ON changes"
    };
    sabotage(&t.db, drop).await;
    let (st, w) = t
        .call("POST", &format!("/api/v1/windows/{id}/approve"), Some(&security), None)
        .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(w["state"], "approved");
    assert_eq!(audited(&t, &security, "window.approved", &id).await, 1);
    assert_eq!(pending().await, before + 1, "the approval's notification, once");
    let (st, v) = t.call("GET", "/api/v1/audit/verify", Some(&security), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    t.stop().await;
}
on_both_backends!(
    a_change_whose_commit_fails_leaves_neither_change_nor_audit_event,
    super::a_failed_commit_leaves_no_trace
);
