//! Signing in through the console in a real browser with a password and a
//! TOTP code (issue 11): first the enrolment a security account must make
//! (secret shown once, recovery codes shown once), then a sign-in with a code.

use chrono::Duration;
use portier::ops::totp_code;

use super::{Browser, DESKTOP};
use crate::common::*;
use crate::identity::{Idp, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_then_totp_in_a_browser() {
    let idp = Idp::spawn(TestDb::sqlite().await).await;
    idp.with_password("security", "soc-totp").await;
    let Some(b) = Browser::open("fr", DESKTOP.0, DESKTOP.1).await else {
        return;
    };

    // First sign-in: the role requires a second factor, enrolled on the way.
    b.goto(&idp.t.url("/console/sign-in")).await;
    b.fill("input[name=name]", "soc-totp").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.submit("form#sign-in-password").await;
    b.wait_url("/console/sign-in/enrol").await;
    let secret = b.text("#totp-secret").await;
    assert!(b.text("#totp-uri").await.starts_with("otpauth://totp/"));
    // The QR code an authenticator app scans is drawn (inline SVG).
    assert!(b.exists("#totp-qr svg path").await);
    b.screenshot("sign-in-enrol").await;
    let code = totp_code(secret.trim(), idp.now()).unwrap();
    b.fill("input[name=code]", &code).await;
    b.submit("form#enrol").await;
    b.wait_for("#recovery-codes li").await;
    assert_eq!(b.texts("#recovery-codes li").await.len(), 10);
    b.click("a#continue").await;
    b.wait_url("/console/security").await;
    assert!(b.cookie("__Host-portier").await.is_some());
    b.close().await;

    // Next sign-in, in another browser: password, then a code of a later step.
    idp.clock.advance(Duration::seconds(61));
    let Some(b) = Browser::open("en", DESKTOP.0, DESKTOP.1).await else {
        return;
    };
    b.goto(&idp.t.url("/console/sign-in")).await;
    b.fill("input[name=name]", "soc-totp").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.submit("form#sign-in-password").await;
    b.wait_url("/console/sign-in/code").await;
    b.screenshot("sign-in-code").await;
    let code = totp_code(secret.trim(), idp.now()).unwrap();
    b.fill("input[name=code]", &code).await;
    b.submit("form#sign-in-code").await;
    b.wait_url("/console/security").await;
    b.goto(&idp.t.url("/console/account")).await;
    b.wait_for("form#change-password").await;
    b.close().await;
    idp.t.stop().await;
}
