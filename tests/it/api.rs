//! The admin API over real HTTPS, with the real gateway behind it.

use chrono::Utc;
use portier::audit::AuditEvent;
use portier::domain::{Role, SessionId};
use portier::rights::{Access, Right, Roles, TABLE};
use portier::store::{AuditFilter, JournalEntry, Session};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::common::*;
use crate::on_both_backends;

/// Objects for the matrix: vendors A and B, a technician and device of each,
/// a requested window of A, an ended session of A.
struct World {
    vendor_a: String,
    vendor_b: String,
    device_a: String,
    tech_a: String,
    window_a: String,
    session_a: String,
}

async fn world(t: &TestApp) -> World {
    let mk_vendor = |name: &'static str, net: &'static str| {
        t.call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": name, "networks": [net]})),
        )
    };
    let (st, a) = mk_vendor("Vendor A", "127.0.0.2").await;
    assert_eq!(st, 201, "{a}");
    let (_, b) = mk_vendor("Vendor B", "127.0.0.4").await;
    let (va, vb) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    let ca = portier::pki::CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let pinned = ca.issue_client("alice", Some("Vendor A"), 30).unwrap();
    let (st, tech) = t
        .call(
            "POST",
            &format!("/api/v1/vendors/{va}/technicians"),
            Some(&t.admin),
            Some(json!({"name": "alice", "certificate_pem": pinned.cert_pem})),
        )
        .await;
    assert_eq!(st, 201, "{tech}");
    let (st, da) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-a", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [va]})),
        )
        .await;
    assert_eq!(st, 201, "{da}");
    let (_, _db) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-b", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [vb]})),
        )
        .await;
    let start = Utc::now() + chrono::Duration::hours(1);
    // Requested by a vendor account of A, so that admin and security may approve it.
    let requester = t.token("vendor", "requester-a", Some(&va)).await;
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&requester),
            Some(json!({"device_ids": [da["id"]], "starts_at": start, "ends_at": start + chrono::Duration::hours(1), "reason": "matrix"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(w["state"], "requested");
    // A session record, as the gateway would have written it.
    let sid = SessionId::generate();
    let now = portier::audit::truncate_micros(Utc::now());
    t.app
        .store
        .write_journal(&[JournalEntry::SessionStarted(
            Session {
                id: sid.clone(),
                window_id: w["id"].as_str().unwrap().into(),
                vendor_id: va.as_str().into(),
                technician_id: tech["id"].as_str().unwrap().into(),
                technician_subject: "CN=alice".into(),
                device_id: da["id"].as_str().unwrap().into(),
                source_ip: "127.0.0.2".parse().unwrap(),
                source_port: 40000,
                node: "elsewhere".into(),
                started_at: now,
                ended_at: None,
                bytes_from_vendor: 0,
                bytes_to_vendor: 0,
                end_reason: None,
            },
            AuditEvent::new(
                now,
                "gateway",
                portier::events::Event::SessionStarted,
                sid.as_str(),
                "success",
                json!({}),
            ),
        )])
        .await
        .unwrap();
    World {
        vendor_a: va,
        vendor_b: vb,
        device_a: da["id"].as_str().unwrap().to_owned(),
        tech_a: tech["id"].as_str().unwrap().to_owned(),
        window_a: w["id"].as_str().unwrap().to_owned(),
        session_a: sid.0,
    }
}

/// A row of the authorization matrix: the route as the authorization table
/// names it (`variant`: its variant's row), the request to send, and the object
/// rules that come on top of the table's roles.
struct Row {
    method: &'static str,
    route: &'static str,
    variant: bool,
    path: String,
    body: Option<Value>,
    /// Roles that get 404: they may not see the object.
    hidden: &'static [&'static str],
    /// Roles the table allows that an object rule refuses (403).
    refused: &'static [&'static str],
}

fn row(method: &'static str, route: &'static str, path: impl Into<String>, body: Option<Value>) -> Row {
    Row {
        method,
        route,
        variant: false,
        path: path.into(),
        body,
        hidden: &[],
        refused: &[],
    }
}

impl Row {
    fn variant(self) -> Self {
        Self { variant: true, ..self }
    }
    fn hidden(self, hidden: &'static [&'static str]) -> Self {
        Self { hidden, ..self }
    }
    fn refused(self, refused: &'static [&'static str]) -> Self {
        Self { refused, ..self }
    }
}

/// The table's role of a matrix account (both vendor accounts are `vendor`).
fn table_role(account: &str) -> Role {
    match account {
        "vendor_a" | "vendor_b" => Role::Vendor,
        other => other.parse().unwrap(),
    }
}

