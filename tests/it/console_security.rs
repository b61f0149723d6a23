//! The security home of the console (`/console/security`): deciding requests,
//! cutting live tunnels, emergency grants and their review, the lockdown
//! switch, through a signed-in console client (cookies and CSRF by hand).

use chrono::Utc;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::common::*;
use crate::console_support::{snippet, ConsoleClient};
use crate::on_both_backends;

/// Requests a window for the scene's device from now for an hour; returns its id.
async fn request_window(t: &TestApp, token: &str, vendor_id: Option<&str>, device_id: &str) -> String {
    let now = Utc::now();
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(token),
            Some(json!({"vendor_id": vendor_id, "device_ids": [device_id], "starts_at": now + chrono::Duration::minutes(5), "ends_at": now + chrono::Duration::hours(1), "reason": "firmware update"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    w["id"].as_str().unwrap().to_owned()
}

async fn user_id(t: &TestApp, token: &str) -> String {
    let (st, me) = t.call("GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(st, 200, "{me}");
    me["id"].as_str().unwrap().to_owned()
}

async fn window(t: &TestApp, id: &str) -> Value {
    let (st, w) = t
        .call("GET", &format!("/api/v1/windows/{id}"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200, "{w}");
    w
}

/// The row of window `id` in a page or fragment.
fn window_row<'a>(body: &'a str, id: &str) -> &'a str {
    snippet(body, &format!(r#"<tr data-window="{id}""#), "</tr>").unwrap_or_else(|| panic!("no row for {id} in {body}"))
}

async fn decisions(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let soc = t.token("security", "soc", None).await;
    let by_vendor = request_window(&t, &vendor, None, &sc.device_id).await;
    let by_admin = request_window(&t, &t.admin, Some(&sc.vendor_id), &sc.device_id).await;

    // A vendor account has no business here, nor in its live sections.
    let mut desk = ConsoleClient::sign_in(&t, &vendor).await;
    assert_eq!(desk.get("/console/security").await.0, 403);
    assert_eq!(desk.get("/console/security/live/pending").await.0, 403);

    // The admin asked for one of them: no approve form there (separation of
    // duties), the other can be approved; rejecting stays possible.
    let mut admin = ConsoleClient::sign_in(&t, &t.admin).await;
    let (st, page) = admin.get("/console/security").await;
    assert_eq!(st, 200, "{page}");
    let own = window_row(&page, &by_admin);
    assert!(!own.contains(r#"class="approve"#), "{own}");
    assert!(own.contains(r#"class="reject"#), "{own}");
    assert!(window_row(&page, &by_vendor).contains(r#"class="approve"#));
    // Posting it anyway is refused by the use case.
    let (st, _) = admin
        .post(&format!("/console/security/windows/{by_admin}/approve"), &[])
        .await;
    assert_eq!(st, 403);
    assert_eq!(window(&t, &by_admin).await["state"], "requested");

    // Security approves the vendor's request from the console.
    let mut c = ConsoleClient::sign_in(&t, &soc).await;
    assert_eq!(c.path, "/console/security");
    let (st, page) = c.get("/console/security").await;
    assert_eq!(st, 200);
    assert!(page.contains(r#"<section id="pending""#));
    assert!(c.csrf().is_some());
    assert!(window_row(&page, &by_vendor).contains(r#"class="approve"#));
    let (st, page) = c
        .post(&format!("/console/security/windows/{by_vendor}/approve"), &[])
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("Approved."), "{page}");
    assert!(!page.contains(&format!(r#"data-window="{by_vendor}""#)));
    assert_eq!(window(&t, &by_vendor).await["state"], "approved");
    // In the audit trail, as that account.
    let soc_id = user_id(&t, &soc).await;
    let (st, trail) = t.call("GET", "/api/v1/audit", Some(&soc), None).await;
    assert_eq!(st, 200);
    let approved = trail
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "window.approved" && r["object"] == by_vendor.as_str())
        .unwrap_or_else(|| panic!("no window.approved for {by_vendor}: {trail}"));
    assert_eq!(approved["actor"], soc_id.as_str());

    // Rejecting needs a reason: the error is next to the field of that row.
    let (st, page) = c
        .post(
            &format!("/console/security/windows/{by_admin}/reject"),
            &[("reason", "  ")],
        )
        .await;
    assert_eq!(st, 400);
    let row = window_row(&page, &by_admin);
    assert!(row.contains(&format!(r#"id="reject-{by_admin}-error""#)), "{row}");
    assert!(row.contains("This field is required."), "{row}");
    assert_eq!(window(&t, &by_admin).await["state"], "requested");
    let (st, page) = c
        .post(
            &format!("/console/security/windows/{by_admin}/reject"),
            &[("reason", "not planned with the ward")],
        )
        .await;
    assert_eq!(st, 200);
    assert!(page.contains("Rejected."));
    let w = window(&t, &by_admin).await;
    assert_eq!(w["state"], "rejected");
    assert_eq!(w["decision_reason"], "not planned with the ward");

    // The live fragment: the section's content, without the page shell.
    let (st, fragment) = c.get("/console/security/live/pending").await;
    assert_eq!(st, 200);
    assert!(
        !fragment.contains("<html") && !fragment.contains("<!DOCTYPE"),
        "{fragment}"
    );
    assert!(fragment.contains("Nothing to show."), "{fragment}");
    // In French when the browser asks for it.
    let (_, fr) = c
        .get_with("/console/security", &[("accept-language", "fr-FR,fr;q=0.9")])
        .await;
    assert!(fr.contains("Demandes à trancher"), "{fr}");
    // Without its CSRF token, a form is refused.
    let w3 = request_window(&t, &vendor, None, &sc.device_id).await;
    let (st, _) = c
        .post_raw(&format!("/console/security/windows/{w3}/approve"), &[])
        .await;
    assert_eq!(st, 403);
    assert_eq!(window(&t, &w3).await["state"], "requested");
    t.stop().await;
}
on_both_backends!(console_security_decides_requests, super::decisions);

/// The live-tunnel fragment once it lists a tunnel.
async fn tunnels_fragment(c: &mut ConsoleClient) -> String {
    for _ in 0..100 {
        let (st, body) = c.get("/console/security/live/tunnels").await;
        assert_eq!(st, 200, "{body}");
        if body.contains("data-session=") {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no live tunnel listed within 5 s");
}

async fn terminate(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (sc, _vendor, soc) = t.open_window_scene(echo_device().await).await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"ping").await, b"ping");

    let mut c = ConsoleClient::sign_in(&t, &soc).await;
    let fragment = tunnels_fragment(&mut c).await;
    assert!(
        !fragment.contains("<html") && !fragment.contains("<!DOCTYPE"),
        "{fragment}"
    );
    for column in ["Acme", "mri-1", "127.0.0.2", "tech-Acme"] {
        assert!(fragment.contains(column), "{column} missing from {fragment}");
    }
    let at = fragment.find(r#"data-session=""#).unwrap() + r#"data-session=""#.len();
    let sid = fragment[at..at + fragment[at..].find('"').unwrap()].to_owned();
    let (_, page) = c.get("/console/security").await;
    let row = snippet(&page, &format!(r#"<tr data-session="{sid}""#), "</tr>").unwrap();
    assert!(row.contains(r#"class="terminate"#), "{row}");

    // Without a reason: the error next to the field, the tunnel still up.
    let (st, page) = c
        .post(
            &format!("/console/security/sessions/{sid}/terminate"),
            &[("reason", "")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(page.contains(&format!(r#"id="terminate-{sid}-error""#)), "{page}");
    assert_eq!(echo_roundtrip(&mut tls, b"still").await, b"still");

    let before = Utc::now();
    let (st, page) = c
        .post(
            &format!("/console/security/sessions/{sid}/terminate"),
            &[("reason", "unexpected traffic")],
        )
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("The tunnel is cut."), "{page}");
    assert!(wait_closed(&mut tls).await - before < chrono::Duration::seconds(1));
    let _ = tls.shutdown().await;
    let ended = eventually(|| async {
        let (_, s) = t
            .call("GET", &format!("/api/v1/sessions/{sid}"), Some(&soc), None)
            .await;
        (!s["end_reason"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(ended["end_reason"], "terminated");
    let (_, fragment) = c.get("/console/security/live/tunnels").await;
    assert!(!fragment.contains(&sid), "{fragment}");

    // A refused connection shows among the recent denials, with its reason.
    let mut denied = connect_from("127.0.0.3", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert!(read_all(&mut denied)
        .await
        .unwrap()
        .starts_with("PORTIER DENIED source_ip_not_declared "));
    let (_, page) = c.get("/console/security").await;
    let denials = snippet(&page, r#"<section id="denials""#, "</section>").unwrap();
    assert!(denials.contains("source_ip_not_declared"), "{denials}");
    assert!(denials.contains("127.0.0.3"), "{denials}");
    let (st, fragment) = c.get("/console/security/live/denials").await;
    assert_eq!(st, 200);
    assert!(fragment.contains("source_ip_not_declared") && !fragment.contains("<html"));
    t.stop().await;
}
on_both_backends!(console_security_terminates_a_tunnel, super::terminate);

async fn lockdown(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (sc, _vendor, soc) = t.open_window_scene(echo_device().await).await;
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"ping").await, b"ping");
    let mut c = ConsoleClient::sign_in(&t, &soc).await;
    let (_, page) = c.get("/console/security").await;
    assert!(page.contains(r#"id="lockdown-on""#));
    assert!(!page.contains(r#"id="lockdown-banner""#));

    // Without the confirmation: the error next to the checkbox, nothing locked.
    let (st, page) = c
        .post("/console/security/lockdown/on", &[("reason", "ransomware on the ward")])
        .await;
    assert_eq!(st, 400);
    let field = snippet(&page, r#"id="f-confirm""#, "</div>").unwrap();
    assert!(field.contains(r#"id="f-confirm-error""#), "{field}");
    assert!(field.contains("Tick the box to confirm."), "{field}");
    let (_, l) = t.call("GET", "/api/v1/lockdown", Some(&soc), None).await;
    assert_eq!(l["active"], false);
    assert_eq!(echo_roundtrip(&mut tls, b"still").await, b"still");

    let before = Utc::now();
    let (st, page) = c
        .post(
            "/console/security/lockdown/on",
            &[("reason", "ransomware on the ward"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("Locked down: 1 tunnel cut on this node"), "{page}");
    assert!(page.contains(r#"id="lockdown-banner""#));
    assert!(page.contains(r#"id="lockdown-off""#));
    assert!(wait_closed(&mut tls).await - before < chrono::Duration::seconds(1));
    let (_, l) = t.call("GET", "/api/v1/lockdown", Some(&soc), None).await;
    assert_eq!(l["active"], true);
    assert_eq!(l["persisted"], true);
    assert_eq!(l["set_by"], user_id(&t, &soc).await.as_str());

    // Lifting needs its confirmation too.
    let (st, _) = c
        .post("/console/security/lockdown/off", &[("reason", "contained")])
        .await;
    assert_eq!(st, 400);
    let (st, page) = c
        .post(
            "/console/security/lockdown/off",
            &[("reason", "contained"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("The lockdown is lifted."));
    assert!(!page.contains(r#"id="lockdown-banner""#));
    let (_, l) = t.call("GET", "/api/v1/lockdown", Some(&soc), None).await;
    assert_eq!(l["active"], false);
    t.stop().await;
}
on_both_backends!(console_security_lockdown_switch, super::lockdown);

async fn emergency(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", echo_device().await).await;
    let soc = t.token("security", "soc", None).await;
    let soc2 = t.token("security", "soc2", None).await;
    let mut c = ConsoleClient::sign_in(&t, &soc).await;
    let (_, page) = c.get("/console/security").await;
    assert!(page.contains(r#"id="emergency""#));
    assert!(page.contains(&format!(r#"name="device_ids" value="{}""#, sc.device_id)));

    let grant = |minutes: &'static str, networks: &'static str| {
        let vendor = sc.vendor_id.clone();
        let device = sc.device_id.clone();
        move || {
            vec![
                ("vendor_id".to_owned(), vendor.clone()),
                ("device_ids".to_owned(), device.clone()),
                ("minutes".to_owned(), minutes.to_owned()),
                ("justification".to_owned(), "MRI down, patient waiting".to_owned()),
                ("extra_networks".to_owned(), networks.to_owned()),
            ]
        }
    };
    let emergencies = || async {
        let (_, l) = t.call("GET", "/api/v1/windows?emergency=true", Some(&soc), None).await;
        l.as_array().unwrap().clone()
    };
    // Refused before the use case, next to their fields, nothing granted.
    for (minutes, networks, field) in [
        ("0", "", "minutes"),
        ("241", "", "minutes"),
        ("soon", "", "minutes"),
        ("30", "0.0.0.0/0", "extra_networks"),
        ("30", "not-a-net", "extra_networks"),
    ] {
        let fields = grant(minutes, networks)();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (st, page) = c.post("/console/security/emergency", &pairs).await;
        assert_eq!(st, 400, "{minutes} {networks}");
        assert!(
            page.contains(&format!(r#"id="f-{field}-error""#)),
            "{minutes} {networks}: {page}"
        );
    }
    let (st, page) = c
        .post(
            "/console/security/emergency",
            &[("minutes", "30"), ("justification", "x")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(page.contains(r#"id="f-vendor_id-error""#) && page.contains(r#"id="f-device_ids-error""#));
    assert!(emergencies().await.is_empty());

    let fields = grant("30", "198.51.100.7/32")();
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (st, page) = c.post("/console/security/emergency", &pairs).await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("Emergency access granted."), "{page}");
    let granted = emergencies().await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    let id = granted[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(granted[0]["extra_networks"], json!(["198.51.100.7/32"]));
    assert_eq!(granted[0]["approved_by"], user_id(&t, &soc).await.as_str());

    // The granter is not offered the review; a second security account is.
    let row = window_row(&page, &id).to_owned();
    assert!(!row.contains(r#"class="review"#), "{row}");
    let mut c2 = ConsoleClient::sign_in(&t, &soc2).await;
    let (_, page) = c2.get("/console/security").await;
    assert!(window_row(&page, &id).contains(r#"class="review"#));
    let (st, page) = c2
        .post(
            &format!("/console/security/windows/{id}/review"),
            &[("verdict", "justified"), ("comment", "")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(window_row(&page, &id).contains(&format!(r#"id="comment-{id}-error""#)));
    let (st, page) = c2
        .post(
            &format!("/console/security/windows/{id}/review"),
            &[
                ("verdict", "justified"),
                ("comment", "call logged by the ward at 03:10"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("Review recorded."));
    let w = window(&t, &id).await;
    assert_eq!(w["review_verdict"], "justified");
    assert_eq!(w["reviewed_by"], user_id(&t, &soc2).await.as_str());
    let (_, fragment) = c2.get("/console/security/live/reviews").await;
    assert!(!fragment.contains(&id));
    t.stop().await;
}
on_both_backends!(console_security_emergency_grant_and_review, super::emergency);
