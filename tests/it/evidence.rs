//! Auditors' evidence: tamper-evident trail, JSONL export, flow matrix.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::*;
use crate::on_both_backends;

/// A node with a trail of a dozen events and an auditor token.
async fn trail(db: TestDb) -> (TestApp, String) {
    let t = TestApp::spawn(db).await;
    for i in 0..6 {
        let (st, _) = t
            .call(
                "POST",
                "/api/v1/vendors",
                Some(&t.admin),
                Some(json!({"name": format!("V{i}"), "networks": ["192.0.2.1"]})),
            )
            .await;
        assert_eq!(st, 201);
    }
    let auditor = t.token("auditor", "audit", None).await;
    let v = verify(&t, &auditor).await;
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["events"].as_i64().unwrap() >= 8);
    (t, auditor)
}

async fn verify(t: &TestApp, token: &str) -> Value {
    let (st, v) = t.call("GET", "/api/v1/audit/verify", Some(token), None).await;
    assert_eq!(st, 200, "{v}");
    v
}

async fn assert_broken_at(t: &TestApp, auditor: &str, seq: i64) {
    let v = verify(t, auditor).await;
    assert_eq!(
        (v["valid"].as_bool(), v["first_invalid_seq"].as_i64()),
        (Some(false), Some(seq)),
        "{v}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["audit", "verify", "--config"])
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the CLI must fail on a broken trail");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("\"first_invalid_seq\":{seq}")));
}