/// The roles the authorization table allows on a route (or its variant).
fn table_roles(method: &str, route: &str, variant: bool) -> Roles {
    let rows: Vec<&Right> = TABLE
        .iter()
        .filter(|r| {
            r.api
                .iter()
                .any(|a| a.method == method && a.path == route && a.variant.is_some() == variant)
        })
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "{method} {route} (variant: {variant}) is in {} rows of the table",
        rows.len()
    );
    rows[0].access.roles()
}
async fn authorization_matrix(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let w = world(&t).await;
    let security = t.token("security", "soc", None).await;
    let auditor = t.token("auditor", "audit", None).await;
    let vendor_a = t.token("vendor", "desk-a", Some(&w.vendor_a)).await;
    let vendor_b = t.token("vendor", "desk-b", Some(&w.vendor_b)).await;
    let roles: [(&str, &str); 5] = [
        ("admin", &t.admin),
        ("security", &security),
        ("auditor", &auditor),
        ("vendor_a", &vendor_a),
        ("vendor_b", &vendor_b),
    ];

    let (va, da, wa, ta, sa) = (&w.vendor_a, &w.device_a, &w.window_a, &w.tech_a, &w.session_a);
    let later = Utc::now() + chrono::Duration::hours(2);
    let new_window = json!({"vendor_id": va, "device_ids": [da], "starts_at": later, "ends_at": later + chrono::Duration::hours(1), "reason": "r"});
    let (st, spare) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "spare", "role": "auditor"})),
        )
        .await;
    assert_eq!(st, 201, "{spare}");
    let spare = spare["id"].as_str().unwrap().to_owned();
    let (st, spare_tokens) = t
        .call("GET", &format!("/api/v1/tokens?user_id={spare}"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200, "{spare_tokens}");
    let spare_token = spare_tokens[0]["id"].as_str().unwrap().to_owned();
    let (st, spare_device) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "spare-dev", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [w.vendor_b]})),
        )
        .await;
    assert_eq!(st, 201, "{spare_device}");
    let db_ = spare_device["id"].as_str().unwrap().to_owned();
    // A token of each account's own, for the row that revokes one's own token.
    let mut own_tokens = std::collections::HashMap::new();
    for (role, token) in &roles {
        let (st, b) = t
            .call(
                "POST",
                "/api/v1/tokens",
                Some(token),
                Some(json!({"name": "to-revoke"})),
            )
            .await;
        assert_eq!(st, 201, "{b}");
        own_tokens.insert(*role, b["id"].as_str().unwrap().to_owned());
    }
    // The roles each route allows come from the authorization table the code
    // enforces; a row names the route as the table does, the request to send,
    // and the object rules on top: roles that get 404 (they may not see the
    // object) or 403 (the table allows the role, the object rule refuses).
    let rows: Vec<Row> = vec![
        row("GET", "/api/v1/me", "/api/v1/me", None),
        row("GET", "/api/v1/tokens", "/api/v1/tokens", None),
        row("GET", "/api/v1/tokens", format!("/api/v1/tokens?user_id={spare}"), None).variant(),
        row(
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens",
            Some(json!({"name": "matrix"})),
        ),
        row("DELETE", "/api/v1/tokens/{id}", "/api/v1/tokens/{own_token}", None),
        row(
            "DELETE",
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{spare_token}"),
            None,
        )
        .variant(),
        row("GET", "/api/v1/vendors", "/api/v1/vendors", None),
        row("GET", "/api/v1/vendors/{id}", format!("/api/v1/vendors/{va}"), None).hidden(&["vendor_b"]),
        row(
            "GET",
            "/api/v1/vendors/{id}/technicians",
            format!("/api/v1/vendors/{va}/technicians"),
            None,
        )
        .hidden(&["vendor_b"]),
        row("GET", "/api/v1/devices", "/api/v1/devices", None),
        row("GET", "/api/v1/devices/{id}", format!("/api/v1/devices/{da}"), None).hidden(&["vendor_b"]),
        row("GET", "/api/v1/windows", "/api/v1/windows", None),
        row("GET", "/api/v1/windows/{id}", format!("/api/v1/windows/{wa}"), None).hidden(&["vendor_b"]),
        row("GET", "/api/v1/sessions", "/api/v1/sessions", None),
        row("GET", "/api/v1/nodes", "/api/v1/nodes", None),
        row("GET", "/api/v1/sessions", "/api/v1/sessions?format=csv", None),
        row("GET", "/api/v1/sessions/{id}", format!("/api/v1/sessions/{sa}"), None).hidden(&["vendor_b"]),
        row("GET", "/api/v1/audit", "/api/v1/audit?limit=5", None),
        row("GET", "/api/v1/audit/verify", "/api/v1/audit/verify", None),
        row("GET", "/api/v1/flows", "/api/v1/flows", None),
        row("GET", "/api/v1/dossier/{lang}", "/api/v1/dossier/en", None),
        row(
            "GET",
            "/api/v1/dossier/{lang}/{document}",
            "/api/v1/dossier/fr/rights.json",
            None,
        ),
        row(
            "GET",
            "/api/v1/timeline",
            format!("/api/v1/timeline?vendor_id={va}"),
            None,
        ),
        row(
            "POST",
            "/api/v1/purge",
            "/api/v1/purge",
            Some(json!({"before": "2000-01-01T00:00:00Z", "dry_run": true})),
        ),
        row(
            "POST",
            "/api/v1/users",
            "/api/v1/users",
            Some(json!({"name": "x", "role": "auditor"})),
        ),
        row(
            "POST",
            "/api/v1/vendors",
            "/api/v1/vendors",
            Some(json!({"name": "V", "networks": ["192.0.2.1"]})),
        ),
        row(
            "POST",
            "/api/v1/vendors",
            "/api/v1/vendors",
            Some(json!({"name": "Broad", "networks": ["10.0.0.0/8"], "allow_broad_networks": true})),
        )
        .variant(),
        row(
            "PUT",
            "/api/v1/vendors/{id}/networks",
            format!("/api/v1/vendors/{va}/networks"),
            Some(json!({"networks": ["10.0.0.0/8"], "allow_broad_networks": true})),
        )
        .variant(),
        row(
            "PUT",
            "/api/v1/vendors/{id}/networks",
            format!("/api/v1/vendors/{va}/networks"),
            Some(json!({"networks": ["127.0.0.2"]})),
        ),
        row(
            "POST",
            "/api/v1/vendors/{id}/disable",
            format!("/api/v1/vendors/{va}/disable"),
            None,
        ),
        row(
            "POST",
            "/api/v1/vendors/{id}/enable",
            format!("/api/v1/vendors/{va}/enable"),
            None,
        ),
        row(
            "POST",
            "/api/v1/vendors/{id}/technicians",
            format!("/api/v1/vendors/{va}/technicians"),
            Some(json!({"name": "x", "csr_pem": "garbage"})),
        ),
        row(
            "POST",
            "/api/v1/devices",
            "/api/v1/devices",
            Some(json!({"name": "d-x", "address": "127.0.0.1:1", "protocol": "ssh", "vendor_ids": []})),
        ),
        row("POST", "/api/v1/windows", "/api/v1/windows", Some(new_window)).refused(&["vendor_b"]),
        row(
            "POST",
            "/api/v1/windows/{id}/approve",
            format!("/api/v1/windows/{wa}/approve"),
            None,
        ),
        row(
            "POST",
            "/api/v1/windows/{id}/reject",
            format!("/api/v1/windows/{wa}/reject"),
            Some(json!({"reason": "no"})),
        ),
        row(
            "POST",
            "/api/v1/windows/{id}/revoke",
            format!("/api/v1/windows/{wa}/revoke"),
            Some(json!({"reason": "no"})),
        ),
        row(
            "POST",
            "/api/v1/windows/{id}/cancel",
            format!("/api/v1/windows/{wa}/cancel"),
            None,
        )
        .hidden(&["vendor_b"]),
        row(
            "POST",
            "/api/v1/sessions/{id}/terminate",
            format!("/api/v1/sessions/{sa}/terminate"),
            Some(json!({"reason": "x"})),
        ),
        row(
            "DELETE",
            "/api/v1/vendors/{id}/technicians/{tid}",
            format!("/api/v1/vendors/{va}/technicians/{ta}"),
            None,
        ),
        row(
            "POST",
            "/api/v1/emergency",
            "/api/v1/emergency",
            Some(json!({"vendor_id": va, "device_ids": [da], "duration_minutes": 5, "justification": "j"})),
        ),
        row(
            "POST",
            "/api/v1/windows/{id}/extend",
            format!("/api/v1/windows/{wa}/extend"),
            Some(json!({"ends_at": later, "reason": "r"})),
        )
        .hidden(&["vendor_b"]),
        row(
            "POST",
            "/api/v1/windows/{id}/review",
            format!("/api/v1/windows/{wa}/review"),
            Some(json!({"verdict": "justified", "comment": "c"})),
        ),
        row(
            "POST",
            "/api/v1/windows/{id}/report",
            format!("/api/v1/windows/{wa}/report"),
            Some(json!({"summary": "s", "actions": "a", "outcome": "success"})),
        )
        .hidden(&["vendor_b"]),
        row(
            "GET",
            "/api/v1/windows/{id}/report",
            format!("/api/v1/windows/{wa}/report"),
            None,
        )
        .hidden(&["vendor_b"]),
        row(
            "POST",
            "/api/v1/windows/{id}/report/addenda",
            format!("/api/v1/windows/{wa}/report/addenda"),
            Some(json!({"text": "t"})),
        )
        .hidden(&["vendor_b"]),
        row("GET", "/api/v1/reports", "/api/v1/reports", None),
        row("GET", "/api/v1/users", "/api/v1/users", None),
        row(
            "POST",
            "/api/v1/users/{id}/disable",
            format!("/api/v1/users/{spare}/disable"),
            None,
        ),
        row(
            "POST",
            "/api/v1/users/{id}/enable",
            format!("/api/v1/users/{spare}/enable"),
            None,
        ),
        row(
            "POST",
            "/api/v1/users/{id}/reset-password",
            format!("/api/v1/users/{spare}/reset-password"),
            None,
        ),
        row(
            "POST",
            "/api/v1/users/{id}/reset-mfa",
            format!("/api/v1/users/{spare}/reset-mfa"),
            None,
        ),
        row(
            "POST",
            "/api/v1/devices/{id}/disable",
            format!("/api/v1/devices/{db_}/disable"),
            None,
        ),
        row(
            "POST",
            "/api/v1/devices/{id}/enable",
            format!("/api/v1/devices/{db_}/enable"),
            None,
        ),
        row("GET", "/api/v1/lockdown", "/api/v1/lockdown", None),
        row(
            "POST",
            "/api/v1/lockdown",
            "/api/v1/lockdown",
            Some(json!({"reason": "matrix"})),
        ),
        row(
            "DELETE",
            "/api/v1/lockdown",
            "/api/v1/lockdown",
            Some(json!({"reason": "matrix"})),
        ),
    ];
    let mut exercised = std::collections::HashSet::new();
    for r in &rows {
        let allowed = table_roles(r.method, r.route, r.variant);
        exercised.insert((r.method, r.route, r.variant));
        let path_as = |role: &str| r.path.replace("{own_token}", &own_tokens[role]);
        for role in r.hidden.iter().chain(r.refused) {
            assert!(
                allowed.contains(table_role(role)),
                "{} {}: the object rule of {role} is for a role the table allows",
                r.method,
                r.route
            );
        }
        // Without a token, or with a wrong one: 401, always, with the error shape.
        for token in [None, Some("ptk_0000"), Some("not-even-a-token")] {
            let path = path_as("admin");
            let (st, b) = t.call(r.method, &path, token, r.body.clone()).await;
            assert_eq!(st, 401, "{} {path} with {token:?}: {b}", r.method);
            assert_eq!(b["error"], "unauthenticated");
        }
        for (role, token) in &roles {
            let (method, path) = (r.method, path_as(role));
            let (st, b) = t.call(method, &path, Some(token), r.body.clone()).await;
            if r.hidden.contains(role) {
                assert_eq!(st, 404, "{method} {path} as {role}: {b}");
            } else if r.refused.contains(role) {
                assert_eq!(st, 403, "{method} {path} as {role}: {b}");
            } else if allowed.contains(table_role(role)) {
                assert!(
                    st != 401 && st != 403 && st != 404 && st < 500,
                    "{method} {path} as {role}: {st} {b}"
                );
                if method == "GET" {
                    assert_eq!(st, 200, "{method} {path} as {role}: {b}");
                }
            } else {
                assert_eq!(st, 403, "{method} {path} as {role}: {b}");
                assert_eq!(b["error"], "forbidden");
            }
        }
    }
    // Every route of the table that needs an account is exercised above.
    for right in TABLE.iter().filter(|r| r.access != Access::Public) {
        for a in right.api {
            assert!(
                exercised.contains(&(a.method, a.path, a.variant.is_some())),
                "{} {} ({:?}) is not in the matrix",
                a.method,
                a.path,
                right.function
            );
        }
    }
    // Vendor B sees nothing of vendor A in the lists.
    for path in [
        "/api/v1/vendors",
        "/api/v1/devices",
        "/api/v1/windows",
        "/api/v1/sessions",
    ] {
        let (_, list) = t.call("GET", path, Some(&vendor_b), None).await;
        let text = list.to_string();
        assert!(
            !text.contains(va.as_str()) && !text.contains(da.as_str()),
            "{path} leaks vendor A to vendor B: {text}"
        );
        let (_, list) = t.call("GET", path, Some(&vendor_a), None).await;
        assert!(
            !list.to_string().contains(&w.vendor_b),
            "{path} leaks vendor B to vendor A"
        );
    }
    // Filters cannot widen a vendor's view.
    let (_, list) = t
        .call("GET", &format!("/api/v1/windows?vendor_id={va}"), Some(&vendor_b), None)
        .await;
    assert_eq!(list, json!([]));
    let (_, list) = t
        .call(
            "GET",
            &format!("/api/v1/sessions?vendor_id={va}"),
            Some(&vendor_b),
            None,
        )
        .await;
    assert_eq!(list, json!([]));
    // Refused attempts at changes are audited with the caller.
    let refused = t
        .app
        .store
        .list_audit(&AuditFilter {
            action: Some("api.refused".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(refused
        .iter()
        .any(|e| e.object == "/api/v1/vendors" && e.details.contains("403") && e.actor != "unauthenticated"));
    assert!(refused
        .iter()
        .any(|e| e.actor == "unauthenticated" && e.details.contains("401")));
    // Open endpoints: every public route of the table, without a token.
    for right in TABLE.iter().filter(|r| r.access == Access::Public) {
        for a in right.api {
            let (st, _) = t.call(a.method, a.path, None, None).await;
            assert_eq!(st, 200, "{} {}", a.method, a.path);
        }
    }
    // Mutations are on the audit trail with their actor.
    let events = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    for action in [
        "vendor.created",
        "device.created",
        "window.requested",
        "technician.added",
        "user.created",
        "vendor.disabled",
        "technician.revoked",
        "user.disabled",
        "device.disabled",
        "device.enabled",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.outcome == "success" && e.actor != "gateway"),
            "{action} not audited"
        );
    }
    t.stop().await;
}
on_both_backends!(authorization_matrix_every_route_every_role, super::authorization_matrix);

