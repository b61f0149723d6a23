//! Each role's main journey through the console in a real browser (headless
//! Chromium), against a node with a real gateway and a real technician tunnel:
//! vendor requests a window → security approves → the tunnel appears in the
//! live list by itself → security terminates it → the vendor files the report →
//! the auditor sees the session and the report and verifies the audit trail;
//! an emergency grant reviewed by a second security account; lockdown on and
//! off from the console cutting a live tunnel. Screenshots of the main pages go
//! to `target/console-screenshots/<lang>/`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Browser, DESKTOP, PHONE, VIEWPORTS};
use crate::common::*;

/// Signs in with `token` and waits for the role's home.
async fn sign_in(b: &Browser, t: &TestApp, token: &str, home: &str) {
    b.goto(&t.url("/console/sign-in")).await;
    b.fill("input[name=token]", token).await;
    b.submit("form#sign-in").await;
    b.wait_url(home).await;
}

/// Sets an input's value as a person picking it would (datetime-local inputs
/// are typed differently in every locale; the value format is fixed).
async fn set_value(b: &Browser, css: &str, value: &str) {
    b.wait_for(css).await;
    b.execute(
        "const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input', {bubbles: true}));",
        vec![Value::from(css), Value::from(value)],
    )
    .await;
}

fn paris(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Paris)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn api(t: &TestApp, path: &str) -> Value {
    let (st, body) = t.call("GET", path, Some(&t.admin_reader().await), None).await;
    assert_eq!(st, 200, "{path}: {body}");
    body
}

impl TestApp {
    /// An auditor token (reads windows, sessions, reports and the trail).
    async fn admin_reader(&self) -> String {
        self.token("auditor", &format!("reader-{}", uuid::Uuid::new_v4()), None)
            .await
    }
}

