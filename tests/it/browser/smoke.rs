//! The harness itself: a node's open pages over its HTTPS listener (test CA)
//! at both widths, and what a session sends and keeps (language, viewport,
//! forms, cookies) against a small page server of the test's own.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Browser, PHONE, VIEWPORTS};
use crate::common::{TestApp, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pages_load_over_https_at_both_widths() {
    let t = TestApp::spawn(TestDb::sqlite().await).await;
    for (width, height) in VIEWPORTS {
        let Some(b) = Browser::open("en", width, height).await else {
            return;
        };
        b.goto(&t.url("/healthz")).await;
        let body = b.wait_text("body", "status").await;
        assert!(body.contains("\"ok\""), "{body}");
        assert!(b.current_url().await.starts_with("https://localhost:"));
        b.screenshot("healthz").await;

        b.goto(&t.url("/api/v1/openapi.json")).await;
        let doc = b.wait_text("body", "\"openapi\"").await;
        assert!(doc.contains("/healthz"), "{doc}");
        let shot = b.screenshot("openapi").await;
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", shot.display());
        b.close().await;
    }
}

/// Serves, over plain HTTP: `/` a page showing the request's Accept-Language
/// and a form; `/?q=…` the same page showing `q` and setting cookies.
async fn page_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).into_owned();
                let target = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let lang = req
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("accept-language").then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let q: String =
                    serde_urlencoded::from_str::<Vec<(String, String)>>(target.split_once('?').map_or("", |(_, q)| q))
                        .unwrap_or_default()
                        .into_iter()
                        .find_map(|(k, v)| (k == "q").then_some(v))
                        .unwrap_or_default();
                let escaped = q.replace('&', "&amp;").replace('<', "&lt;");
                let page = format!(
                    "<!doctype html><html><head><meta charset=utf-8>\
                     <meta name=viewport content=\"width=device-width, initial-scale=1\">\
                     <title>probe</title></head><body>\
                     <p id=lang>{lang}</p><p id=q>{escaped}</p>\
                     <form id=f method=get action=/><input name=q required><button>Go</button></form>\
                     </body></html>"
                );
                let cookies = if q.is_empty() {
                    String::new()
                } else {
                    "Set-Cookie: probe=1; Path=/; HttpOnly; SameSite=Strict\r\n".to_owned()
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{cookies}Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sends_its_language_and_keeps_its_viewport_and_cookies() {
    let server = page_server().await;
    for (lang, (width, height)) in [("fr", PHONE), ("en", super::DESKTOP)] {
        let Some(b) = Browser::open(lang, width, height).await else {
            return;
        };
        b.goto(&format!("http://{server}/")).await;
        let sent = b.text("#lang").await;
        assert!(sent.starts_with(lang), "{lang}: Accept-Language {sent:?}");
        assert_eq!(b.viewport().await, (u64::from(width), u64::from(height)), "{lang}");
        assert!(b.cookie("probe").await.is_none());

        // An empty required field keeps the form from being sent.
        b.submit("form#f").await;
        assert!(!b.current_url().await.contains("q="));
        b.fill("input[name=q]", "déjà <vu>").await;
        b.submit("form#f").await;
        b.wait_url("q=").await;
        assert_eq!(b.wait_text("#q", "vu").await, "déjà <vu>");
        let cookie = b.cookie("probe").await.expect("the page's cookie");
        assert_eq!(cookie.value(), "1");
        assert_eq!(cookie.http_only(), Some(true));
        b.screenshot("probe").await;
        b.close().await;
    }
}
