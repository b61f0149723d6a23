//! A console client for tests: a browser's cookie jar and CSRF handling by hand
//! (reqwest's `cookies` feature is not enabled). It signs in with an API token,
//! follows redirects itself (carrying the cookies they set), and adds to each
//! form it posts the `_csrf` value of the last page it fetched.

use std::time::Duration;

use crate::common::TestApp;

/// A signed-in (or not yet) console browser.
pub struct ConsoleClient {
    http: reqwest::Client,
    base: String,
    /// Cookies set by the console, in the order first set.
    cookies: Vec<(String, String)>,
    /// The `_csrf` value of the last page fetched that had a form.
    csrf: Option<String>,
    /// The path of the last page answered (after redirects).
    pub path: String,
}

impl ConsoleClient {
    /// A browser without a session.
    pub fn anonymous(app: &TestApp) -> Self {
        let ca = std::fs::read(app.server_ca()).unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .resolve("localhost", app.app.api_addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            http,
            base: app.url(""),
            cookies: Vec::new(),
            csrf: None,
            path: String::new(),
        }
    }

    /// Signs in with an API token (panics if refused); lands on the role's home.
    pub async fn sign_in(app: &TestApp, token: &str) -> Self {
        let mut c = Self::anonymous(app);
        let (st, body) = c.get("/console/sign-in").await;
        assert_eq!(st, 200, "{body}");
        let (st, body) = c.post("/console/sign-in", &[("token", token)]).await;
        assert!(c.cookie("__Host-portier").is_some(), "sign-in refused ({st}): {body}");
        c
    }

    /// A cookie's current value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The CSRF token of the last page fetched.
    pub fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    /// GET, following redirects; returns the final status and body.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        self.get_with(path, &[]).await
    }

    /// GET with extra request headers, following redirects.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.send(req).await;
        self.answer(path, resp).await
    }

    /// POSTs a form with the last page's CSRF token added, following the redirect.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let token = self
            .csrf
            .clone()
            .expect("no CSRF token: fetch a page with a form first");
        let mut all: Vec<(&str, &str)> = vec![("_csrf", &token)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POSTs exactly these fields (no CSRF token added), following the redirect.
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let resp = self.send(req).await;
        self.answer(path, resp).await
    }

    /// An API call with this browser's cookies (no bearer token), JSON in and
    /// out, with extra headers.
    pub async fn api(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = self.send(req).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let req = match self.cookie_header() {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let resp = req.send().await.unwrap();
        self.keep_cookies(&resp);
        resp
    }

    /// Follows redirects (as GETs) up to 10 times, then reads the body.
    async fn answer(&mut self, path: &str, mut resp: reqwest::Response) -> (u16, String) {
        let mut path = path.to_owned();
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                break;
            }
            let to = resp.headers()["location"].to_str().unwrap().to_owned();
            // The fragment stays in the browser.
            path = to.split('#').next().unwrap().to_owned();
            let req = self.http.get(format!("{}{}", self.base, path));
            resp = self.send(req).await;
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        if let Some(token) = scrape_csrf(&body) {
            self.csrf = Some(token);
        }
        self.path = path;
        (status, body)
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for value in resp.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let gone = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            self.cookies.retain(|(k, _)| k != name);
            if !gone {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}

/// The `_csrf` value of the first form in `body`.
pub fn scrape_csrf(body: &str) -> Option<String> {
    let at = body.find(r#"name="_csrf" value=""#)? + r#"name="_csrf" value=""#.len();
    let rest = body.get(at..)?;
    Some(rest.get(..rest.find('"')?)?.to_owned())
}

/// The text of `body` from the first `start` to the next `end` (both included),
/// e.g. a table row: `snippet(body, r#"<tr data-window="w1""#, "</tr>")`.
pub fn snippet<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = body.find(start)?;
    let len = body.get(from..)?.find(end)? + end.len();
    body.get(from..from + len)
}