async fn account_id(t: &TestApp, name: &str) -> String {
    let (_, users) = t.call("GET", "/api/v1/users", Some(&t.admin), None).await;
    users.as_array().unwrap().iter().find(|u| u["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_approve_tunnel_terminate_report_audit() {
    let device = echo_device().await;
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "acme-desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc-alice", None).await;
    let auditor = t.token("auditor", "audit-carol", None).await;
    let Some((v, s)) = Browser::open_two(("fr", DESKTOP.0, DESKTOP.1), ("en", DESKTOP.0, DESKTOP.1)).await else {
        return;
    };

    // The vendor requests a window, in French, in Paris time.
    sign_in(&v, &t, &vendor, "/console/vendor").await;
    v.click("a#new-window").await;
    v.wait_url("/console/vendor/windows/new").await;
    v.click(&format!("input[name=device_ids][value='{}']", sc.device_id))
        .await;
    let now = Utc::now();
    set_value(&v, "input[name=starts_at]", &paris(now)).await;
    set_value(&v, "input[name=ends_at]", &paris(now + chrono::Duration::hours(2))).await;
    v.fill("input[name=reason]", "Remplacement de la sonde de température")
        .await;
    v.screenshot("vendor-request-form").await;
    v.submit("form#request-window").await;
    let window_id = eventually(|| async {
        let list = api(&t, "/api/v1/windows?state=requested").await;
        list.as_array()
            .unwrap()
            .first()
            .map(|w| w["id"].as_str().unwrap().to_owned())
    })
    .await;
    // The new window's page, then the list with it.
    v.wait_url(&format!("/console/vendor/windows/{window_id}")).await;
    v.goto(&t.url("/console/vendor")).await;
    v.wait_for(&format!(
        "#windows tr[data-window='{window_id}'] td.state[data-state=requested]"
    ))
    .await;

    // Security approves it from the home page (no reload needed to see it).
    sign_in(&s, &t, &security, "/console/security").await;
    let row = format!("#pending tr[data-window='{window_id}']");
    s.wait_for(&row).await;
    s.screenshot("security-home").await;
    s.click(&format!("{row} form.approve button[type=submit]")).await;
    s.wait_gone(&row).await;
    let w = api(&t, &format!("/api/v1/windows/{window_id}")).await;
    assert_eq!(w["state"], "active", "{w}");
    assert_eq!(w["approved_by"], account_id(&t, "soc-alice").await.as_str());

    // A real technician tunnel appears in the live list by itself.
    let mut tunnel = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"ping").await, b"ping");
    let live = "#tunnels tr[data-session]";
    s.wait_for(live).await;
    let text = s.text(live).await;
    assert!(text.contains("mri-1") && text.contains("127.0.0.2"), "{text}");
    s.screenshot("security-live-tunnel").await;

    // Security terminates it: the tunnel closes.
    s.fill(&format!("{live} form.terminate input[name=reason]"), "end of test")
        .await;
    s.click(&format!("{live} form.terminate button[type=submit]")).await;
    wait_closed(&mut tunnel).await;
    s.wait_gone(live).await;
    let sessions = api(&t, "/api/v1/sessions").await;
    assert_eq!(sessions[0]["end_reason"], "terminated", "{sessions}");

    // The vendor files the report, with the observed session beside the form.
    v.goto(&t.url(&format!("/console/vendor/windows/{window_id}"))).await;
    v.wait_text("#sessions", "127.0.0.2").await;
    v.fill("form#report [name=summary]", "Sonde remplacée, étalonnage vérifié.")
        .await;
    v.fill(
        "form#report [name=actions]",
        "Remplacement de la sonde ; test de fonctionnement.",
    )
    .await;
    v.select("form#report [name=outcome]", "success").await;
    v.screenshot("vendor-report-form").await;
    v.submit("form#report").await;
    let report = eventually(|| async {
        let (st, r) = t
            .call(
                "GET",
                &format!("/api/v1/windows/{window_id}/report"),
                Some(&vendor),
                None,
            )
            .await;
        // 200 with `report: null` until the vendor's form has been taken.
        (st == 200 && !r["report"].is_null()).then_some(r)
    })
    .await;
    assert_eq!(report["report"]["outcome"], "success", "{report}");
    v.close().await;
    s.close().await;

    // The auditor sees the session and the report, and verifies the trail.
    let Some(a) = Browser::desktop("en").await else { return };
    sign_in(&a, &t, &auditor, "/console/audit").await;
    a.screenshot("audit-timeline").await;
    a.goto(&t.url("/console/audit/sessions")).await;
    a.wait_text("main", "127.0.0.2").await;
    a.goto(&t.url("/console/audit/reports")).await;
    a.wait_text("main", "Sonde remplacée").await;
    a.goto(&t.url("/console/audit/trail")).await;
    a.submit("form#verify").await;
    a.wait_for("#verify-result").await;
    assert_eq!(a.attr("#verify-result", "data-result").await.as_deref(), Some("ok"));
    a.close().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_review_and_lockdown_cutting_a_tunnel() {
    let device = echo_device().await;
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let alice = t.token("security", "soc-alice", None).await;
    let bob = t.token("security", "soc-bob", None).await;
    let Some((a, b)) = Browser::open_two(("en", DESKTOP.0, DESKTOP.1), ("fr", PHONE.0, PHONE.1)).await else {
        return;
    };

    // Alice grants an emergency.
    sign_in(&a, &t, &alice, "/console/security").await;
    a.select("form#emergency select[name=vendor_id]", &sc.vendor_id).await;
    a.click(&format!(
        "form#emergency input[name=device_ids][value='{}']",
        sc.device_id
    ))
    .await;
    a.fill("form#emergency input[name=minutes]", "30").await;
    a.fill(
        "form#emergency input[name=justification]",
        "Ventilator alarm, vendor on the phone",
    )
    .await;
    a.submit("form#emergency").await;
    let grant = eventually(|| async {
        let list = api(&t, "/api/v1/windows?emergency=true").await;
        list.as_array()
            .unwrap()
            .first()
            .map(|w| w["id"].as_str().unwrap().to_owned())
    })
    .await;
    let review_row = format!("#reviews tr[data-window='{grant}']");
    a.wait_for(&review_row).await;
    assert!(
        !a.exists(&format!("{review_row} form.review")).await,
        "the granter is not offered the review"
    );

    // A tunnel under the grant; lockdown from the console cuts it.
    let mut tunnel = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tunnel, b"ping").await, b"ping");
    a.wait_for("#tunnels tr[data-session]").await;
    a.fill("form#lockdown-on input[name=reason]", "Suspected compromise")
        .await;
    a.click("form#lockdown-on input[name=confirm]").await;
    a.submit("form#lockdown-on").await;
    wait_closed(&mut tunnel).await;
    a.wait_for("#lockdown-banner").await;
    a.screenshot("security-lockdown").await;
    let (_, lock) = t.call("GET", "/api/v1/lockdown", Some(&alice), None).await;
    assert_eq!(lock["active"], true, "{lock}");
    // While locked down, no tunnel.
    let refused = async {
        let mut c = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
            .await
            .ok()?;
        Some(echo_roundtrip(&mut c, b"x").await)
    };
    assert_ne!(
        refused.await.as_deref(),
        Some(&b"x"[..]),
        "a tunnel opened during lockdown"
    );

    // Bob, on his phone in French, sees the banner, reviews the grant.
    sign_in(&b, &t, &bob, "/console/security").await;
    b.wait_for("#lockdown-banner").await;
    b.select(&format!("{review_row} form.review select[name=verdict]"), "justified")
        .await;
    b.fill(
        &format!("{review_row} form.review textarea[name=comment]"),
        "Appel confirmé avec le fournisseur",
    )
    .await;
    b.submit(&format!("{review_row} form.review")).await;
    b.wait_gone(&review_row).await;
    let w = api(&t, &format!("/api/v1/windows/{grant}")).await;
    assert_eq!(w["review_verdict"], "justified", "{w}");
    assert_eq!(w["reviewed_by"], account_id(&t, "soc-bob").await.as_str());
    b.screenshot("security-home-after-review").await;

    // Lockdown off from the console: tunnels are admitted again.
    a.goto(&t.url("/console/security")).await;
    a.fill("form#lockdown-off input[name=reason]", "All clear").await;
    a.click("form#lockdown-off input[name=confirm]").await;
    a.submit("form#lockdown-off").await;
    a.wait_gone("#lockdown-banner").await;
    let mut again = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut again, b"pong").await, b"pong");
    a.close().await;
    b.close().await;
    t.stop().await;
}

