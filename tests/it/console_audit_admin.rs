//! The auditor and admin areas of the console, over HTTPS with a signed-in
//! session: what an auditor sees and downloads, what an admin changes through
//! forms (and the API then shows), and who is refused.

use std::io::Read;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{connect_from, echo_device, echo_roundtrip, eventually, TestApp, TestDb};

/// A browser, reduced to what these tests need: the session cookie, the CSRF
/// token of its forms, no redirects followed (the tests look at them).
struct Console {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

/// The value of the first `name="_csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form with a CSRF field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The `name=value` of a `Set-Cookie` named `name`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

impl Console {
    async fn sign_in(t: &TestApp, token: &str) -> Self {
        let ca = std::fs::read(t.server_ca()).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .resolve("localhost", t.app.api_addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let base = t.url("");
        let page = http.get(format!("{base}/console/sign-in")).send().await.unwrap();
        let pre = set_cookie(&page, "__Host-portier-pre").unwrap();
        let csrf = csrf_of(&page.text().await.unwrap());
        let resp = http
            .post(format!("{base}/console/sign-in"))
            .header(COOKIE, &pre)
            .form(&[("_csrf", csrf.as_str()), ("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "sign-in refused");
        let cookie = set_cookie(&resp, "__Host-portier").unwrap();
        // The forms' token, derived from the session's secret as the console
        // does (checked against a page's in the tests that open one: not every
        // role's home page exists on this branch).
        let secret = cookie.split_once('=').unwrap().1;
        let csrf = portier::token::hash(&format!("portier-console-csrf:{secret}"));
        Self {
            http,
            base,
            cookie,
            csrf,
        }
    }

    /// GET: status and body (for a redirect, its location).
    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.raw_get(path).await;
        let status = resp.status().as_u16();
        if let Some(to) = resp.headers().get(LOCATION) {
            return (status, to.to_str().unwrap().to_owned());
        }
        (status, resp.text().await.unwrap())
    }

    async fn raw_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// POST a form with this session's CSRF token (`with_csrf`) or without:
    /// status, and the body or the redirect's location.
    async fn post_form(&self, path: &str, fields: &[(&str, &str)], with_csrf: bool) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if with_csrf {
            form.push(("_csrf", &self.csrf));
        }
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if let Some(to) = resp.headers().get(LOCATION) {
            return (status, to.to_str().unwrap().to_owned());
        }
        (status, resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.post_form(path, fields, true).await
    }
}

/// The `href` of the element with `id` (an `a` written `a id=… href=…`).
fn href_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\" href=\"")).expect(id);
    let rest = &html[at + format!("id=\"{id}\" href=\"").len()..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

/// A time as a `datetime-local` value in the hospital's zone (Europe/Paris by default).
fn local(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Paris)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn auditor_sees_sessions_verifies_and_downloads(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let device = echo_device().await;
    let (sc, _vendor, security) = t.open_window_scene(device).await;
    {
        let mut s = connect_from("127.0.0.2", t.app.gateway_addr, "mri-1", sc.tls.clone())
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
    }
    // The session, once it has ended (so both CSVs are taken of the same record).
    let session_id = eventually(|| async {
        let (_, list) = t.call("GET", "/api/v1/sessions", Some(&security), None).await;
        let s = list.as_array()?.first()?.clone();
        s["ended_at"].as_str()?;
        Some(s["id"].as_str()?.to_owned())
    })
    .await;
    let auditor = t.token("auditor", "quarterly review", None).await;
    let c = Console::sign_in(&t, &auditor).await;

    // Timeline and sessions show it.
    let (st, timeline) = c.get("/console/audit").await;
    assert_eq!(st, 200, "{timeline}");
    assert_eq!(csrf_of(&timeline), c.csrf);
    assert!(
        timeline.contains(&format!("data-session=\"{session_id}\"")),
        "{timeline}"
    );
    let (st, sessions) = c.get("/console/audit/sessions").await;
    assert_eq!(st, 200);
    assert!(sessions.contains(&format!("data-session=\"{session_id}\"")));

    // The CSV download is the API's CSV, header row first.
    let resp = c.raw_get(&href_of(&sessions, "sessions-csv")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    let api_csv = t
        .http
        .get(t.url("/api/v1/sessions?format=csv"))
        .bearer_auth(&security)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().next(), api_csv.lines().next());
    assert!(csv.starts_with("id,window_id,vendor_id,"), "{csv}");
    assert_eq!(csv, api_csv);
    // Filters go along: a vendor without sessions gives the header alone.
    let (st, none) = c.get("/console/audit/sessions/csv?vendor_id=nobody").await;
    assert_eq!(st, 200);
    assert_eq!(none.lines().count(), 1);
    let (st, bad) = c.get("/console/audit/sessions?since=yesterday").await;
    assert_eq!(st, 400);
    assert!(bad.contains("f-since-error"), "{bad}");

    // Reports and flows answer.
    assert_eq!(c.get("/console/audit/reports").await.0, 200);
    let (st, flows) = c.get("/console/audit/flows").await;
    assert_eq!(st, 200);
    assert!(flows.contains("data-flow="), "{flows}");

    // The security dossier: its documents in both languages, each one opening
    // from the console session as the API serves it (sandboxed, own media type).
    let (st, dossier) = c.get("/console/audit/dossier").await;
    assert_eq!(st, 200, "{dossier}");
    for stem in [
        "rights",
        "crypto",
        "flows",
        "architecture",
        "third-party",
        "installation",
        "procedures",
    ] {
        assert!(
            dossier.contains(&format!("data-document=\"{stem}\"")),
            "{stem}: {dossier}"
        );
    }
    for link in [
        "/console/audit/dossier/en/crypto.html",
        "/console/audit/dossier/fr/procedures.md",
    ] {
        assert!(dossier.contains(link), "{link}: {dossier}");
        let resp = c.raw_get(link).await;
        assert_eq!(resp.status(), 200, "{link}");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("sandbox allow-same-origin;"), "{link}: {csp}");
        assert!(!resp.text().await.unwrap().is_empty());
    }
    assert_eq!(c.get("/console/audit/dossier/en/nothing.html").await.0, 404);
    assert_eq!(c.get("/console/audit/dossier/xx/rights.html").await.0, 404);

    // The trail verifies from the console (and not without the form's token).
    let (st, trail) = c.get("/console/audit/trail").await;
    assert_eq!(st, 200);
    assert!(trail.contains("id=\"verify\""));
    assert!(trail.contains("data-seq=\"1\""));
    let (st, verified) = c.post("/console/audit/trail/verify", &[]).await;
    assert_eq!(st, 200, "{verified}");
    assert!(verified.contains("id=\"verify-result\""), "{verified}");
    assert!(verified.contains("data-result=\"ok\""), "{verified}");
    assert_eq!(c.post_form("/console/audit/trail/verify", &[], false).await.0, 403);

    // The evidence bundle: one tar whose SHA256SUMS matches its files.
    let now = Utc::now();
    let path = format!(
        "/console/audit/evidence/download?since={}&until={}",
        local(now - chrono::Duration::days(1)),
        local(now + chrono::Duration::hours(2))
    );
    let resp = c.raw_get(&path).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/x-tar");
    let bytes = resp.bytes().await.unwrap();
    let mut files = std::collections::HashMap::new();
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = entry.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        files.insert(name.rsplit('/').next().unwrap().to_owned(), body);
    }
    let sums = String::from_utf8(files["SHA256SUMS"].clone()).unwrap();
    assert!(sums.contains("sessions.csv") && sums.contains("audit.jsonl"), "{sums}");
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").unwrap();
        assert_eq!(hex::encode(Sha256::digest(&files[name])), sum, "{name}");
    }
    assert!(String::from_utf8_lossy(&files["sessions.csv"]).contains(&session_id));
    // A period the wrong way round is refused on the page, next to its field.
    let (st, page) = c
        .get(&format!(
            "/console/audit/evidence/download?since={}&until={}",
            local(now),
            local(now - chrono::Duration::days(1))
        ))
        .await;
    assert_eq!(st, 400);
    assert!(page.contains("f-until-error"), "{page}");