/// The authorization table and the served API name the same routes: each
/// operation of the served OpenAPI document (and the document itself) is one
/// row's, and every route of the table is served. Every console page or form
/// the table names is one the console answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_table_covers_every_served_route() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let (st, doc) = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    let mut served = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                served.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    // Served beside the document it serves.
    served.insert(("GET".to_owned(), "/api/v1/openapi.json".to_owned()));
    let mut in_table = std::collections::BTreeMap::<(String, String), Vec<&str>>::new();
    for right in TABLE {
        for a in right.api.iter().filter(|a| a.variant.is_none()) {
            in_table
                .entry((a.method.to_owned(), a.path.to_owned()))
                .or_default()
                .push(right.function.name());
        }
    }
    for (route, functions) in &in_table {
        assert_eq!(functions.len(), 1, "{route:?} is in several rows: {functions:?}");
        assert!(served.contains(route), "{route:?} is in the table but not served");
    }
    for route in &served {
        assert!(
            in_table.contains_key(route),
            "{route:?} is served but in no row of the table"
        );
    }
    // Console surfaces: a path the console does not route answers 404 (405 for
    // a method it does not take); a routed one sends a signed-out visitor to
    // sign in, or refuses the form.
    for right in TABLE {
        for surface in right.console {
            let (method, path) = surface.split_once(' ').unwrap();
            let path = path.replace("{id}", "x").replace("{tid}", "y");
            let (st, _) = t.call(method, &path, None, None).await;
            assert!(st != 404 && st != 405, "{surface} ({:?}): {st}", right.function);
        }
    }
    t.stop().await;
}

