//! Hostile tests: webhook replay (issue 9, item 6). A delivery is signed over
//! its id, its attempt's timestamp and its body (Standard Webhooks), so a
//! receiver can refuse a captured delivery sent again; the id stays the same
//! across retries so a receiver can deduplicate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use hmac::Mac;
use portier::notify::{Notifier, Sinks, WebhookConfig};
use serde_json::json;

/// Key material of a `whsec_` secret (base64 of 32 bytes).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAECAwQFBgc=";
const PLAIN: &str = "a-plain-secret-0123456789";
const TOLERANCE_SECS: i64 = 5 * 60;

/// What a receiver saw: path, webhook-id, webhook-timestamp, webhook-signature,
/// x-portier-signature, body, and the status it answered.
#[derive(Clone, Debug)]
struct Delivery {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    legacy: String,
    body: String,
    answered: u16,
}

/// A loopback receiver that answers 500 to the first delivery on `/flaky`
/// (forcing a retry) and 200 otherwise.
async fn receiver() -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let flaky_seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let (tx, flaky_seen) = (tx.clone(), flaky_seen.clone());
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let answered = if name == "flaky" && flaky_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        500
                    } else {
                        200
                    };
                    let _ = tx.send(Delivery {
                        path: name,
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        legacy: h("x-portier-signature"),
                        body,
                        answered,
                    });
                    axum::http::StatusCode::from_u16(answered).unwrap()
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, rx)
}

/// The key a receiver derives from the secret, written from the spec (not the
/// production function): `whsec_` + base64 → decoded bytes, else UTF-8 bytes.
fn key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
        None => secret.as_bytes().to_vec(),
    }
}

/// What a Standard Webhooks receiver does: verify the signature over
/// `{id}.{timestamp}.{body}`, refuse a timestamp outside the tolerance, refuse
/// an id already processed.
fn accept(
    key: &[u8],
    d: &Delivery,
    now: i64,
    processed: &mut std::collections::HashSet<String>,
) -> Result<(), &'static str> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{}.{}.{}", d.id, d.timestamp, d.body).as_bytes());
    let good = d.signature.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    });
    if !good {
        return Err("bad signature");
    }
    let ts: i64 = d.timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err("timestamp outside tolerance");
    }
    if !processed.insert(d.id.clone()) {
        return Err("already processed");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_webhook_delivery_cannot_be_replayed() {
    let (addr, mut rx) = receiver().await;
    let hook = |path: &str, secret: &str| WebhookConfig {
        url: format!("http://{addr}/{path}"),
        secret: secret.to_owned().into(),
        events: vec!["*".into()],
    };
    let notifier = Notifier::start(Sinks {
        webhooks: vec![hook("flaky", WHSEC), hook("plain", PLAIN)],
        syslog: None,
        retry_base: Duration::from_millis(50),
    });
    notifier.send(portier::events::Event::LockdownOn, json!({"reason": "drill"}));

    let mut got: Vec<Delivery> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 3 {
        let d = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("deliveries did not arrive")
            .unwrap();
        got.push(d);
    }
    let flaky: Vec<_> = got.iter().filter(|d| d.path == "flaky").cloned().collect();
    let plain: Vec<_> = got.iter().filter(|d| d.path == "plain").cloned().collect();
    assert_eq!((flaky.len(), plain.len()), (2, 1), "{got:?}");
    let (refused, retried) = (&flaky[0], &flaky[1]);
    assert_eq!((refused.answered, retried.answered), (500, 200));

    // One message: the same id on the retry (and for every receiver).
    assert!(refused.id.starts_with("msg_") && refused.id.len() > 10, "{refused:?}");
    assert_eq!(refused.id, retried.id);
    assert_eq!(refused.id, plain[0].id);
    assert_eq!(refused.body, retried.body);

    // Every attempt verifies, with either form of secret, at the receiver's clock.
    let now = Utc::now().timestamp();
    for (d, secret) in [(refused, WHSEC), (retried, WHSEC), (&plain[0], PLAIN)] {
        let ts: i64 = d.timestamp.parse().expect("integer Unix seconds");
        assert!((now - ts).abs() <= 60, "timestamp {ts} vs now {now}");
        assert!(d.signature.starts_with("v1,"), "{d:?}");
        accept(&key(secret), d, now, &mut Default::default()).unwrap();
        // The wrong key (e.g. the whsec_ text used as raw bytes) fails.
        assert_eq!(
            accept(WHSEC.as_bytes(), d, now, &mut Default::default()),
            Err("bad signature")
        );
    }

    // The receiver processes the successful delivery…
    let k = key(WHSEC);
    let mut processed = std::collections::HashSet::new();
    accept(&k, retried, now, &mut processed).unwrap();
    // …a capture of it sent again soon after is a duplicate id…
    assert_eq!(accept(&k, retried, now + 10, &mut processed), Err("already processed"));
    // …sent later is outside the tolerance, even to a receiver that has since
    // forgotten the id…
    assert_eq!(
        accept(&k, retried, now + TOLERANCE_SECS + 61, &mut Default::default()),
        Err("timestamp outside tolerance")
    );
    // …and re-stamped with a fresh time, or given a fresh id, it no longer verifies.
    let mut restamped = retried.clone();
    restamped.timestamp = (now + TOLERANCE_SECS + 61).to_string();
    assert_eq!(
        accept(&k, &restamped, now + TOLERANCE_SECS + 61, &mut Default::default()),
        Err("bad signature")
    );
    let mut renamed = retried.clone();
    renamed.id = "msg_fresh".into();
    assert_eq!(accept(&k, &renamed, now, &mut processed), Err("bad signature"));

    // The deprecated body-only header is still sent (HMAC under the secret's UTF-8 bytes).
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(PLAIN.as_bytes()).unwrap();
    mac.update(plain[0].body.as_bytes());
    assert_eq!(
        plain[0].legacy,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}

/// A `whsec_` secret that is not base64 is refused when the configuration loads.
#[test]
fn a_whsec_secret_that_is_not_base64_is_refused() {
    let toml = "[[notify.webhooks]]\nurl = \"https://soc.example/hook\"\nsecret = \"whsec_this is not base64!!\"\n";
    let e = format!(
        "{:?}",
        portier::config::Settings::from_toml(toml, std::path::Path::new("/x"), Vec::<(String, String)>::new())
            .map(|_| ())
    );
    assert!(e.contains("whsec_") && e.contains("base64"), "{e}");
    assert!(!e.contains("this is not base64"), "secret shown: {e}");
}
