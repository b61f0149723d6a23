//! Hostile tests: input (issue 8, defects 12 and 14). Credentials in URLs never
//! shown; names and free text refused when they carry control or bidirectional
//! characters; over-broad networks, backdated windows and SQL text refused;
//! devices by name; timestamps without an offset explained; every answer
//! documented.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use portier::clock::ManualClock;
use portier::notify::{self, DeliverySettings, Sinks, WebhookConfig};
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

const PASSWORD: &str = "pa55w0rd-hook";
const TOKEN: &str = "t0ken-in-query";
const FRAGMENT: &str = "frag-secret";
const HMAC: &str = "hmac-secret-0123456789";
const DB_PASSWORD: &str = "db-pa55w0rd";

fn leaks(text: &str) -> Vec<&'static str> {
    [PASSWORD, TOKEN, FRAGMENT, HMAC, DB_PASSWORD]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

/// A port nothing listens on: deliveries to it fail at once.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn hook_url(port: u16) -> String {
    format!("http://fuzz:{PASSWORD}@127.0.0.1:{port}/hook?token={TOKEN}&x=1#{FRAGMENT}")
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A failing webhook whose URL carries a password, a query token and a
/// fragment: every attempt and the final abandon are logged, none with them.
#[tokio::test(flavor = "current_thread")]
async fn failed_webhook_deliveries_log_no_credentials() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // Current-thread runtime: the delivery tasks log on this thread, into `logs`.
    let _guard = tracing::subscriber::set_default(subscriber);
    let db = TestDb::sqlite().await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let (journal, _task) = portier::store::Journal::start(db.store.clone());
    let (notifier, worker) = notify::start(
        Sinks {
            webhooks: vec![WebhookConfig {
                url: hook_url(dead_port()),
                secret: HMAC.into(),
                events: vec!["*".into()],
                legacy_signature: false,
            }],
            syslog: None,
        },
        DeliverySettings {
            retry_base: Duration::from_millis(1),
            retry_for: Duration::from_secs(3600),
            poll: Duration::from_millis(10),
            ..DeliverySettings::default()
        },
        db.store.clone(),
        journal,
        clock.clone(),
        "n1",
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(worker.run(stop));
    notifier.send(portier::events::Event::LockdownOn, json!({"reason": "test"}));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !logs.text().contains("webhook unreachable") {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt logged: {}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the retry horizon: the next attempt is the last, and is logged as given up.
    clock.advance(chrono::Duration::hours(2));
    while !logs.text().contains("abandoned") {
        assert!(
            std::time::Instant::now() < deadline,
            "no abandon logged: {}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    assert!(text.contains("webhook unreachable"), "{text}");
    assert!(text.contains("127.0.0.1"), "the receiver is still named: {text}");
    assert!(
        leaks(&text).is_empty(),
        "credentials logged: {:?}\n{text}",
        leaks(&text)
    );
}

/// `Debug` of the configuration (what a `{:?}` in a log line would print).
#[test]
fn settings_debug_masks_secrets() {
    let toml = format!(
        "[database]\nurl = \"postgres://portier:{DB_PASSWORD}@db.example/portier?sslmode=require\"\n\
         [[notify.webhooks]]\nurl = \"{}\"\nsecret = \"{HMAC}\"\n",
        hook_url(443).replace("http://", "https://")
    );
    let settings =
        portier::config::Settings::from_toml(&toml, std::path::Path::new("/x"), Vec::<(String, String)>::new())
            .unwrap();
    let debug = format!("{settings:?}");
    assert!(leaks(&debug).is_empty(), "{:?} in {debug}", leaks(&debug));
    assert!(
        debug.contains("db.example") && debug.contains("sslmode=require"),
        "{debug}"
    );
    // The values themselves are intact for the code that uses them.
    assert!(settings.database.url.contains(DB_PASSWORD));
    assert_eq!(settings.notify.webhooks[0].secret.expose(), HMAC);
}

/// `GET /api/v1/flows` in every format names the webhook receiver without its
/// credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_matrix_shows_no_webhook_credentials() {
    let extra = format!(
        "[[notify.webhooks]]\nurl = \"{}\"\nsecret = \"{HMAC}\"\n",
        hook_url(dead_port())
    );
    let t = TestApp::spawn_with(TestDb::sqlite().await, &extra, Arc::new(portier::clock::SystemClock)).await;
    for format in ["json", "csv", "md"] {
        let r = t
            .http
            .get(t.url(&format!("/api/v1/flows?format={format}")))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("127.0.0.1") && body.contains("/hook"), "{body}");
        assert!(leaks(&body).is_empty(), "{format}: {:?} in {body}", leaks(&body));
    }
    t.stop().await;
}

/// Names and one-line texts with NUL, C0/C1 controls, DEL, line breaks or
/// bidirectional overrides are refused everywhere; reports keep their line feeds.
async fn control_characters_are_refused(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let admin = Some(t.admin.as_str());
    let bad_names = [
        "Acme\0",
        "Acme\nInjected: yes",
        "Ac\u{202e}emca",
        "Acme\u{2066}",
        "Acme\u{1b}[2J",
        "Ac\u{85}me",
        "Acme\u{7f}",
        "Ac\u{9b}me",
    ];
    for name in bad_names {
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/vendors",
                admin,
                Some(json!({"name": name, "networks": ["203.0.113.0/24"]})),
            )
            .await;
        assert_eq!(st, 400, "{name:?}: {e}");
        assert_eq!(e["error"], "invalid_request");
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/users",
                admin,
                Some(json!({"name": name, "role": "auditor"})),
            )
            .await;
        assert_eq!(st, 400, "{name:?}: {e}");
    }
    let (_, vendors) = t.call("GET", "/api/v1/vendors", admin, None).await;
    assert_eq!(vendors.as_array().unwrap().len(), 0, "{vendors}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Acme", "networks": ["203.0.113.0/24"], "security_contact": "soc@acme.example\r\nBcc: x"})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("security_contact"), "{e}");

    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    // A technician whose name would put a newline into the certificate subject.
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    for name in ["bob\nCN=admin", "bob\u{202e}", "bob\0"] {
        let (st, e) = t
            .call(
                "POST",
                &format!("/api/v1/vendors/{}/technicians", sc.vendor_id),
                admin,
                Some(json!({"name": name, "csr_pem": csr})),
            )
            .await;
        assert_eq!(st, 400, "{name:?}: {e}");
    }
    let (_, techs) = t
        .call(
            "GET",
            &format!("/api/v1/vendors/{}/technicians", sc.vendor_id),
            admin,
            None,
        )
        .await;
    assert_eq!(
        techs.as_array().unwrap().len(),
        1,
        "only the scene's technician: {techs}"
    );
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/devices",
            admin,
            Some(json!({"name": "ct-1", "address": "127.0.0.1:9", "protocol": "ssh\n", "vendor_ids": []})),
        )
        .await;
    // Trailing whitespace is trimmed; an inner line break is not.
    assert_eq!(st, 201, "{e}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/devices",
            admin,
            Some(json!({"name": "ct-2", "address": "127.0.0.1:9", "protocol": "s\nsh", "vendor_ids": []})),
        )
        .await;
    assert_eq!(st, 400, "{e}");

    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let window = |reason: &str| json!({"device_ids": [sc.device_id], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": reason});
    for reason in ["firmware\nAPPROVED BY SECURITY", "update \u{202e}lanigiro", "x\0y"] {
        let (st, e) = t
            .call("POST", "/api/v1/windows", Some(&vendor), Some(window(reason)))
            .await;
        assert_eq!(st, 400, "{reason:?}: {e}");
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/emergency",
                Some(&security),
                Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 10, "justification": reason})),
            )
            .await;
        assert_eq!(st, 400, "{reason:?}: {e}");
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/lockdown",
                Some(&security),
                Some(json!({"reason": reason})),
            )
            .await;
        assert_eq!(st, 400, "{reason:?}: {e}");
    }
    let (_, lock) = t.call("GET", "/api/v1/lockdown", admin, None).await;
    assert_eq!(lock["active"], false, "{lock}");

    // A report is multi-line: line feeds and tabs pass, an escape sequence does not.
    let now = Utc::now();
    let wid = t
        .approved_window(
            &vendor,
            &security,
            &sc.device_id,
            now - chrono::Duration::seconds(30),
            now + chrono::Duration::hours(1),
        )
        .await;
    let (st, _) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/revoke"),
            Some(&security),
            Some(json!({"reason": "done"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/report"),
            Some(&vendor),
            Some(json!({"summary": "ok\u{1b}]0;pwned\u{7}", "actions": "1. a", "outcome": "success"})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{wid}/report"),
            Some(&vendor),
            Some(json!({"summary": "Replaced the coil", "actions": "1. backup\n2. flash\n\t- checked", "outcome": "success"})),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    assert_eq!(e["report"]["actions"], "1. backup\n2. flash\n\t- checked");
    t.stop().await;
}
on_both_backends!(
    names_and_free_text_refuse_control_characters,
    super::control_characters_are_refused
);

/// `0.0.0.0/1` + `128.0.0.0/1` is all of IPv4: each half is broader than /16.
async fn broad_networks_are_refused(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let admin = Some(t.admin.as_str());
    for nets in [
        json!(["0.0.0.0/1", "128.0.0.0/1"]),
        json!(["10.0.0.0/8"]),
        json!(["203.0.0.0/15"]),
        json!(["2001:db8::/31"]),
        json!(["::/1", "8000::/1"]),
        json!(["::ffff:0.0.0.0/97"]),
    ] {
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/vendors",
                admin,
                Some(json!({"name": "Broad", "networks": nets})),
            )
            .await;
        assert_eq!(st, 400, "{nets}: {e}");
        assert!(e["message"].as_str().unwrap().contains("broader than"), "{e}");
    }
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Narrow", "networks": ["10.1.0.0/16", "2001:db8::/32", "203.0.113.7", "203.0.113.7/32"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["networks"].as_array().unwrap().len(), 3, "duplicates folded: {v}");
    let vid = v["id"].as_str().unwrap().to_owned();
    let (st, e) = t
        .call(
            "PUT",
            &format!("/api/v1/vendors/{vid}/networks"),
            admin,
            Some(json!({"networks": ["0.0.0.0/1"]})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    // An admin may allow it explicitly; the decision is audited.
    let (st, v) = t
        .call(
            "PUT",
            &format!("/api/v1/vendors/{vid}/networks"),
            admin,
            Some(json!({"networks": ["10.0.0.0/8"], "allow_broad_networks": true})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Everyone", "networks": ["0.0.0.0/0"], "allow_broad_networks": true})),
        )
        .await;
    assert_eq!(st, 400, "a /0 stays refused: {e}");
    // Emergency grants' extra networks follow the same floor, with no override.
    let (st, d) = t
        .call(
            "POST",
            "/api/v1/devices",
            admin,
            Some(json!({"name": "mri-1", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [vid]})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let security = t.token("security", "soc", None).await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&security),
            Some(json!({"vendor_id": vid, "device_ids": ["mri-1"], "duration_minutes": 10, "justification": "MRI down", "extra_networks": ["0.0.0.0/1", "128.0.0.0/1"]})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&security),
            Some(json!({"vendor_id": vid, "device_ids": ["mri-1"], "duration_minutes": 10, "justification": "MRI down", "extra_networks": ["198.51.100.0/24"], "allow_broad_networks": true})),
        )
        .await;
    assert_eq!(st, 400, "no override field on grants: {e}");
    let (_, audit) = t.call("GET", "/api/v1/audit", Some(&security), None).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "vendor.networks_replaced"
                && serde_json::from_str::<Value>(r["details"].as_str().unwrap()).unwrap()["allow_broad_networks"]
                    == true),
        "{audit}"
    );
    t.stop().await;
}
on_both_backends!(
    networks_broader_than_the_floor_are_refused,
    super::broad_networks_are_refused
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_floor_is_configurable() {
    let t = TestApp::spawn_with(
        TestDb::sqlite().await,
        "[policy]\nmin_network_prefix_v4 = 8\nmin_network_prefix_v6 = 48\n",
        Arc::new(portier::clock::SystemClock),
    )
    .await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "A", "networks": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "B", "networks": ["2001:db8::/32"]})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    t.stop().await;
    for bad in [
        "min_network_prefix_v4 = 0",
        "min_network_prefix_v4 = 33",
        "min_network_prefix_v6 = 129",
    ] {
        let r = portier::config::Settings::from_toml(
            &format!("[policy]\n{bad}\n"),
            std::path::Path::new("/x"),
            Vec::<(String, String)>::new(),
        );
        assert!(r.is_err(), "{bad}");
    }
}

/// A backdated window is refused with a message that says why; one that starts a
/// moment ago (a client's "now") is accepted.
async fn backdated_windows_are_refused(db: TestDb) {
    let start: DateTime<Utc> = "2026-06-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let t = TestApp::spawn_with(db, "", clock.clone()).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let window = |starts: DateTime<Utc>| json!({"device_ids": [sc.device_id], "starts_at": starts, "ends_at": start + chrono::Duration::hours(2), "reason": "r"});
    for minutes in [2, 60, 24 * 60] {
        let (st, e) = t
            .call(
                "POST",
                "/api/v1/windows",
                Some(&vendor),
                Some(window(start - chrono::Duration::minutes(minutes))),
            )
            .await;
        assert_eq!(st, 400, "{minutes} min ago: {e}");
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("in the past") && m.contains("at most 1 minute"), "{m}");
    }
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(window(start - chrono::Duration::minutes(1))),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    t.stop().await;
}
on_both_backends!(
    windows_starting_in_the_past_are_refused,
    super::backdated_windows_are_refused
);

fn assert_no_sql(e: &Value) {
    let m = e["message"].as_str().unwrap_or_default().to_ascii_lowercase();
    for sql in [
        "unique",
        "constraint",
        "vendors.",
        "devices.",
        "users.",
        "technicians.",
        "_key",
        "duplicate key",
        "violates",
    ] {
        assert!(!m.contains(sql), "SQL leaked ({sql}): {e}");
    }
}

/// Uniqueness answers are in the product's words, never the database's.
async fn conflicts_speak_the_products_words(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let admin = Some(t.admin.as_str());
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Acme", "networks": ["203.0.113.0/24"]})),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["message"], "a vendor named \"Acme\" already exists");
    assert_no_sql(&e);
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/devices",
            admin,
            Some(json!({"name": "MRI-1", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": []})),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["message"], "a device named \"mri-1\" already exists");
    assert_no_sql(&e);
    // The same vendor twice in one assignment is one assignment, not a 409.
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/devices",
            admin,
            Some(json!({"name": "ct-1", "address": "127.0.0.1:9", "protocol": "ssh", "vendor_ids": [sc.vendor_id, sc.vendor_id]})),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    t.token("auditor", "audit-1", None).await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/users",
            admin,
            Some(json!({"name": "audit-1", "role": "auditor"})),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["message"], "an account named \"audit-1\" already exists");
    assert_no_sql(&e);
    // The same certificate pinned twice.
    let ca = portier::pki::CertAuthority::load(
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.pem")).unwrap(),
        &std::fs::read_to_string(t.dir.path().join("certs/vendor-ca.key")).unwrap(),
    )
    .unwrap();
    let cert = ca.issue_client("carol", Some("Acme"), 1).unwrap();
    let path = format!("/api/v1/vendors/{}/technicians", sc.vendor_id);
    let body = json!({"name": "carol", "certificate_pem": cert.cert_pem});
    let (st, e) = t.call("POST", &path, admin, Some(body.clone())).await;
    assert_eq!(st, 201, "{e}");
    let (st, e) = t.call("POST", &path, admin, Some(body)).await;
    assert_eq!(st, 409, "{e}");
    assert!(e["message"].as_str().unwrap().contains("already registered"), "{e}");
    assert_no_sql(&e);
    t.stop().await;
}
on_both_backends!(constraint_errors_show_no_sql, super::conflicts_speak_the_products_words);

/// Technicians know a device by its name (the SNI label): windows and
/// emergency grants accept it as well as the id.
async fn devices_by_name(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let window = |devices: Value| json!({"device_ids": devices, "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "r"});
    let (st, w) = t
        .call("POST", "/api/v1/windows", Some(&vendor), Some(window(json!(["MRI-1"]))))
        .await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(w["device_ids"], json!([sc.device_id]), "{w}");
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(window(json!(["mri-1", sc.device_id]))),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(w["device_ids"], json!([sc.device_id]), "one device, named twice: {w}");
    let (st, e) = t
        .call("POST", "/api/v1/windows", Some(&vendor), Some(window(json!(["ct-9"]))))
        .await;
    assert_eq!(st, 422, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("neither an id nor a name"),
        "{e}"
    );
    // Another vendor's device, by name: refused as for ids.
    let other = api_scene(&t, "Other", "127.0.0.4", "ct-1", device).await;
    let (st, e) = t
        .call("POST", "/api/v1/windows", Some(&vendor), Some(window(json!(["ct-1"]))))
        .await;
    assert_eq!(st, 422, "{e}");
    let (st, g) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&security),
            Some(json!({"vendor_id": other.vendor_id, "device_ids": ["ct-1"], "duration_minutes": 10, "justification": "CT down"})),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    assert_eq!(g["device_ids"], json!([other.device_id]));
    t.stop().await;
}
on_both_backends!(window_requests_accept_device_names, super::devices_by_name);

/// Makes every read of the vendors table fail, as a store that refuses would
/// (the table is renamed under the running node).
async fn hide_vendors_table(db: &TestDb) {
    use sqlx::Connection;
    let sql = "ALTER TABLE vendors RENAME TO vendors_hidden";
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

/// A vendor that does not exist is the caller's mistake (422); a store that
/// fails on the lookup is not, and is not reported as one: the client hears
/// 503 and may retry, instead of "unknown vendor" for a vendor that exists.
async fn store_failure_is_not_an_unknown_vendor(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let security = t.token("security", "soc", None).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let calls = |vendor: &str| {
        [
            (
                "/api/v1/emergency",
                security.clone(),
                json!({"vendor_id": vendor, "device_ids": ["mri-1"], "duration_minutes": 10, "justification": "MRI down"}),
            ),
            (
                "/api/v1/windows",
                t.admin.clone(),
                json!({"vendor_id": vendor, "device_ids": ["mri-1"], "starts_at": starts, "ends_at": starts + chrono::Duration::hours(1), "reason": "r"}),
            ),
            (
                "/api/v1/devices",
                t.admin.clone(),
                json!({"name": "ct-2", "address": "127.0.0.1:9", "protocol": "echo", "vendor_ids": [vendor]}),
            ),
            (
                "/api/v1/users",
                t.admin.clone(),
                json!({"name": "desk-2", "role": "vendor", "vendor_id": vendor}),
            ),
        ]
    };
    for (path, token, body) in calls("no-such-vendor") {
        let (st, e) = t.call("POST", path, Some(&token), Some(body)).await;
        assert_eq!(st, 422, "{path}: {e}");
        assert!(e["message"].as_str().unwrap().contains("unknown vendor"), "{path}: {e}");
    }
    hide_vendors_table(&t.db).await;
    for (path, token, body) in calls(&sc.vendor_id) {
        let (st, e) = t.call("POST", path, Some(&token), Some(body)).await;
        assert_eq!(st, 503, "{path}: {e}");
        assert_eq!(e["error"], "store_unavailable", "{path}: {e}");
    }
    t.stop().await;
}
on_both_backends!(
    a_failing_store_is_not_reported_as_an_unknown_vendor,
    super::store_failure_is_not_an_unknown_vendor
);

/// A NUL character in an id is the caller's mistake on both backends (PostgreSQL
/// refuses to store it): 4xx, never "the database cannot be reached".
async fn nul_in_ids(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (st, e) = t.call("GET", "/api/v1/vendors/a%00b", Some(&t.admin), None).await;
    assert!(matches!(st, 400 | 404), "{st} {e}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "desk-2", "role": "vendor", "vendor_id": "a\u{0}b"})),
        )
        .await;
    assert!(matches!(st, 400 | 422), "{st} {e}");
    // The store is still up for everyone else.
    let (st, _) = t.call("GET", "/api/v1/vendors", Some(&t.admin), None).await;
    assert_eq!(st, 200);
    t.stop().await;
}
on_both_backends!(a_nul_in_an_id_is_the_callers_mistake, super::nul_in_ids);

/// A time without an offset is explained, with the field's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_without_offset_are_explained() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&t.admin),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": ["mri-1"], "starts_at": "2026-12-01T08:00:00", "ends_at": "2026-12-01T09:00:00+01:00", "reason": "r"})),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("starts_at") && m.contains("RFC 3339 time with an offset"),
        "{m}"
    );
    assert!(!m.contains("premature end of input"), "{m}");
    let (st, e) = t
        .call("GET", "/api/v1/windows?since=2026-12-01", Some(&t.admin), None)
        .await;
    assert_eq!(st, 400, "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("since") && m.contains("RFC 3339"), "{m}");
    t.stop().await;
}

/// Every operation documents the answers its shape can give (408 included: the
/// request deadline applies to all), and an error the
/// framework itself produces still has the documented JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_documented() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let (st, doc) = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |code: &str| responses.contains_key(code);
            let public = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r == &json!({})));
            if !public {
                assert!(has("401") && has("503"), "{method} {path}: {responses:?}");
            }
            // The request deadline (30 s) bounds every operation.
            assert!(has("408"), "{method} {path} lacks 408");
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "415"] {
                    assert!(has(code), "{method} {path} lacks {code}");
                }
            }
            if path.contains('{') {
                assert!(has("400") && has("404"), "{method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} operations");
    // An undecodable path segment: axum's own rejection, rewritten as ErrorBody.
    let r = t
        .http
        .get(t.url("/api/v1/vendors/%FF%FE"))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_request", "{e}");
    t.stop().await;
}