fn openssl_csr(dir: &std::path::Path) -> Option<(String, String)> {
    let key = dir.join("tech.key");
    let csr = dir.join("tech.csr");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=whatever",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .status()
        .ok()?
        .success();
    ok.then(|| {
        (
            std::fs::read_to_string(csr).unwrap(),
            std::fs::read_to_string(key).unwrap(),
        )
    })
}

async fn workflow(db: TestDb) {
    // Virtual time: the window starts when the test moves the clock.
    let clock = std::sync::Arc::new(portier::clock::ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let device = echo_device().await;
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Acme Imaging", "networks": ["127.0.0.2"], "security_contact": "soc@acme.example"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let vid = v["id"].as_str().unwrap().to_owned();
    let Some((csr, key)) = openssl_csr(t.dir.path()) else {
        eprintln!("skipped: openssl is not installed");
        return;
    };
    let (st, tech) = t
        .call(
            "POST",
            &format!("/api/v1/vendors/{vid}/technicians"),
            Some(&t.admin),
            Some(json!({"name": "alice", "csr_pem": csr})),
        )
        .await;
    assert_eq!(st, 201, "{tech}");
    assert_eq!(tech["fingerprint_sha256"].as_str().unwrap().len(), 64);
    let cert = tech["certificate_pem"].as_str().unwrap().to_owned();
    assert_eq!(
        portier::pki::CertInfo::from_pem(&cert).unwrap().subject,
        "O=Acme Imaging, CN=alice",
        "the CA sets the subject"
    );
    let (st, d) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-1", "address": device.to_string(), "protocol": "echo", "vendor_ids": [vid]})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let vendor = t.token("vendor", "acme-desk", Some(&vid)).await;
    let security = t.token("security", "soc", None).await;

    // The vendor requests a window starting in 3 s, with the real curl.
    let starts = Utc::now() + chrono::Duration::seconds(3);
    let body = json!({"device_ids": [d["id"]], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "firmware 4.2"}).to_string();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(t.server_ca())
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", t.app.api_addr.port())])
        .args([
            "-H",
            &format!("Authorization: Bearer {vendor}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])
        .arg(t.url("/api/v1/windows"))
        .output();
    let w: Value = match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap(),
        _ => {
            eprintln!("curl unavailable: requesting with the Rust client");
            let (st, w) = t
                .call(
                    "POST",
                    "/api/v1/windows",
                    Some(&vendor),
                    Some(serde_json::from_str(&body).unwrap()),
                )
                .await;
            assert_eq!(st, 201);
            w
        }
    };
    assert_eq!(w["state"], "requested", "{w}");
    let wid = w["id"].as_str().unwrap().to_owned();

    // The vendor cannot approve; nor can an admin approve a window it requested itself.
    let (st, b) = t
        .call("POST", &format!("/api/v1/windows/{wid}/approve"), Some(&vendor), None)
        .await;
    assert_eq!(st, 403, "{b}");
    let (_, own) = t
        .call("POST", "/api/v1/windows", Some(&t.admin), Some(json!({"vendor_id": vid, "device_ids": [d["id"]], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "x"})))
        .await;
    let (st, b) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{}/approve", own["id"].as_str().unwrap()),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(st, 403, "{b}");
    assert!(b["message"].as_str().unwrap().contains("requested"), "{b}");

    // Not approved yet: refused.
    let cfg = t.technician_tls(&cert, &key);
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", cfg.clone())
        .await
        .unwrap();
    assert!(read_all(&mut tls)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED no_active_window "));

    let (st, b) = t
        .call("POST", &format!("/api/v1/windows/{wid}/approve"), Some(&security), None)
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["state"], "approved");
    // Approved but not started: still refused.
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", cfg.clone())
        .await
        .unwrap();
    assert!(read_all(&mut tls)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED no_active_window "));

    // Inside the window: the tunnel works.
    clock.set(starts + chrono::Duration::milliseconds(100));
    let (_, b) = t
        .call("GET", &format!("/api/v1/windows/{wid}"), Some(&vendor), None)
        .await;
    assert_eq!(b["state"], "active");
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", cfg.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"hello mri").await, b"hello mri");
    // From an undeclared address: refused even now.
    let mut other = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", cfg.clone())
        .await
        .unwrap();
    assert!(read_all(&mut other)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED source_ip_not_declared "));

    // Security revokes: the live tunnel is cut within a second.
    let (st, b) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/revoke"),
            Some(&security),
            Some(json!({"reason": "suspicious activity"})),
        )
        .await;
    let revoked_at = Utc::now();
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["state"], "revoked");
    let closed = wait_closed(&mut tls).await;
    assert!(
        closed - revoked_at < chrono::Duration::seconds(1),
        "cut {} after the revocation",
        closed - revoked_at
    );
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", cfg.clone())
        .await
        .unwrap();
    assert!(read_all(&mut tls)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED no_active_window "));

    let sessions = eventually(|| async {
        let (_, list) = t.call("GET", "/api/v1/sessions", Some(&vendor), None).await;
        let list = list.as_array().cloned().unwrap_or_default();
        (list.len() == 1 && list[0]["end_reason"] == "window_revoked").then_some(list)
    })
    .await;
    assert_eq!(sessions[0]["window_id"], wid.as_str());
    assert_eq!(sessions[0]["source_ip"], "127.0.0.2");
    assert_eq!(sessions[0]["bytes_from_vendor"], 9);
    let (_, csv) = (
        200,
        t.http
            .get(t.url("/api/v1/sessions?format=csv"))
            .bearer_auth(&security)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        csv.starts_with("id,window_id,vendor_id,technician_id,technician_subject,"),
        "{csv}"
    );
    assert!(
        csv.contains("window_revoked") && csv.contains("\"O=Acme Imaging, CN=alice\""),
        "{csv}"
    );
    t.stop().await;
}
on_both_backends!(workflow_request_approve_connect_revoke, super::workflow);

async fn bad_input(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (_, a) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "A", "networks": ["127.0.0.2"]})),
        )
        .await;
    let (_, b) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "B", "networks": ["127.0.0.4"]})),
        )
        .await;
    let (_, db_) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "dev-b", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [b["id"]]})),
        )
        .await;
    let vendor = t.token("vendor", "desk-a", a["id"].as_str()).await;
    let now = Utc::now();
    let send_raw = |path: &'static str, body: &'static str| {
        t.http
            .post(t.url(path))
            .bearer_auth(&t.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Malformed JSON.
    let r = send_raw("/api/v1/vendors", "{\"name\": ").await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "malformed_json");
    // Not JSON at all.
    let r = t
        .http
        .post(t.url("/api/v1/vendors"))
        .bearer_auth(&t.admin)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Oversized body.
    let huge = format!("{{\"name\": \"{}\", \"networks\": []}}", "x".repeat(100 * 1024));
    let r = t
        .http
        .post(t.url("/api/v1/vendors"))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "payload_too_large");

    let window = |starts: chrono::DateTime<Utc>, ends: chrono::DateTime<Utc>, device: &Value| json!({"device_ids": [device], "starts_at": starts, "ends_at": ends, "reason": "r"});
    let cases: Vec<(&str, &str, String, Option<&str>, Value, u16, &str)> = vec![
        (
            "unknown field",
            "POST",
            "/api/v1/vendors".into(),
            None,
            json!({"name": "C", "networks": ["127.0.0.5"], "colour": "red"}),
            400,
            "colour",
        ),
        (
            "bad CIDR",
            "POST",
            "/api/v1/vendors".into(),
            None,
            json!({"name": "C", "networks": ["127.0.0.5", "300.1.2.3/8"]}),
            400,
            "300.1.2.3/8",
        ),
        (
            "whole internet",
            "POST",
            "/api/v1/vendors".into(),
            None,
            json!({"name": "C", "networks": ["0.0.0.0/0"]}),
            400,
            "every address",
        ),
        (
            "no networks",
            "POST",
            "/api/v1/vendors".into(),
            None,
            json!({"name": "C", "networks": []}),
            400,
            "at least one",
        ),
        (
            "wrong type",
            "POST",
            "/api/v1/vendors".into(),
            None,
            json!({"name": 5, "networks": []}),
            400,
            "name",
        ),
        (
            "bad device name",
            "POST",
            "/api/v1/devices".into(),
            None,
            json!({"name": "bad name", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": []}),
            400,
            "bad name",
        ),
        (
            "bad address",
            "POST",
            "/api/v1/devices".into(),
            None,
            json!({"name": "ok-1", "address": "nowhere", "protocol": "ssh", "vendor_ids": []}),
            400,
            "host:port",
        ),
        (
            "duplicate device",
            "POST",
            "/api/v1/devices".into(),
            None,
            json!({"name": "dev-b", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": []}),
            409,
            "",
        ),
        (
            "end before start",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now + chrono::Duration::hours(2),
                now + chrono::Duration::hours(1),
                &db_["id"],
            ),
            400,
            "after starts_at",
        ),
        (
            "window too long",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now + chrono::Duration::hours(1),
                now + chrono::Duration::hours(14),
                &db_["id"],
            ),
            400,
            "12 hours",
        ),
        (
            "too far ahead",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now + chrono::Duration::days(200),
                now + chrono::Duration::days(200) + chrono::Duration::hours(1),
                &db_["id"],
            ),
            400,
            "days ahead",
        ),
        (
            "in the past",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now - chrono::Duration::hours(3),
                now - chrono::Duration::hours(2),
                &db_["id"],
            ),
            400,
            "past",
        ),
        (
            "another vendor's device",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now + chrono::Duration::hours(1),
                now + chrono::Duration::hours(2),
                &db_["id"],
            ),
            422,
            "not assigned",
        ),
        (
            "unknown device",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            window(
                now + chrono::Duration::hours(1),
                now + chrono::Duration::hours(2),
                &json!("nope"),
            ),
            422,
            "unknown device",
        ),
        (
            "bad timestamp",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            json!({"device_ids": ["x"], "starts_at": "tomorrow", "ends_at": "later", "reason": "r"}),
            400,
            "_at",
        ),
        (
            "vendor for another vendor",
            "POST",
            "/api/v1/windows".into(),
            Some(&vendor),
            json!({"vendor_id": b["id"], "device_ids": [db_["id"]], "starts_at": now + chrono::Duration::hours(1), "ends_at": now + chrono::Duration::hours(2), "reason": "r"}),
            403,
            "own vendor",
        ),
        (
            "empty reason",
            "POST",
            "/api/v1/windows/x/reject".into(),
            None,
            json!({"reason": "  "}),
            400,
            "reason",
        ),
        (
            "bad CSR",
            "POST",
            format!("/api/v1/vendors/{}/technicians", a["id"].as_str().unwrap()),
            None,
            json!({"name": "t", "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}),
            400,
            "csr_pem",
        ),
        (
            "foreign certificate",
            "POST",
            format!("/api/v1/vendors/{}/technicians", a["id"].as_str().unwrap()),
            None,
            json!({"name": "t", "certificate_pem": portier::pki::CertAuthority::generate("rogue", 1).unwrap().issue_client("t", None, 1).unwrap().cert_pem}),
            422,
            "vendor_ca",
        ),
        (
            "both csr and certificate",
            "POST",
            format!("/api/v1/vendors/{}/technicians", a["id"].as_str().unwrap()),
            None,
            json!({"name": "t", "csr_pem": "x", "certificate_pem": "y"}),
            400,
            "exactly one",
        ),
        (
            "unknown role",
            "POST",
            "/api/v1/users".into(),
            None,
            json!({"name": "u", "role": "root"}),
            400,
            "role",
        ),
    ];
    for (name, method, path, token, body, status, needle) in cases {
        let (st, e) = t.call(method, &path, Some(token.unwrap_or(&t.admin)), Some(body)).await;
        assert_eq!(st, status, "{name}: {e}");
        assert!(e["error"].is_string(), "{name}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{name}: {message:?} should mention {needle:?}"
        );
    }
    // Bad query parameters.
    let (st, e) = t
        .call("GET", "/api/v1/windows?since=yesterday", Some(&t.admin), None)
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, _) = t.call("GET", "/api/v1/windows?state=bogus", Some(&t.admin), None).await;
    assert_eq!(st, 400);
    let sec = t.token("security", "soc", None).await;
    let (st, _) = t.call("GET", "/api/v1/sessions?format=xml", Some(&sec), None).await;
    assert_eq!(st, 400);
    // Unknown routes and methods.
    let (st, e) = t.call("GET", "/api/v1/nothing", Some(&t.admin), None).await;
    assert_eq!((st, e["error"].as_str()), (404, Some("not_found")));
    let (st, _) = t.call("PATCH", "/api/v1/vendors", Some(&t.admin), None).await;
    assert_eq!(st, 405);
    t.stop().await;
}
on_both_backends!(bad_input_gets_a_clear_4xx, super::bad_input);

