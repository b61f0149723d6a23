//! The console's foundation: sign-in with a token, the session cookie, CSRF,
//! the security headers, languages, sign-out (here and everywhere), timeouts,
//! and a disabled account's session ending at once.

use std::sync::Arc;

use portier::clock::{ManualClock, SharedClock};
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::common::*;
use crate::on_both_backends;

/// A browser-like client that keeps cookies by hand and never follows redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    lang: &'static str,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    /// The value of the first `_csrf` field of the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + 20..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp, lang: &'static str) -> Self {
        let ca = std::fs::read(app.server_ca()).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .resolve("localhost", app.app.api_addr)
            .redirect(Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: app.url(""),
            cookies: Vec::new(),
            lang,
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !(value.is_empty() || attrs.contains("Max-Age=0")) {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .header(COOKIE, self.cookie_header())
            .header(ACCEPT_LANGUAGE, self.lang)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.keep_cookies(&headers);
        Answer {
            status,
            headers,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A refresh of a live section, as the console script sends it.
    async fn poll(&mut self, path: &str) -> Answer {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-Portier-Live", "1");
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn sign_in(&mut self, token: &str) -> Answer {
        let page = self.get("/console/sign-in").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf();
        self.post("/console/sign-in", &[("_csrf", &csrf), ("token", token)])
            .await
    }
}

async fn sign_in_and_out(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let security = app.token("security", "sec-one", None).await;
    let mut b = Browser::new(&app, "en-GB,en;q=0.9");

    // Not signed in: a page sends to the sign-in page and back.
    let first = b.get("/console/security").await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location(), "/console/sign-in?next=%2Fconsole%2Fsecurity");

    // The sign-in page: headers of every console page, a pre-sign-in cookie.
    let page = b.get("/console/sign-in").await;
    assert_eq!(page.status, 200);
    let h = &page.headers;
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(page.body.contains("<html lang=\"en\""), "English from Accept-Language");
    assert!(
        !page.body.contains("<script>") && !page.body.contains("style="),
        "no inline script or style"
    );

    // Without the CSRF token the sign-in form is refused, whatever the token.
    let no_csrf = b.post("/console/sign-in", &[("token", &security)]).await;
    assert_eq!(no_csrf.status, 403);
    assert!(!no_csrf
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("__Host-portier=")));

    // A wrong token: 401, said next to the field, no session.
    let csrf = page.csrf();
    let wrong = b
        .post("/console/sign-in", &[("_csrf", &csrf), ("token", "ptk_nope")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("This token was not accepted"), "{}", wrong.body);
    assert!(wrong.body.contains("aria-invalid=\"true\""));

    // The right token: a session cookie with every protection, then the role's home.
    let ok = b
        .post("/console/sign-in", &[("_csrf", &csrf), ("token", &security)])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), "/console/security");
    let cookie = ok
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-portier="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains(&security), "the cookie is not the token");
    let (_, body) = app
        .call("GET", "/api/v1/audit", Some(&app.admin_token_for_audit().await), None)
        .await;
    let signed_in: Vec<_> = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "console.signed_in")
        .collect();
    assert_eq!(signed_in.len(), 1, "{body}");
    let details: serde_json::Value = serde_json::from_str(signed_in[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["method"], "token");

    // Signed in: /console/ leads home; the shell shows the account.
    let home = b.get("/console/").await;
    assert_eq!((home.status, home.location()), (303, "/console/security"));
    // A form posted without the session's CSRF token is refused.
    let forged = b.post("/console/lang", &[("lang", "fr")]).await;
    assert_eq!(forged.status, 403);
    let forged = b
        .post("/console/lang", &[("_csrf", "0".repeat(64).as_str()), ("lang", "fr")])
        .await;
    assert_eq!(forged.status, 403);

    // Switching language is remembered on the account (and audited).
    let any_page = b.get("/console/no-such-page").await;
    assert_eq!(any_page.status, 404);
    assert!(any_page.body.contains("There is no such page"));
    let me = b.get("/console/security").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let csrf_session = me.csrf();
    let switched = b
        .post(
            "/console/lang",
            &[("_csrf", &csrf_session), ("lang", "fr"), ("back", "/console/security")],
        )
        .await;
    assert_eq!((switched.status, switched.location()), (303, "/console/security"));
    let (_, users) = app.call("GET", "/api/v1/users", Some(&app.admin), None).await;
    let me = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "sec-one")
        .unwrap();
    assert_eq!(me["lang"], "fr");
    let fr = b.get("/console/no-such-page").await;
    assert!(fr.body.contains("<html lang=\"fr\""), "{}", fr.body);
    assert!(fr.body.contains("Cette page n'existe pas"));
    let fr = b.get("/console/security").await;
    assert!(
        fr.body.contains("<html lang=\"fr\""),
        "the account's language wins over Accept-Language"
    );

    // Sign out: the cookie no longer opens anything.
    let stolen = b.cookies.clone();
    let csrf = b.get("/console/security").await.csrf();
    let out = b
        .post("/console/sign-out", &[("_csrf", &csrf), ("everywhere", "false")])
        .await;
    assert_eq!(out.status, 303);
    assert!(out.location().starts_with("/console/sign-in?done=signed-out"));
    b.cookies = stolen;
    let after = b.get("/console/").await;
    assert_eq!(after.status, 303);
    assert!(after.location().starts_with("/console/sign-in"), "{}", after.location());
    app.stop().await;
}
on_both_backends!(sign_in_and_out, super::sign_in_and_out);