    // The areas an auditor has no business in.
    assert_eq!(c.get("/console/admin").await.0, 403);
    t.stop().await;
}
crate::on_both_backends!(auditor_console, super::auditor_sees_sessions_verifies_and_downloads);

/// The vendor id in a redirect to its page.
fn vendor_of(location: &str) -> String {
    let rest = location.strip_prefix("/console/admin/vendors/").expect(location);
    rest.split('?').next().unwrap().to_owned()
}

async fn admin_changes_through_forms(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Acme", "networks": ["192.0.2.0/28"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let acme = v["id"].as_str().unwrap().to_owned();

    // Who may not administer.
    let vendor = Console::sign_in(&t, &t.token("vendor", "desk", Some(&acme)).await).await;
    let security = Console::sign_in(&t, &t.token("security", "soc", None).await).await;
    for c in [&vendor, &security] {
        for path in ["/console/admin", "/console/admin/devices", "/console/admin/accounts"] {
            assert_eq!(c.get(path).await.0, 403, "{path}");
        }
        let (st, _) = c
            .post(
                "/console/admin/vendors",
                &[("name", "X"), ("networks", "198.51.100.0/28")],
            )
            .await;
        assert_eq!(st, 403);
    }

    let a = Console::sign_in(&t, &t.admin).await;
    let (st, home) = a.get("/console/admin").await;
    assert_eq!(st, 200, "{home}");
    assert!(home.contains(&format!("data-vendor=\"{acme}\"")));

    // A vendor: too broad a network needs the admin's consent.
    let (st, page) = a
        .post(
            "/console/admin/vendors",
            &[("name", "Globex"), ("networks", "10.0.0.0/8")],
        )
        .await;
    assert_eq!(st, 400, "{page}");
    assert!(page.contains("f-networks-error"), "{page}");
    let (st, to) = a
        .post(
            "/console/admin/vendors",
            &[
                ("name", "Globex"),
                ("networks", "10.0.0.0/8\n198.51.100.0/28"),
                ("allow_broad_networks", "true"),
            ],
        )
        .await;
    assert_eq!(st, 303, "{to}");
    let globex = vendor_of(&to);
    let (_, v) = t
        .call("GET", &format!("/api/v1/vendors/{globex}"), Some(&t.admin), None)
        .await;
    assert_eq!(v["name"], "Globex");
    assert_eq!(v["networks"], json!(["10.0.0.0/8", "198.51.100.0/28"]));
    // Replace its networks, disable and enable it.
    let (st, _) = a
        .post(
            &format!("/console/admin/vendors/{globex}/networks"),
            &[("networks", "198.51.100.16/28")],
        )
        .await;
    assert_eq!(st, 303);
    let (st, _) = a.post(&format!("/console/admin/vendors/{globex}/disable"), &[]).await;
    assert_eq!(st, 303);
    let (_, v) = t
        .call("GET", &format!("/api/v1/vendors/{globex}"), Some(&t.admin), None)
        .await;
    assert_eq!(v["networks"], json!(["198.51.100.16/28"]));
    assert_eq!(v["enabled"], false);
    assert_eq!(
        a.post(&format!("/console/admin/vendors/{globex}/enable"), &[]).await.0,
        303
    );

    // A technician from a CSR: the signed certificate is shown and downloadable.
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let (st, page) = a
        .post(
            &format!("/console/admin/vendors/{globex}/technicians"),
            &[("name", "bob"), ("csr_pem", &csr)],
        )
        .await;
    assert_eq!(st, 201, "{page}");
    assert!(page.contains("BEGIN CERTIFICATE"), "{page}");
    let resp = a.raw_get(&href_of(&page, "certificate-download")).await;
    assert_eq!(resp.status(), 200);
    let pem = resp.text().await.unwrap();
    assert!(portier::pki::CertInfo::from_pem(&pem).unwrap().subject.contains("bob"));
    let (st, page) = a
        .post(
            &format!("/console/admin/vendors/{globex}/technicians"),
            &[("name", "eve"), ("csr_pem", "not a request")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(page.contains("f-csr_pem-error"), "{page}");
    let (_, techs) = t
        .call(
            "GET",
            &format!("/api/v1/vendors/{globex}/technicians"),
            Some(&t.admin),
            None,
        )
        .await;
    let bob = techs[0]["id"].as_str().unwrap().to_owned();
    let (st, _) = a
        .post(
            &format!("/console/admin/vendors/{globex}/technicians/{bob}/revoke"),
            &[],
        )
        .await;
    assert_eq!(st, 303);
    let (_, techs) = t
        .call(
            "GET",
            &format!("/api/v1/vendors/{globex}/technicians"),
            Some(&t.admin),
            None,
        )
        .await;
    assert!(techs[0]["revoked_at"].is_string(), "{techs}");

    // A device assigned to both vendors, through the form.
    let (st, to) = a
        .post(
            "/console/admin/devices",
            &[
                ("name", "ct-2"),
                ("address", "10.1.2.3:22"),
                ("protocol", "ssh"),
                ("vendor_ids", &acme),
                ("vendor_ids", &globex),
            ],
        )
        .await;
    assert_eq!(st, 303, "{to}");
    let (_, devices) = t.call("GET", "/api/v1/devices", Some(&t.admin), None).await;
    let ct = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "ct-2")
        .expect("the device")
        .clone();
    let mut assigned: Vec<&str> = ct["vendor_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assigned.sort_unstable();
    let mut expected = vec![acme.as_str(), globex.as_str()];
    expected.sort_unstable();
    assert_eq!(assigned, expected);
    let (st, page) = a
        .post(
            "/console/admin/devices",
            &[("name", "bad name!"), ("address", "nowhere"), ("protocol", "ssh")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        page.contains("f-name-error") && page.contains("f-address-error"),
        "{page}"
    );
    let ct_id = ct["id"].as_str().unwrap();
    assert_eq!(
        a.post(&format!("/console/admin/devices/{ct_id}/disable"), &[]).await.0,
        303
    );
    let (_, d) = t
        .call("GET", &format!("/api/v1/devices/{ct_id}"), Some(&t.admin), None)
        .await;
    assert_eq!(d["enabled"], false);

    // An account: its token is shown once, and works.
    let (st, page) = a
        .post(
            "/console/admin/accounts",
            &[("name", "auditor-2"), ("role", "auditor"), ("vendor_id", "")],
        )
        .await;
    assert_eq!(st, 201, "{page}");
    let at = page.find("value=\"ptk_").expect("the token");
    let token = page[at + 7..].split('"').next().unwrap().to_owned();
    let (st, me) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(st, 200);
    assert_eq!(me["role"], "auditor");
    let (_, list) = a.get("/console/admin/accounts").await;
    assert!(list.contains("auditor-2") && !list.contains(&token));
    let (st, page) = a
        .post(
            "/console/admin/accounts",
            &[("name", "desk-2"), ("role", "vendor"), ("vendor_id", "")],
        )
        .await;
    assert_eq!(st, 400, "{page}");
    let id = me["id"].as_str().unwrap();
    assert_eq!(
        a.post(&format!("/console/admin/accounts/{id}/disable"), &[]).await.0,
        303
    );
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
    assert_eq!(
        a.post(&format!("/console/admin/accounts/{id}/enable"), &[]).await.0,
        303
    );
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 200);
    // A reset password is shown once, on a page that is not cached.
    let (st, page) = a
        .post(&format!("/console/admin/accounts/{id}/reset-password"), &[])
        .await;
    assert_eq!(st, 200, "{page}");
    let at = page.find(r#"id="temporary""#).expect("the temporary password");
    let shown = page[at..].split("value=\"").nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(shown.len(), portier::ops::TEMPORARY_PASSWORD_LEN, "{shown}");
    let (_, list) = a.get("/console/admin/accounts").await;
    assert!(!list.contains(shown), "shown once only");
    // No second factor to reset: the refusal is a page, in the product's words.
    let (st, page) = a.post(&format!("/console/admin/accounts/{id}/reset-mfa"), &[]).await;
    assert_eq!(st, 409, "{page}");

    // Every form refuses a post without its CSRF token.
    for (path, fields) in [
        (
            "/console/admin/vendors".to_owned(),
            vec![("name", "Initech"), ("networks", "203.0.113.0/28")],
        ),
        (
            format!("/console/admin/vendors/{globex}/networks"),
            vec![("networks", "203.0.113.0/28")],
        ),
        (format!("/console/admin/vendors/{globex}/disable"), vec![]),
        (format!("/console/admin/vendors/{globex}/enable"), vec![]),
        (
            format!("/console/admin/vendors/{globex}/technicians"),
            vec![("name", "x"), ("csr_pem", csr.as_str())],
        ),
        (
            format!("/console/admin/vendors/{globex}/technicians/{bob}/revoke"),
            vec![],
        ),
        (
            "/console/admin/devices".to_owned(),
            vec![("name", "ct-3"), ("address", "10.1.2.4:22"), ("protocol", "ssh")],
        ),
        (format!("/console/admin/devices/{ct_id}/enable"), vec![]),
        (format!("/console/admin/devices/{ct_id}/disable"), vec![]),
        (
            "/console/admin/accounts".to_owned(),
            vec![("name", "x"), ("role", "auditor")],
        ),
        (format!("/console/admin/accounts/{id}/disable"), vec![]),
        (format!("/console/admin/accounts/{id}/enable"), vec![]),
        (format!("/console/admin/accounts/{id}/reset-password"), vec![]),
        (format!("/console/admin/accounts/{id}/reset-mfa"), vec![]),
    ] {
        assert_eq!(a.post_form(&path, &fields, false).await.0, 403, "{path}");
    }
    let (_, vendors) = t.call("GET", "/api/v1/vendors", Some(&t.admin), None).await;
    assert!(!vendors.to_string().contains("Initech"));
    t.stop().await;
}
crate::on_both_backends!(admin_console, super::admin_changes_through_forms);