async fn cuts(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let (_, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Acme", "networks": ["127.0.0.2"]})),
        )
        .await;
    let vid = v["id"].as_str().unwrap().to_owned();
    let ca = portier::pki::CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let mut techs = Vec::new();
    for name in ["t1", "t2", "t3"] {
        let c = ca.issue_client(name, Some("Acme"), 1).unwrap();
        let (st, tech) = t
            .call(
                "POST",
                &format!("/api/v1/vendors/{vid}/technicians"),
                Some(&t.admin),
                Some(json!({"name": name, "certificate_pem": c.cert_pem})),
            )
            .await;
        assert_eq!(st, 201, "{tech}");
        techs.push((
            tech["id"].as_str().unwrap().to_owned(),
            t.technician_tls(&c.cert_pem, &c.key_pem),
        ));
    }
    let (_, d) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-1", "address": device.to_string(), "protocol": "echo", "vendor_ids": [vid]})),
        )
        .await;
    let now = Utc::now();
    let (_, w) = t
        .call("POST", "/api/v1/windows", Some(&t.admin), Some(json!({"vendor_id": vid, "device_ids": [d["id"]], "starts_at": now - chrono::Duration::minutes(1), "ends_at": now + chrono::Duration::hours(1), "reason": "r"})))
        .await;
    let security = t.token("security", "soc", None).await;
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{}/approve", w["id"].as_str().unwrap()),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(st, 200);

    let mut tunnels = Vec::new();
    for (_, cfg) in &techs {
        let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", cfg.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut tls, b"ping").await, b"ping");
        tunnels.push(tls);
    }
    let live = eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=true", Some(&security), None)
            .await;
        l.as_array().filter(|a| a.len() == 3).cloned()
    })
    .await;
    let session_of = |tech: &str| {
        live.iter().find(|s| s["technician_id"] == tech).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Terminate one session.
    let sid = session_of(&techs[0].0);
    let before = Utc::now();
    let (st, b) = t
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/terminate"),
            Some(&security),
            Some(json!({"reason": "operator request"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(wait_closed(&mut tunnels[0]).await - before < chrono::Duration::seconds(1));
    // Revoke a technician.
    let before = Utc::now();
    let (st, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/vendors/{vid}/technicians/{}", techs[1].0),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(wait_closed(&mut tunnels[1]).await - before < chrono::Duration::seconds(1));
    let mut again = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", techs[1].1.clone())
        .await
        .unwrap();
    assert!(read_all(&mut again)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED unknown_technician "));
    // Disable the vendor.
    let before = Utc::now();
    let (st, _) = t
        .call("POST", &format!("/api/v1/vendors/{vid}/disable"), Some(&security), None)
        .await;
    assert_eq!(st, 200);
    assert!(wait_closed(&mut tunnels[2]).await - before < chrono::Duration::seconds(1));
    let _ = tunnels[2].shutdown().await;

    let ended = eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&security), None)
            .await;
        l.as_array().filter(|a| a.len() == 3).cloned()
    })
    .await;
    let reason_of = |tech: &str| ended.iter().find(|s| s["technician_id"] == tech).unwrap()["end_reason"].clone();
    assert_eq!(reason_of(&techs[0].0), "terminated");
    assert_eq!(reason_of(&techs[1].0), "technician_revoked");
    assert_eq!(reason_of(&techs[2].0), "vendor_disabled");
    // Terminating an ended session is a conflict.
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/sessions/{sid}/terminate"),
            Some(&security),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(st, 409);
    t.stop().await;
}
on_both_backends!(terminate_revoke_and_disable_cut_within_a_second, super::cuts);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_unreachable_gives_503_not_500() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: needs PostgreSQL (PORTIER_TEST_PG_URL) to take the database away");
        return;
    };
    let t = TestApp::spawn(db).await;
    let (st, _) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(st, 200);
    // Take the database away under the running node.
    let admin = std::env::var("PORTIER_TEST_PG_URL").unwrap();
    let name = t.db.url.rsplit('/').next().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
    let (st, e) = t.call("GET", "/readyz", None, None).await;
    assert_eq!(st, 503, "{e}");
    // Authentication fails closed: 503, never a pass.
    let (st, e) = t.call("GET", "/api/v1/me", Some(&t.admin), None).await;
    assert_eq!(st, 503, "{e}");
    assert_eq!(e["error"], "store_unavailable");
    // The security dossier, read from the database, neither.
    let (st, e) = t.call("GET", "/api/v1/dossier/en", Some(&t.admin), None).await;
    assert_eq!(st, 503, "{e}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let (st, doc) = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/me", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/vendors", "post"),
        ("/api/v1/vendors", "get"),
        ("/api/v1/vendors/{id}", "get"),
        ("/api/v1/vendors/{id}/networks", "put"),
        ("/api/v1/vendors/{id}/disable", "post"),
        ("/api/v1/vendors/{id}/enable", "post"),
        ("/api/v1/vendors/{id}/technicians", "post"),
        ("/api/v1/vendors/{id}/technicians", "get"),
        ("/api/v1/vendors/{id}/technicians/{tid}", "delete"),
        ("/api/v1/devices", "post"),
        ("/api/v1/devices", "get"),
        ("/api/v1/devices/{id}", "get"),
        ("/api/v1/windows", "post"),
        ("/api/v1/windows", "get"),
        ("/api/v1/windows/{id}", "get"),
        ("/api/v1/windows/{id}/approve", "post"),
        ("/api/v1/windows/{id}/reject", "post"),
        ("/api/v1/windows/{id}/revoke", "post"),
        ("/api/v1/windows/{id}/cancel", "post"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/{id}", "get"),
        ("/api/v1/sessions/{id}/terminate", "post"),
        ("/api/v1/windows/{id}/extend", "post"),
        ("/api/v1/windows/{id}/review", "post"),
        ("/api/v1/emergency", "post"),
        ("/api/v1/lockdown", "get"),
        ("/api/v1/lockdown", "post"),
        ("/api/v1/lockdown", "delete"),
        ("/api/v1/windows/{id}/report", "post"),
        ("/api/v1/windows/{id}/report", "get"),
        ("/api/v1/windows/{id}/report/addenda", "post"),
        ("/api/v1/reports", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    t.stop().await;
}

/// A disabled account's token stops working at once; an admin cannot disable
/// itself; the change is audited by whoever made it.
async fn disabled_accounts(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (st, created) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "leaver", "role": "security"})),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let (id, token) = (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
    let (st, _) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(st, 200);
    let (st, u) = t
        .call("POST", &format!("/api/v1/users/{id}/disable"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200, "{u}");
    assert!(u["disabled_at"].is_string(), "{u}");
    let (st, e) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(st, 401, "a disabled account's token must be refused: {e}");
    let (_, me) = t.call("GET", "/api/v1/me", Some(&t.admin), None).await;
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/users/{admin_id}/disable"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(st, 409, "{e}");
    let events = t.app.store.list_audit(&AuditFilter::default()).await.unwrap();
    let disabled: Vec<_> = events.iter().filter(|e| e.action == "user.disabled").collect();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].object, id);
    assert_eq!(disabled[0].actor, admin_id);
    t.stop().await;
}
on_both_backends!(a_disabled_account_is_refused_at_once, super::disabled_accounts);
