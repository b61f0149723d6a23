//! Control of access under attack and outage (issue 8, defects 5 and 9):
//! emergency extensions stay capped and second-person approved; restrictive
//! actions (lockdown, revoke, terminate) take effect while the database is down.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Defect 5: a vendor stretched a 10-minute emergency grant to 11 hours and its
/// granter approved the extension.
async fn emergency_extension_is_capped_and_second_person(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", device).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let granter = t.token("security", "soc-1", None).await;
    let second = t.token("security", "soc-2", None).await;
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/emergency",
            Some(&granter),
            Some(json!({"vendor_id": sc.vendor_id, "device_ids": [sc.device_id], "duration_minutes": 10, "justification": "MRI down"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let wid = w["id"].as_str().unwrap().to_owned();
    let starts = time(&w["starts_at"]);
    let ends = time(&w["ends_at"]);
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"urgent").await, b"urgent");

    // The attack: 11 hours (under the 12 h window cap, far over the 240 min emergency cap).
    let extend = |to: DateTime<Utc>| json!({"ends_at": to, "reason": "more work"});
    let path = format!("/api/v1/windows/{wid}/extend");
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(ends + chrono::Duration::hours(11))),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("240") && msg.contains("policy.max_emergency_minutes"),
        "{msg}"
    );
    // Exactly at the cap is allowed to be asked for.
    let capped = starts + chrono::Duration::minutes(240);
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(capped + chrono::Duration::seconds(1))),
        )
        .await;
    assert_eq!(st, 400, "one second over the cap: {e}");
    let (st, e) = t.call("POST", &path, Some(&vendor), Some(extend(capped))).await;
    assert_eq!(st, 200, "{e}");

    // Neither its granter nor an admin may approve it; the vendor neither.
    let approve = format!("/api/v1/windows/{wid}/approve");
    for token in [&granter, &t.admin, &vendor] {
        let (st, e) = t.call("POST", &approve, Some(token), None).await;
        assert_eq!(st, 403, "{e}");
    }
    let (st, w) = t
        .call("GET", &format!("/api/v1/windows/{wid}"), Some(&t.admin), None)
        .await;
    assert_eq!((st, time(&w["ends_at"])), (200, ends), "nothing moved yet: {w}");

    // A second security account approves: the live tunnel's deadline moves, capped.
    let (st, w) = t.call("POST", &approve, Some(&second), None).await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(time(&w["ends_at"]), capped);
    assert_eq!(w["emergency"], json!(true));
    let live = t.app.registry.list();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].deadline, capped);
    assert_eq!(echo_roundtrip(&mut tls, b"still").await, b"still");

    // Already at the cap: nothing more can be asked for.
    let (st, e) = t
        .call(
            "POST",
            &path,
            Some(&vendor),
            Some(extend(capped + chrono::Duration::minutes(1))),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    t.stop().await;
}
on_both_backends!(
    emergency_extension_capped,
    super::emergency_extension_is_capped_and_second_person
);
