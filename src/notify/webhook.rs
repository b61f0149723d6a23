//! Webhook sinks: the Standard Webhooks signature and one delivery attempt.

use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{WebhookConfig, EVENT_HEADER, ID_HEADER, SIGNATURE_HEADER, STANDARD_SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::redact::redact_url;

/// Prefix of a Standard Webhooks secret whose rest is the base64 key.
pub const SECRET_PREFIX: &str = "whsec_";

/// A `whsec_` secret whose rest is not base64.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret starting with {SECRET_PREFIX:?} must continue with base64 key bytes")]
pub struct BadSecret;

/// The HMAC key of a configured secret: `whsec_<base64>` decodes to its key
/// bytes (as every Standard Webhooks library does), anything else is used as
/// its UTF-8 bytes (secrets written before the scheme keep working).
pub fn signing_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    use base64::Engine;
    // Padding optional: secrets are copied from consoles that strip it.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    match secret.strip_prefix(SECRET_PREFIX) {
        Some(b64) => LENIENT.decode(b64).ok().filter(|k| !k.is_empty()).ok_or(BadSecret),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`: the
/// `webhook-signature` value of the Standard Webhooks scheme.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Deprecated body-only signature: `sha256=<hex>` of `body` under `secret`'s
/// UTF-8 bytes (unchanged, whatever the secret's form).
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One message as sent to a webhook.
pub(super) struct Message<'a> {
    /// The `webhook-id`, the same on every attempt.
    pub id: &'a str,
    pub event: &'a str,
    pub body: &'a [u8],
}

/// One delivery attempt: `Ok` if the receiver answered 2xx. The error names
/// the receiver by its redacted URL only (it may carry credentials).
pub(super) async fn post(client: &reqwest::Client, hook: &WebhookConfig, msg: &Message<'_>) -> Result<(), String> {
    let shown = redact_url(&hook.url);
    // Checked when the configuration is loaded; this guards a hand-built Sinks.
    let key = signing_key(hook.secret.expose()).map_err(|e| {
        tracing::error!(url = %shown, event = msg.event, error = %e, "webhook not sent");
        format!("{shown}: {e}")
    })?;
    // Signed anew per attempt: the timestamp is the attempt's, the id the message's.
    let timestamp = Utc::now().timestamp();
    let mut request = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ID_HEADER, msg.id)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            STANDARD_SIGNATURE_HEADER,
            standard_signature(&key, msg.id, timestamp, msg.body),
        )
        .header(EVENT_HEADER, msg.event);
    if hook.legacy_signature {
        request = request.header(SIGNATURE_HEADER, signature(hook.secret.expose(), msg.body));
    }
    let r = request.body(msg.body.to_vec()).send().await;
    match r {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => {
            tracing::warn!(url = %shown, status = %resp.status(), id = msg.id, "webhook refused");
            Err(format!("{shown}: answered {}", resp.status()))
        }
        Err(e) => {
            // reqwest's errors embed the URL: stripped.
            let e = e.without_url();
            tracing::warn!(url = %shown, error = %e, id = msg.id, "webhook unreachable");
            Err(format!("{shown}: {e}"))
        }
    }
}