async fn tampering(make: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = TestDb> + Send>>) {
    // An untouched trail verifies, through the API and the CLI.
    let (t, auditor) = trail(make().await).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["audit", "verify", "--config"])
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (st, _) = t.call("GET", "/api/v1/audit/verify", Some(&t.admin), None).await;
    assert_eq!(st, 403);
    // Modify one field.
    raw_sql(&t, &["UPDATE audit_events SET object = 'forged' WHERE seq = 3"]).await;
    assert_broken_at(&t, &auditor, 3).await;
    t.stop().await;

    // Delete one.
    let (t, auditor) = trail(make().await).await;
    raw_sql(&t, &["DELETE FROM audit_events WHERE seq = 4"]).await;
    assert_broken_at(&t, &auditor, 4).await;
    t.stop().await;

    // Insert one in the middle (renumbering what follows).
    let (t, auditor) = trail(make().await).await;
    raw_sql(
        &t,
        &[
            "UPDATE audit_events SET seq = -seq - 1 WHERE seq >= 5",
            "UPDATE audit_events SET seq = -seq WHERE seq < 0",
            "INSERT INTO audit_events (seq, at, actor, action, object, outcome, details, prev_hash, hash)
             SELECT 5, at, 'intruder', 'vendor.created', 'x', 'success', '{}', hash, hash FROM audit_events WHERE seq = 4",
        ],
    )
    .await;
    assert_broken_at(&t, &auditor, 5).await;
    t.stop().await;

    // Reorder two.
    let (t, auditor) = trail(make().await).await;
    raw_sql(
        &t,
        &[
            "UPDATE audit_events SET seq = -2 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = -2",
        ],
    )
    .await;
    assert_broken_at(&t, &auditor, 2).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_sqlite() {
    tampering(|| Box::pin(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_postgres() {
    if TestDb::postgres().await.is_none() {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    }
    tampering(|| Box::pin(async { TestDb::postgres().await.unwrap() })).await;
}

/// An independent checker: recomputes every hash from a JSONL export with
/// nothing but sha2 and the documented encoding.
fn independent_check(jsonl: &str) -> Result<usize, String> {
    let mut prev = [0u8; 32];
    let mut n = 0;
    for (i, line) in jsonl.lines().enumerate() {
        let e: Value = serde_json::from_str(line).map_err(|e| format!("line {i}: {e}"))?;
        let at = DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let canonical = serde_json::to_string(&json!([
            e["seq"],
            at.to_rfc3339_opts(SecondsFormat::Micros, true),
            e["actor"],
            e["action"],
            e["object"],
            e["outcome"],
            e["details"],
        ]))
        .unwrap();
        if e["prev_hash"].as_str() != Some(hex::encode(prev).as_str()) {
            return Err(format!("seq {}: prev_hash does not match", e["seq"]));
        }
        let mut h = Sha256::new();
        h.update(prev);
        h.update(canonical.as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        if e["hash"].as_str() != Some(hex::encode(hash).as_str()) {
            return Err(format!("seq {}: hash does not match", e["seq"]));
        }
        prev = hash;
        n += 1;
    }
    Ok(n)
}

async fn concurrency_and_export(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let (sc, _vendor, security) = t.open_window_scene(device).await;
    // Many tunnels (allowed and denied) and API calls at once.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (tls, addr) = (sc.tls.clone(), t.app.gateway_addr);
        tasks.push(tokio::spawn(async move {
            let source = if i % 4 == 0 { "127.0.0.3" } else { "127.0.0.2" };
            let mut s = connect_from(source, addr, "mri-1", tls).await.unwrap();
            if i % 4 == 0 {
                assert!(read_all(&mut s).await.unwrap().starts_with("PORTIER DENIED"));
            } else {
                assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
            }
        }));
    }
    let mut api = Vec::new();
    for i in 0..16 {
        api.push(t.call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": format!("C{i}"), "networks": ["192.0.2.9"]})),
        ));
    }
    for r in futures_join(api).await {
        assert_eq!(r.0, 201);
    }
    for task in tasks {
        task.await.unwrap();
    }
    let auditor = t.token("auditor", "audit", None).await;
    eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&security), None)
            .await;
        l.as_array().filter(|a| a.len() == 12).cloned()
    })
    .await;
    let v = verify(&t, &auditor).await;
    assert_eq!(v["valid"], true, "{v}");
    let resp = t
        .http
        .get(t.url("/api/v1/audit?format=jsonl"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let jsonl = resp.text().await.unwrap();
    let seqs: Vec<i64> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no gap, no fork");
    assert_eq!(independent_check(&jsonl), Ok(seqs.len()));
    assert_eq!(seqs.len() as i64, v["events"].as_i64().unwrap());
    // The archive itself is tamper-evident.
    let forged = jsonl.replacen("\"vendor.created\"", "\"vendor.deleted\"", 1);
    assert!(independent_check(&forged).is_err());
    t.stop().await;
}
on_both_backends!(
    concurrent_appends_chain_without_gaps_and_export_verifies,
    super::concurrency_and_export
);

async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(fs.len());
    let pinned: Vec<_> = fs.into_iter().map(Box::pin).collect();
    // Poll them together so the calls really overlap.
    let mut pending: Vec<_> = pinned.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out.push(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_matrix_matches_the_configuration() {
    let t = TestApp::spawn_with(
        TestDb::sqlite().await,
        "[notify]\nsyslog = \"udp://127.0.0.1:514\"\n[[notify.webhooks]]\nurl = \"https://soc.example/hook\"\nsecret = \"0123456789abcdef\"\n",
        std::sync::Arc::new(portier::clock::SystemClock),
    )
    .await;
    let (_, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Acme Imaging", "networks": ["203.0.113.7", "2001:db8:ac::/48"]})),
        )
        .await;
    let (st, _) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(json!({"name": "mri-1", "address": "10.20.0.15:22", "protocol": "ssh", "vendor_ids": [v["id"]]})),
        )
        .await;
    assert_eq!(st, 201);
    let auditor = t.token("auditor", "audit", None).await;
    let get = |fmt: &'static str| {
        let req = t
            .http
            .get(t.url(&format!("/api/v1/flows?format={fmt}")))
            .bearer_auth(&auditor);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let (gw, api) = (t.app.gateway_addr, t.app.api_addr);
    let suites = "TLS13_AES_256_GCM_SHA384 TLS13_AES_128_GCM_SHA256 TLS13_CHACHA20_POLY1305_SHA256";
    let tls = format!("TLS 1.3; suites {suites}; client certificate required (vendor CA)");
    let db = t.db.url.clone();
    let expected_csv = format!(
        "id,description,internet_exposure,source,destination,protocol,encryption\n\
vendor-acme-imaging-1,Technicians of Acme Imaging reach the Portier gateway,yes: inbound from the vendor's declared network,2001:db8:ac::/48 (Acme Imaging),portier gateway {gw},TCP/{gp},{tls}\n\
vendor-acme-imaging-2,Technicians of Acme Imaging reach the Portier gateway,yes: inbound from the vendor's declared network,203.0.113.7/32 (Acme Imaging),portier gateway {gw},TCP/{gp},{tls}\n\
device-mri-1-acme-imaging,\"Tunnel of Acme Imaging to mri-1 (ssh), inside an approved window\",no: hospital internal network,portier gateway,10.20.0.15:22,TCP/22 (ssh),none added on this leg: ssh as the device speaks it\n\
portier-api,\"Operators, security and auditors use the admin API\",no: hospital administration network,hospital operators,portier api {api},TCP/{ap} (HTTPS),TLS 1.3; bearer tokens; suites {suites}\n\
portier-database,Portier state and audit trail (embedded SQLite),no,portier,{db},\"local file, no network flow\",filesystem (encrypt the volume)\n\
portier-webhook-1,Notifications to the hospital's tools,depends on the receiver,portier,https://soc.example/hook,HTTPS,TLS; Standard Webhooks signature (HMAC-SHA256 of id.timestamp.body)\n\
portier-syslog,Events to the SIEM (RFC 5424),no: hospital internal network,portier,udp://127.0.0.1:514,UDP (syslog),none\n",
        gp = gw.port(),
        ap = api.port(),
    );
    assert_eq!(get("csv").await, expected_csv);
    // The Markdown table holds exactly the same rows.
    let mut expected_md = String::new();
    for record in csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(expected_csv.as_bytes())
        .records()
    {
        let cells: Vec<String> = record.unwrap().iter().map(|c| c.replace('|', "\\|")).collect();
        expected_md.push_str(&format!("| {} |\n", cells.join(" | ")));
        if expected_md.lines().count() == 1 {
            expected_md.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        }
    }
    assert_eq!(get("md").await, expected_md);
    let json: Value = serde_json::from_str(&get("json").await).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 7);
    let vendor = t.token("vendor", "desk", v["id"].as_str()).await;
    let (st, _) = t.call("GET", "/api/v1/flows", Some(&vendor), None).await;
    assert_eq!(st, 403);
    // The command line prints the same matrix.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args(["flows", "--format", "csv", "--config"])
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    let cli = String::from_utf8_lossy(&out.stdout);
    assert!(cli.contains("device-mri-1-acme-imaging,"), "{cli}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_bundle_and_report_csv() {
    let start = Utc::now();
    let (t, clock) = clocked_app(TestDb::sqlite().await, start).await;
    let WorkedPeriod {
        scene: sc,
        vendor,
        security,
        window: w,
        ..
    } = worked_period(&t, "Acme, \"Imaging\"", start).await;
    clock.set(start + chrono::Duration::hours(2));
    let summary = "Flashed firmware, then \"QA\" scan,\nall green";
    let (st, r) = t
        .call(
            "POST",
            &format!("/api/v1/windows/{w}/report"),
            Some(&vendor),
            Some(json!({"summary": summary, "actions": "a, b", "outcome": "partial"})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let (st, e) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&security),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 10, "justification": "night call"})),
        )
        .await;
    assert_eq!(st, 201, "{e}");

    // Reports as CSV, with commas, quotes and newlines quoted (RFC 4180).
    let csv = t
        .http
        .get(t.url("/api/v1/reports?format=csv"))
        .bearer_auth(&security)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        portier::export::REPORT_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][5], summary);
    assert_eq!(&rows[0][4], "partial");
    assert_eq!(&rows[0][9], "1", "one session");

    // The bundle.
    let out = t.dir.path().join("bundle");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args([
            "export",
            "--since",
            &(start - chrono::Duration::days(1)).to_rfc3339(),
            "--until",
            &(start + chrono::Duration::days(1)).to_rfc3339(),
            "--out",
        ])
        .arg(&out)
        .arg("--config")
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for f in [
        "sessions.json",
        "sessions.csv",
        "windows.json",
        "emergency_grants.json",
        "reports.json",
        "reports.csv",
        "audit.jsonl",
        "SHA256SUMS",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The manifest checks with the standard tool, and catches a changed file.
    if std::process::Command::new("sha256sum")
        .arg("--version")
        .output()
        .is_ok()
    {
        let ok = std::process::Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&out)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let manifest = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for line in manifest.lines() {
        let (sum, name) = line.split_once("  ").unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(std::fs::read(out.join(name)).unwrap())),
            sum,
            "{name}"
        );
    }
    let grants: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("emergency_grants.json")).unwrap()).unwrap();
    assert_eq!(grants.as_array().unwrap().len(), 1);
    assert_eq!(grants[0]["reason"], "night call");
    let windows: Value = serde_json::from_str(&std::fs::read_to_string(out.join("windows.json")).unwrap()).unwrap();
    assert!(windows
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["approved_by"].is_string() && x["emergency"] == false));
    let audit = std::fs::read_to_string(out.join("audit.jsonl")).unwrap();
    assert!(independent_check(&audit).is_ok());
    // A second export into the same directory is refused rather than mixed.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_portier"))
        .args([
            "export",
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2030-01-01T00:00:00Z",
            "--out",
        ])
        .arg(&out)
        .arg("--config")
        .arg(t.dir.path().join("portier.toml"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    t.stop().await;
}