async fn sessions_end(db: TestDb) {
    let start = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let app = TestApp::spawn_with(
        db,
        "[console]\nidle_minutes = 30\nabsolute_hours = 2\n",
        clock.clone() as SharedClock,
    )
    .await;
    let auditor = app.token("auditor", "aud-one", None).await;
    let (_, users) = app.call("GET", "/api/v1/users", Some(&app.admin), None).await;
    let auditor_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "aud-one")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two browsers of the same person; "sign out everywhere" in one ends both.
    let mut one = Browser::new(&app, "fr");
    let mut two = Browser::new(&app, "fr");
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    assert_eq!(two.sign_in(&auditor).await.status, 303);
    let signed_in = |a: &Answer| a.status != 303 || !a.location().starts_with("/console/sign-in");
    assert!(signed_in(&one.get("/console/").await));
    let csrf = one.get("/console/audit").await.csrf();
    let out = one
        .post("/console/sign-out", &[("_csrf", &csrf), ("everywhere", "true")])
        .await;
    assert_eq!(out.status, 303);
    assert!(
        !signed_in(&two.get("/console/").await),
        "the other browser is signed out too"
    );

    // Idle timeout: 29 minutes between pages keeps the session, 31 ends it.
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    for _ in 0..3 {
        clock.advance(chrono::Duration::minutes(29));
        assert!(signed_in(&one.get("/console/").await));
    }
    clock.advance(chrono::Duration::minutes(31));
    assert!(!signed_in(&one.get("/console/").await), "idle for 31 minutes");

    // The live sections' refreshes are not activity: an unattended page ends idle.
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    clock.advance(chrono::Duration::minutes(20));
    assert_eq!(one.poll("/console/audit").await.status, 200);
    clock.advance(chrono::Duration::minutes(20));
    assert!(
        !signed_in(&one.poll("/console/audit").await),
        "40 minutes of refreshes only"
    );

    // A query the framework cannot parse is a 400 page, not plain text.
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    let bad = one.get("/console/audit/trail?before=x").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("<main"));

    // Absolute timeout: used every 20 minutes, it still ends 2 hours after sign-in.
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    for _ in 0..5 {
        clock.advance(chrono::Duration::minutes(20));
        assert!(signed_in(&one.get("/console/").await));
    }
    clock.advance(chrono::Duration::minutes(21));
    assert!(!signed_in(&one.get("/console/").await), "2 h 01 after sign-in");

    // A disabled account's session ends at its next request.
    assert_eq!(one.sign_in(&auditor).await.status, 303);
    assert!(signed_in(&one.get("/console/").await));
    let (st, _) = app
        .call(
            "POST",
            &format!("/api/v1/users/{auditor_id}/disable"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(!signed_in(&one.get("/console/").await), "disabled account");
    app.stop().await;
}
on_both_backends!(sessions_end, super::sessions_end);

impl TestApp {
    /// A token allowed to read the audit trail.
    async fn admin_token_for_audit(&self) -> String {
        self.token("auditor", &format!("audit-reader-{}", uuid::Uuid::new_v4()), None)
            .await
    }
}

/// Every console page × every role: the roles the page is for see it (200), the
/// others get a 403 page — the same rule as the API's for the same data.
async fn pages_by_role(db: TestDb) {
    let device = echo_device().await;
    let app = TestApp::spawn(db).await;
    let (_, vendor, security) = app.open_window_scene(device).await;
    let auditor = app.token("auditor", "aud-matrix", None).await;
    let tokens = [
        ("admin", app.admin.clone()),
        ("security", security),
        ("auditor", auditor),
        ("vendor", vendor),
    ];
    let matrix: &[(&str, &[&str])] = &[
        ("/console/security", &["security", "admin"]),
        ("/console/vendor", &["vendor"]),
        ("/console/vendor/windows/new", &["vendor"]),
        ("/console/audit", &["auditor", "security", "admin"]),
        ("/console/audit/sessions", &["auditor", "security"]),
        ("/console/audit/reports", &["auditor", "security", "admin"]),
        ("/console/audit/trail", &["auditor", "security"]),
        ("/console/audit/flows", &["auditor", "security", "admin"]),
        ("/console/audit/evidence", &["auditor", "security"]),
        ("/console/audit/dossier", &["auditor", "security", "admin"]),
        ("/console/admin", &["admin"]),
        ("/console/admin/devices", &["admin"]),
        ("/console/admin/accounts", &["admin"]),
    ];
    for (role, token) in &tokens {
        let mut b = Browser::new(&app, "en");
        assert_eq!(b.sign_in(token).await.status, 303, "{role}");
        for (path, allowed) in matrix {
            let page = b.get(path).await;
            let expected = if allowed.contains(role) { 200 } else { 403 };
            assert_eq!(page.status, expected, "{role} GET {path}: {}", page.body);
            assert!(page.body.contains("<main"), "{role} GET {path}: a full page");
            assert!(page.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'"));
        }
    }
    app.stop().await;
}
on_both_backends!(pages_by_role, super::pages_by_role);
