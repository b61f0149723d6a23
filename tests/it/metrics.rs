//! `GET /metrics` after a scripted scenario through real tunnels: every count
//! is the exact number of things that happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use portier::clock::SystemClock;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::*;
use crate::on_both_backends;

/// The samples of an exposition text: series (name and labels, as written) → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l:?}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            };
            (series.to_owned(), value)
        })
        .collect()
}

async fn scrape(t: &TestApp) -> (HashMap<String, f64>, String) {
    let resp = t.http.get(t.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    (samples(&text), text)
}

fn get(m: &HashMap<String, f64>, series: &str, text: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn denied(t: &TestApp, sc: &ApiScene, reason: &str) {
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    let said = read_all(&mut tls).await.unwrap();
    assert!(said.starts_with(&format!("PORTIER DENIED {reason} ")), "{said:?}");
}

async fn scenario(db: TestDb) {
    // A webhook receiver that is down: its failed attempts are counted.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "[notify]\nretry_base_ms = 200\n[[notify.webhooks]]\nurl = \"http://{dead}/hook\"\nsecret = \"a-secret-of-16-chars+\"\n"
    );
    let t = TestApp::spawn_with(db, &extra, Arc::new(SystemClock)).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;

    // Before any window: three refusals.
    for _ in 0..3 {
        denied(&t, &sc, "no_active_window").await;
    }
    // One window open now (approved), one requested for tomorrow (pending).
    let now = Utc::now();
    let open = t
        .approved_window(
            &vendor,
            &security,
            &sc.device_id,
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(1),
        )
        .await;
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(json!({"device_ids": [sc.device_id], "starts_at": now + chrono::Duration::days(1),
                        "ends_at": now + chrono::Duration::days(1) + chrono::Duration::hours(1), "reason": "next visit"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    // An extension of the open window, waiting for security.
    let (st, w) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{open}/extend"),
            Some(&vendor),
            Some(json!({"ends_at": now + chrono::Duration::hours(2), "reason": "calibration"})),
        )
        .await;
    assert_eq!(st, 200, "{w}");

    // Two tunnels: one closed by the technician, one cut by a lockdown.
    let first: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let second = b"a shorter exchange".to_vec();
    let mut a = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut a, &first).await, first);
    let mut b = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut b, &second).await, second);
    let (m, text) = scrape(&t).await;
    assert_eq!(get(&m, "portier_live_tunnels", &text), 2.0);
    a.shutdown().await.unwrap();
    wait_closed(&mut a).await;
    let (st, body) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "drill"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    wait_closed(&mut b).await;
    denied(&t, &sc, "lockdown").await;
    let (st, _) = t
        .call(
            "DELETE",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "drill over"})),
        )
        .await;
    assert_eq!(st, 200);

    // A connection that is not TLS at all.
    let mut raw = tokio::net::TcpStream::connect(t.app.gateway_addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let _ = read_to_end(&mut raw).await;

    // An emergency grant nobody reviewed yet.
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&security),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 5, "justification": "pump alarm"})),
        )
        .await;
    assert_eq!(st, 201, "{e}");

    // Tunnel ends are counted when their tasks finish: wait for both.
    let (m, text) = eventually(|| async {
        let (m, text) = scrape(&t).await;
        let ended: f64 = m
            .iter()
            .filter(|(k, _)| k.starts_with("portier_tunnels_ended_total{"))
            .map(|(_, v)| v)
            .sum();
        let webhook = m
            .get("portier_notification_attempts_failed_total{sink=\"webhook\"}")
            .copied()
            .unwrap_or_default();
        (ended == 2.0 && webhook >= 1.0).then_some((m, text))
    })
    .await;
    let g = |s: &str| get(&m, s, &text);
    assert_eq!(g("portier_tunnels_denied_total{reason=\"no_active_window\"}"), 3.0);
    assert_eq!(g("portier_tunnels_denied_total{reason=\"lockdown\"}"), 1.0);
    assert_eq!(g("portier_tunnels_denied_total{reason=\"unknown_device\"}"), 0.0);
    assert_eq!(g("portier_tunnels_opened_total"), 2.0);
    assert_eq!(g("portier_tunnels_ended_total{reason=\"client_closed\"}"), 1.0);
    assert_eq!(g("portier_tunnels_ended_total{reason=\"lockdown\"}"), 1.0);
    assert_eq!(g("portier_tunnels_ended_total{reason=\"window_ended\"}"), 0.0);
    // The echo device sends back what it gets: the same count each way.
    let sent = (first.len() + second.len()) as f64;
    assert_eq!(g("portier_tunnel_bytes_from_vendor_total"), sent);
    assert_eq!(g("portier_tunnel_bytes_to_vendor_total"), sent);
    assert_eq!(g("portier_live_tunnels"), 0.0);
    let failures: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("portier_tls_handshake_failures_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failures, 1.0, "{text}");
    assert_eq!(g("portier_tls_handshake_failures_total{class=\"protocol\"}"), 1.0);
    assert_eq!(g("portier_admission_seconds_count{outcome=\"admitted\"}"), 2.0);
    assert_eq!(g("portier_admission_seconds_count{outcome=\"denied\"}"), 4.0);
    assert_eq!(
        g("portier_admission_seconds_bucket{outcome=\"denied\",le=\"+Inf\"}"),
        4.0,
        "{text}"
    );
    assert!(g("portier_journal_commit_seconds_count") >= 1.0);
    assert!(g("portier_journal_batch_entries_sum") >= g("portier_journal_batch_entries_count"));
    // Read from the store at scrape time.
    assert_eq!(g("portier_window_requests_pending"), 1.0);
    assert_eq!(g("portier_extension_requests_pending"), 1.0);
    assert_eq!(g("portier_emergency_grants_unreviewed"), 1.0);
    assert_eq!(g("portier_reports_overdue"), 0.0);
    assert_eq!(g("portier_outbox_failed"), 0.0, "retried, not given up");
    assert_eq!(g("portier_notification_attempts_failed_total{sink=\"syslog\"}"), 0.0);
    assert_eq!(g("portier_store_writable"), 1.0);
    assert_eq!(g("portier_journal_queued"), 0.0);
    assert_eq!(g("portier_feed_mismatches_total"), 0.0);
    // The development PKI: a server certificate and a CA valid for a while yet.
    let gateway = g("portier_certificate_expiry_days{certificate=\"gateway\"}");
    let vendor_ca = g("portier_certificate_expiry_days{certificate=\"vendor_ca\"}");
    assert!(gateway > 30.0 && vendor_ca > 30.0, "{text}");
    assert_eq!(
        g(&format!(
            "portier_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    for line in [
        "# TYPE portier_tunnels_denied_total counter",
        "# TYPE portier_live_tunnels gauge",
        "# TYPE portier_admission_seconds histogram",
        "# TYPE portier_feed_mismatches_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    t.stop().await;
}
on_both_backends!(metrics_count_what_happened, super::scenario);

async fn read_to_end(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

/// While the database refuses connections, what it would tell is left out of
/// the answer (not reported as 0) and the answer does not wait for it; what the
/// node knows by itself stays. PostgreSQL only: connections are refused and the
/// open ones ended, then allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_series_are_left_out_while_the_database_is_away() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    let admin = std::env::var("PORTIER_TEST_PG_URL").unwrap();
    let name = db.url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let t = TestApp::spawn(db).await;
    let (m, text) = scrape(&t).await;
    for series in [
        "portier_window_requests_pending",
        "portier_outbox_pending",
        "portier_reports_overdue",
    ] {
        assert!(m.contains_key(series), "{series} missing:\n{text}");
    }

    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&pool)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (m, text) = scrape(&t).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    for series in [
        "portier_window_requests_pending",
        "portier_extension_requests_pending",
        "portier_emergency_grants_unreviewed",
        "portier_reports_overdue",
        "portier_outbox_pending",
        "portier_outbox_failed",
    ] {
        assert!(
            !m.contains_key(series),
            "{series} present while the database is away:\n{text}"
        );
    }
    for series in [
        "portier_live_tunnels",
        "portier_tunnels_opened_total",
        "portier_journal_queued",
    ] {
        assert!(m.contains_key(series), "{series} missing:\n{text}");
    }
    sqlx::query(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    t.stop().await;
}
