//! The vendor's console pages over real HTTPS: requesting a window with local
//! times, errors next to their fields (in the account's language), another
//! vendor's window, the report beside the observed sessions, overdue reports,
//! and the other roles kept out.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use portier::clock::{Clock, ManualClock, SharedClock, SystemClock};
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// A signed-in browser, reduced to what these tests need: the session cookie
/// and the CSRF token of its forms. Redirects are not followed, so the tests see them.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

/// What a page answered.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

fn no_redirect_client(t: &TestApp) -> reqwest::Client {
    let ca = std::fs::read(t.server_ca()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .resolve("localhost", t.app.api_addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The value of `name` among a response's `Set-Cookie` headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The CSRF token of the first form of a page.
fn scrape_csrf(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The error shown next to `field` (`p#f-<field>-error`), if any.
fn field_error(html: &str, field: &str) -> Option<String> {
    let marker = format!("id=\"f-{field}-error\">");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split("</p>").next().unwrap().to_owned())
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

impl Browser {
    async fn sign_in(t: &TestApp, token: &str) -> Self {
        let http = no_redirect_client(t);
        let base = t.url("");
        let resp = http.get(format!("{base}/console/sign-in")).send().await.unwrap();
        let pre = set_cookie(&resp, "__Host-portier-pre").expect("pre-sign-in cookie");
        let csrf = scrape_csrf(&resp.text().await.unwrap());
        let resp = http
            .post(format!("{base}/console/sign-in"))
            .header("cookie", format!("__Host-portier-pre={pre}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("_csrf", &csrf), ("token", token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303, "sign-in refused");
        let cookie = set_cookie(&resp, "__Host-portier").expect("session cookie");
        let mut b = Self {
            http,
            base,
            cookie,
            csrf: String::new(),
        };
        // Every form of the session carries the same token; the shell has forms.
        // (Until the other areas have pages, their homes may have none: the
        // token is then derived as the console does, from the cookie.)
        let home = b.get("/console/").await;
        let to = home.location.expect("the console's home redirects");
        let page = b.get(&to).await;
        b.csrf = if page.body.contains("name=\"_csrf\"") {
            scrape_csrf(&page.body)
        } else {
            portier::token::hash(&format!("portier-console-csrf:{}", b.cookie))
        };
        b
    }

    async fn answer(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("__Host-portier={}", self.cookie))
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
    }

    /// Posts a form with this session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("__Host-portier={}", self.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&all))
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
    }
}

/// The window id of a redirect to its page (`/console/vendor/windows/<id>?…`).
fn window_of(location: &str) -> String {
    let rest = location.strip_prefix("/console/vendor/windows/").expect(location);
    rest.split(['?', '#']).next().unwrap().to_owned()
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn windows_of(t: &TestApp, token: &str) -> Vec<Value> {
    let (st, list) = t.call("GET", "/api/v1/windows", Some(token), None).await;
    assert_eq!(st, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Requests through the form with local times, in winter and in summer; the
/// DST gap refused in French; a missing reason refused next to its field.
async fn request_with_local_times(db: TestDb) {
    let start = Utc.with_ymd_and_hms(2027, 3, 20, 12, 0, 0).unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(start));
    let t = TestApp::spawn_with(db, "[console]\ntimezone = \"Europe/Paris\"\n", clock).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", "127.0.0.1:9".parse().unwrap()).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let b = Browser::sign_in(&t, &vendor).await;

    let home = b.get("/console/vendor").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<section id=\"devices\""), "{}", home.body);
    assert!(home.body.contains("mri-1"));
    assert!(home
        .body
        .contains("id=\"new-window\" href=\"/console/vendor/windows/new\""));
    let form = b.get("/console/vendor/windows/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"request-window\""), "{}", form.body);
    assert!(form
        .body
        .contains(&format!("name=\"device_ids\" value=\"{}\"", sc.device_id)));

    // Winter (UTC+1) and summer (UTC+2), either side of the change on 28 March 2027.
    for (local_start, local_end, utc_start, utc_end) in [
        (
            "2027-03-25T10:00",
            "2027-03-25T12:30",
            "2027-03-25T09:00:00Z",
            "2027-03-25T11:30:00Z",
        ),
        (
            "2027-04-02T10:00",
            "2027-04-02T12:30",
            "2027-04-02T08:00:00Z",
            "2027-04-02T10:30:00Z",
        ),
    ] {
        let done = b
            .post(
                "/console/vendor/windows/new",
                &[
                    ("device_ids", &sc.device_id),
                    ("starts_at", local_start),
                    ("ends_at", local_end),
                    ("reason", "replace the gradient coil"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        let id = window_of(done.location.as_deref().unwrap());
        let (st, w) = t
            .call("GET", &format!("/api/v1/windows/{id}"), Some(&vendor), None)
            .await;
        assert_eq!(st, 200, "{w}");
        assert_eq!(instant(&w["starts_at"]), utc_start.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(instant(&w["ends_at"]), utc_end.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(w["state"], "requested");
        assert_eq!(w["device_ids"], json!([sc.device_id]));
        // Listed with its raw state, linked to its page; its page shows local time and UTC.
        let home = b.get("/console/vendor").await;
        let row = format!("<tr data-window=\"{id}\">");
        let at = home.body.find(&row).unwrap_or_else(|| panic!("{row} in {}", home.body));
        let row_html = &home.body[at..at + home.body[at..].find("</tr>").unwrap()];
        assert!(
            row_html.contains("class=\"state\" data-state=\"requested\""),
            "{row_html}"
        );
        assert!(row_html.contains(&format!("href=\"/console/vendor/windows/{id}\"")));
        let page = b.get(&format!("/console/vendor/windows/{id}")).await;
        assert_eq!(page.status, 200);
        let utc_hm = &utc_start[11..16];
        assert!(page.body.contains(&format!("{utc_hm} UTC")), "{}", page.body);
        assert!(page.body.contains(&local_start[11..16]));
    }
    let stored = windows_of(&t, &vendor).await.len();
    assert_eq!(stored, 2);

    // A missing reason: refused next to its field, nothing stored.
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("device_ids", &sc.device_id),
                ("starts_at", "2027-03-25T10:00"),
                ("ends_at", "2027-03-25T11:00"),
                ("reason", "  "),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        field_error(&refused.body, "reason").as_deref(),
        Some("This field is required.")
    );
    // What was typed is shown again.
    assert!(refused.body.contains("value=\"2027-03-25T10:00\""));
    // The end before the start, and no device: translated console-side checks.
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("starts_at", "2027-03-25T10:00"),
                ("ends_at", "2027-03-25T09:00"),
                ("reason", "r"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(field_error(&refused.body, "ends_at").is_some(), "{}", refused.body);
    assert!(field_error(&refused.body, "device_ids").is_some(), "{}", refused.body);
    // The use case's own message, next to its field: too long a window.
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("device_ids", &sc.device_id),
                ("starts_at", "2027-03-25T08:00"),
                ("ends_at", "2027-03-25T23:00"),
                ("reason", "too long"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("policy.max_window_hours"), "{}", refused.body);

    // In French: 28 March 2027, 02:30 does not exist in Paris.
    let switched = b
        .post("/console/lang", &[("lang", "fr"), ("back", "/console/vendor")])
        .await;
    assert_eq!(switched.status, 303);
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("device_ids", &sc.device_id),
                ("starts_at", "2027-03-28T02:30"),
                ("ends_at", "2027-03-28T05:00"),
                ("reason", "nuit"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    let message = field_error(&refused.body, "starts_at").expect("an error next to starts_at");
    assert!(message.starts_with("Cette heure n'existe pas"), "{message}");
    assert!(field_error(&refused.body, "ends_at").is_none());
    assert!(refused.body.contains("<html lang=\"fr\">"));
    assert_eq!(windows_of(&t, &vendor).await.len(), stored, "nothing stored");
    t.stop().await;
}
on_both_backends!(
    a_vendor_requests_a_window_in_local_time,
    super::request_with_local_times
);

/// Another vendor's window is not found; other roles are kept out.
async fn kept_to_its_own(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let a = api_scene(&t, "Acme", "127.0.0.2", "mri-1", "127.0.0.1:9".parse().unwrap()).await;
    let other = api_scene(&t, "Other", "127.0.0.4", "ct-1", "127.0.0.1:9".parse().unwrap()).await;
    let vendor = t.token("vendor", "desk", Some(&a.vendor_id)).await;
    let other_vendor = t.token("vendor", "other-desk", Some(&other.vendor_id)).await;
    let now = Utc::now();
    let (st, w) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&other_vendor),
            Some(
                json!({"device_ids": [other.device_id], "starts_at": now + chrono::Duration::hours(1),
                "ends_at": now + chrono::Duration::hours(2), "reason": "theirs"}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let theirs = w["id"].as_str().unwrap().to_owned();

    let b = Browser::sign_in(&t, &vendor).await;
    assert_eq!(b.get(&format!("/console/vendor/windows/{theirs}")).await.status, 404);
    assert_eq!(b.get("/console/vendor/windows/no-such-window").await.status, 404);
    let cancel = b.post(&format!("/console/vendor/windows/{theirs}/cancel"), &[]).await;
    assert_eq!(cancel.status, 404);
    let home = b.get("/console/vendor").await;
    assert!(
        !home.body.contains(&theirs) && !home.body.contains("ct-1"),
        "{}",
        home.body
    );
    // Its own devices only, in the request form too.
    let form = b.get("/console/vendor/windows/new").await;
    assert!(!form.body.contains(&other.device_id));
    // A device of another vendor is refused by the use case, with its message.
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("device_ids", &other.device_id),
                ("starts_at", &t_local(Utc::now())),
                ("ends_at", &t_local(Utc::now() + chrono::Duration::hours(1))),
                ("reason", "not ours"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("not assigned to this vendor"), "{}", refused.body);

    for role in ["security", "auditor", "admin"] {
        let token = t.token(role, &format!("{role}-1"), None).await;
        let other = Browser::sign_in(&t, &token).await;
        for path in [
            "/console/vendor".to_owned(),
            "/console/vendor/windows/new".to_owned(),
            format!("/console/vendor/windows/{theirs}"),
        ] {
            let page = other.get(&path).await;
            assert_eq!(page.status, 403, "{role} on {path}");
        }
        let post = other
            .post(&format!("/console/vendor/windows/{theirs}/cancel"), &[("reason", "x")])
            .await;
        assert_eq!(post.status, 403, "{role} cancelling");
    }
    t.stop().await;
}
on_both_backends!(a_vendor_sees_only_its_own, super::kept_to_its_own);

/// A real tunnel, then the report filed through the form beside the session
/// the gateway observed; overdue reports highlighted with what they block.
async fn report_beside_sessions(db: TestDb) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let shared: SharedClock = clock.clone();
    let t = TestApp::spawn_with(db, "", shared).await;
    let device = echo_device().await;
    let (sc, vendor, security) = t.open_window_scene(device).await;
    let id = windows_of(&t, &vendor).await[0]["id"].as_str().unwrap().to_owned();
    let b = Browser::sign_in(&t, &vendor).await;
    // Not reportable while nothing is over: the sessions are shown, no form yet.
    let page = b.get(&format!("/console/vendor/windows/{id}")).await;
    assert!(page.body.contains("<section id=\"sessions\""), "{}", page.body);
    assert!(!page.body.contains("id=\"report\""));
    assert!(page.body.contains("id=\"extend\""));

    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"hello mri").await, b"hello mri");
    drop(tls);
    let session = eventually(|| async {
        let (_, l) = t.call("GET", "/api/v1/sessions", Some(&security), None).await;
        l.as_array()
            .and_then(|a| a.first().cloned())
            .filter(|s| !s["ended_at"].is_null())
    })
    .await;
    let session_id = session["id"].as_str().unwrap();

    // The report is overdue a day after the window's end: highlighted, blocking new requests.
    clock.advance(chrono::Duration::hours(26));
    let b = Browser::sign_in(&t, &vendor).await;
    let home = b.get("/console/vendor").await;
    let overdue = format!("class=\"overdue\" role=\"alert\" data-window=\"{id}\"");
    assert!(home.body.contains(&overdue), "{}", home.body);
    assert!(home.body.contains("new window requests are refused"), "{}", home.body);
    let refused = b
        .post(
            "/console/vendor/windows/new",
            &[
                ("device_ids", &sc.device_id),
                ("starts_at", &t_local(clock.now() + chrono::Duration::hours(1))),
                ("ends_at", &t_local(clock.now() + chrono::Duration::hours(2))),
                ("reason", "next one"),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("is overdue"), "{}", refused.body);

    let page = b.get(&format!("/console/vendor/windows/{id}")).await;
    assert!(page.body.contains("id=\"report\" "), "{}", page.body);
    let sessions = &page.body[page.body.find("<section id=\"sessions\"").unwrap()..];
    assert!(
        sessions.contains(&format!("data-session=\"{session_id}\"")),
        "{sessions}"
    );
    assert!(sessions.contains("tech-Acme"));
    assert!(sessions.contains("127.0.0.2"));
    // Its end reason in words, never a message id.
    assert!(
        !session["end_reason"].is_null() && !sessions.contains("ven-end-"),
        "{sessions}"
    );

    // Missing fields: next to them, nothing filed.
    let refused = b
        .post(
            &format!("/console/vendor/windows/{id}/report"),
            &[("summary", ""), ("actions", "x"), ("outcome", "")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(field_error(&refused.body, "summary").is_some());
    assert!(field_error(&refused.body, "outcome").is_some());
    let filed = b
        .post(
            &format!("/console/vendor/windows/{id}/report"),
            &[
                ("summary", "Coil replaced.\r\nCalibrated."),
                ("actions", "Replaced the gradient coil"),
                ("outcome", "success"),
                ("follow_up", ""),
            ],
        )
        .await;
    assert_eq!(filed.status, 303, "{}", filed.body);
    let (st, r) = t
        .call("GET", &format!("/api/v1/windows/{id}/report"), Some(&vendor), None)
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["report"]["summary"], "Coil replaced.\nCalibrated.");
    assert_eq!(r["report"]["outcome"], "success");
    assert!(r["report"]["follow_up"].is_null());
    let (st, r) = t
        .call("GET", &format!("/api/v1/windows/{id}/report"), Some(&security), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["report"]["actions"], "Replaced the gradient coil");

    // Filed: shown with the addendum form; the overdue block is gone.
    let page = b.get(&format!("/console/vendor/windows/{id}")).await;
    assert!(page.body.contains("id=\"addendum\""), "{}", page.body);
    assert!(!page.body.contains("id=\"report\" "));
    assert!(!b.get("/console/vendor").await.body.contains(&overdue));
    let added = b
        .post(
            &format!("/console/vendor/windows/{id}/addendum"),
            &[("text", "Also cleaned the filters.")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let (_, r) = t
        .call("GET", &format!("/api/v1/windows/{id}/report"), Some(&vendor), None)
        .await;
    assert_eq!(r["report"]["addenda"][0]["text"], "Also cleaned the filters.");
    assert!(b
        .get(&format!("/console/vendor/windows/{id}"))
        .await
        .body
        .contains("Also cleaned the filters."));
    t.stop().await;
}
on_both_backends!(
    a_vendor_files_its_report_beside_the_sessions,
    super::report_beside_sessions
);

/// A `datetime-local` value in Paris.
fn t_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Paris)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Extension and cancellation through their forms.
async fn extend_and_cancel(db: TestDb) {
    let t = TestApp::spawn_with(db, "", Arc::new(SystemClock)).await;
    let sc = api_scene(&t, "Acme", "127.0.0.2", "mri-1", "127.0.0.1:9".parse().unwrap()).await;
    let vendor = t.token("vendor", "desk", Some(&sc.vendor_id)).await;
    let security = t.token("security", "soc", None).await;
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
    let b = Browser::sign_in(&t, &vendor).await;
    let page = b.get(&format!("/console/vendor/windows/{open}")).await;
    assert!(page.body.contains("data-state=\"active\""), "{}", page.body);
    assert!(
        !page.body.contains("id=\"cancel\""),
        "a started window is not cancelled by its vendor"
    );
    let wanted = now + chrono::Duration::hours(3);
    let asked = b
        .post(
            &format!("/console/vendor/windows/{open}/extend"),
            &[("ends_at", &t_local(wanted)), ("reason", "more tests")],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let (_, w) = t
        .call("GET", &format!("/api/v1/windows/{open}"), Some(&vendor), None)
        .await;
    let asked_for = instant(&w["extension_ends_at"]);
    assert!((asked_for - wanted).num_seconds().abs() < 60, "{w}");
    // An end before the current one: the use case's message next to the field.
    let refused = b
        .post(
            &format!("/console/vendor/windows/{open}/extend"),
            &[("ends_at", &t_local(now)), ("reason", "shorter")],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(field_error(&refused.body, "ends_at").is_some(), "{}", refused.body);

    let (_, later) = t
        .call(
            "POST",
            "/api/v1/windows",
            Some(&vendor),
            Some(
                json!({"device_ids": [sc.device_id], "starts_at": now + chrono::Duration::hours(5),
                "ends_at": now + chrono::Duration::hours(6), "reason": "later"}),
            ),
        )
        .await;
    let later = later["id"].as_str().unwrap();
    assert!(b
        .get(&format!("/console/vendor/windows/{later}"))
        .await
        .body
        .contains("id=\"cancel\""));
    let cancelled = b
        .post(&format!("/console/vendor/windows/{later}/cancel"), &[("reason", "")])
        .await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    let (_, w) = t
        .call("GET", &format!("/api/v1/windows/{later}"), Some(&vendor), None)
        .await;
    assert_eq!(w["state"], "cancelled");
    let home = b.get("/console/vendor").await;
    assert!(home.body.contains("data-state=\"cancelled\""));
    t.stop().await;
}
on_both_backends!(a_vendor_extends_and_cancels, super::extend_and_cancel);

/// The vendor's pages in headless Chromium, in both languages at both widths,
/// with screenshots under target/console-screenshots: the home, the request
/// form (filled, then refused next to a field), and the report form beside a
/// real session. Skipped when Chromium is not installed (outside CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_pages_in_a_browser() {
    use crate::browser::{Browser as Chromium, DESKTOP, PHONE};
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    let device = echo_device().await;
    let (sc, vendor, _security) = t.open_window_scene(device).await;
    let worked = windows_of(&t, &vendor).await[0]["id"].as_str().unwrap().to_owned();
    let mut tls = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut tls, b"hello mri").await, b"hello mri");
    drop(tls);
    eventually(|| async {
        let (_, l) = t
            .call("GET", "/api/v1/sessions?active=false", Some(&vendor), None)
            .await;
        l.as_array().filter(|a| !a.is_empty()).map(|_| ())
    })
    .await;

    for (lang, (width, height)) in [("fr", DESKTOP), ("en", DESKTOP), ("fr", PHONE), ("en", PHONE)] {
        let Some(b) = Chromium::open(lang, width, height).await else {
            return;
        };
        b.goto(&t.url("/console/sign-in")).await;
        b.fill("input[name=token]", &vendor).await;
        b.submit("form#sign-in").await;
        b.wait_url("/console/vendor").await;
        b.wait_for("section#devices").await;
        let state = b
            .attr(&format!("tr[data-window=\"{worked}\"] td.state"), "data-state")
            .await;
        assert_eq!(state.as_deref(), Some("active"));
        b.screenshot("vendor-home").await;

        b.click("a#new-window").await;
        b.wait_for("form#request-window").await;
        b.click(&format!("input[name=device_ids][value=\"{}\"]", sc.device_id))
            .await;
        // datetime-local inputs are typed differently by each locale: set their values.
        let tomorrow = Utc::now() + chrono::Duration::days(1);
        b.execute(
            "document.querySelector('input[name=starts_at]').value = arguments[0]; \
             document.querySelector('input[name=ends_at]').value = arguments[1];",
            vec![
                json!(t_local(tomorrow)),
                json!(t_local(tomorrow - chrono::Duration::hours(1))),
            ],
        )
        .await;
        b.fill("input[name=reason]", "firmware update").await;
        b.submit("form#request-window").await;
        b.wait_for("#f-ends_at-error").await;
        b.screenshot("vendor-request-refused").await;
        b.execute(
            "document.querySelector('input[name=ends_at]').value = arguments[0];",
            vec![json!(t_local(tomorrow + chrono::Duration::hours(2)))],
        )
        .await;
        b.submit("form#request-window").await;
        b.wait_url("done=ven-done-requested").await;
        b.wait_for("dd.state[data-state=requested]").await;
        b.screenshot("vendor-window-requested").await;

        b.goto(&t.url(&format!("/console/vendor/windows/{worked}"))).await;
        b.wait_for("form#report").await;
        b.wait_for("section#sessions tr[data-session]").await;
        b.screenshot("vendor-report").await;
        b.close().await;
    }
    t.stop().await;
}