/// Every main page of every role, in both languages, at desktop and phone width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_main_pages() {
    let device = echo_device().await;
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let (sc, vendor, security) = t.open_window_scene(device).await;
    let auditor = t.token("auditor", "audit-carol", None).await;
    let window = api(&t, "/api/v1/windows").await[0]["id"].as_str().unwrap().to_owned();
    let pages: [(&str, &str, Vec<String>); 4] = [
        (
            "vendor",
            vendor.as_str(),
            vec![
                "/console/vendor".into(),
                "/console/vendor/windows/new".into(),
                format!("/console/vendor/windows/{window}"),
            ],
        ),
        ("security", security.as_str(), vec!["/console/security".into()]),
        (
            "auditor",
            auditor.as_str(),
            vec![
                "/console/audit".into(),
                "/console/audit/sessions".into(),
                "/console/audit/reports".into(),
                "/console/audit/trail".into(),
                "/console/audit/flows".into(),
                "/console/audit/dossier".into(),
            ],
        ),
        (
            "admin",
            t.admin.as_str(),
            vec![
                "/console/admin".into(),
                "/console/admin/devices".into(),
                "/console/admin/accounts".into(),
            ],
        ),
    ];
    let _ = sc;
    for lang in ["fr", "en"] {
        for (width, height) in VIEWPORTS {
            let Some(b) = Browser::open(lang, width, height).await else {
                return;
            };
            for (role, token, paths) in &pages {
                let home = paths[0].as_str();
                sign_in(&b, &t, token, home).await;
                for path in paths {
                    b.goto(&t.url(path)).await;
                    b.wait_for("main h1").await;
                    assert_eq!(b.attr("html", "lang").await.as_deref(), Some(lang));
                    let name = format!(
                        "{role}{}",
                        path.trim_start_matches("/console")
                            .replace(&window, "id")
                            .replace('/', "-")
                    );
                    b.screenshot(&name).await;
                }
                b.click("button[name=everywhere][value=false]").await;
                b.wait_url("/console/sign-in").await;
            }
            b.close().await;
        }
    }
    t.stop().await;
}

/// The security dossier from the console: the tab lists the documents, a
/// document opens, and the architecture page shows its schema — the image
/// loads from inside the sandboxed page with the console session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dossier_opens_with_its_schema() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let auditor = t.token("auditor", "dossier-carol", None).await;
    let Some(b) = Browser::desktop("fr").await else { return };
    sign_in(&b, &t, &auditor, "/console/audit").await;
    b.goto(&t.url("/console/audit/dossier")).await;
    b.wait_for("tr[data-document=architecture]").await;
    b.click("tr[data-document=rights] span[lang=fr] a[href$='rights.html']")
        .await;
    b.wait_text("h1", "Droits").await;
    let dot = std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if dot {
        b.goto(&t.url("/console/audit/dossier/fr/architecture.html")).await;
        let img = b.wait_for("img").await;
        let mut width = 0;
        for _ in 0..50 {
            // Chromium answers the property as a number, which fantoccini
            // reports as "not W3C" with the value.
            width = match img.prop("naturalWidth").await {
                Ok(w) => w.and_then(|w| w.parse().ok()).unwrap_or(0),
                Err(fantoccini::error::CmdError::NotW3C(v)) => v.as_u64().unwrap_or(0),
                Err(e) => panic!("naturalWidth: {e}"),
            };
            if width > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(width > 0, "the schema did not load in the dossier page");
    } else {
        eprintln!("Graphviz missing: the schema's image is not checked");
    }
    b.close().await;
    t.stop().await;
}
