//! Local passwords, the second factor and brute-force protection (issue 11):
//! the use cases on a manual clock, and the console's sign-in through them.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use portier::clock::{ManualClock, SharedClock};
use portier::domain::UserId;
use portier::ops::{totp_code, Actor, Ops, OpsError, PasswordSignIn, REFUSED};
use portier::store::User;

use crate::common::*;
use crate::console_support::ConsoleClient;
use crate::on_both_backends;

pub const PASSWORD: &str = "correct horse battery";

/// A node on a manual clock, with the use cases over its store.
pub struct Idp {
    pub t: TestApp,
    pub clock: Arc<ManualClock>,
    pub ops: Ops,
    admin: Actor,
}

impl Idp {
    pub async fn spawn(db: TestDb) -> Self {
        Self::spawn_with(db, "").await
    }

    /// [`Idp::spawn`] with more `[auth]` keys. The second factor is required
    /// of security and admin accounts (the product's default).
    pub async fn spawn_with(db: TestDb, auth: &str) -> Self {
        // 5 s into a 30 s step, so a code computed now is valid for a while.
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 5).unwrap()));
        let extra = format!("[auth]\nrequire_mfa = [\"security\", \"admin\"]\n{auth}");
        let t = TestApp::spawn_with(db, &extra, clock.clone()).await;
        let shared: SharedClock = clock.clone();
        let ops = Ops {
            cache: Arc::new(portier::admission::AdmissionCache::new(
                t.app.store.clone(),
                t.settings().policy_settings(),
                shared.clone(),
            )),
            store: t.app.store.clone(),
            registry: t.app.registry.clone(),
            clock: shared,
            rules: t.settings().api_limits(),
        };
        let admin = t
            .app
            .store
            .user_by_token_hash(&portier::token::hash(&t.admin), chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
        Self {
            t,
            clock,
            ops,
            admin: Actor::from(admin),
        }
    }

    async fn account(&self, role: &str, name: &str) -> User {
        self.t.token(role, name, None).await;
        self.t.app.store.user_by_name(name).await.unwrap().unwrap().0
    }

    /// An account with [`PASSWORD`] set by its owner.
    pub async fn with_password(&self, role: &str, name: &str) -> User {
        let user = self.account(role, name).await;
        self.ops
            .change_own_password(&Actor::from(user.clone()), None, PASSWORD)
            .await
            .unwrap();
        user
    }

    /// Enrols a TOTP secret for `user`; returns it and the recovery codes.
    pub async fn enrol(&self, user: &User) -> (String, Vec<String>) {
        let e = self.ops.new_totp(user);
        assert!(e.uri.starts_with("otpauth://totp/Portier%3A"), "{}", e.uri);
        let code = totp_code(&e.secret, self.now()).unwrap();
        let codes = self
            .ops
            .confirm_totp(&Actor::from(user.clone()), &e.secret, &code)
            .await
            .unwrap();
        (e.secret, codes)
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    /// Moves past any growing delay (not past a lockout).
    fn wait(&self) {
        self.clock.advance(Duration::seconds(61));
    }

    async fn password(&self, name: &str, password: &str) -> Result<PasswordSignIn, OpsError> {
        self.ops.sign_in_password(name, password, None).await
    }
}

use portier::clock::Clock;

fn pending(outcome: PasswordSignIn) -> String {
    match outcome {
        PasswordSignIn::NeedsSecondFactor(c) => c,
        other => panic!("expected a second factor to be due, got {other:?}"),
    }
}

fn refused(r: Result<PasswordSignIn, OpsError>) {
    match r {
        Err(OpsError::Unauthenticated(m)) => assert_eq!(m, REFUSED),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

async fn password_then_totp(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let user = idp.with_password("auditor", "aud-one").await;
    // No second factor, and the role does not require one: signed in at once.
    assert!(matches!(
        idp.password("aud-one", PASSWORD).await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));

    let (secret, recovery) = idp.enrol(&user).await;
    assert_eq!(recovery.len(), 10);
    // The enrolment's own code is spent: reused within its step, refused.
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    let enrol_code = totp_code(&secret, idp.now()).unwrap();
    refused(idp.ops.sign_in_second_factor(&c, &enrol_code, None).await);

    // A wrong code.
    idp.wait();
    let now_code = totp_code(&secret, idp.now()).unwrap();
    let wrong = if now_code == "000000" { "111111" } else { "000000" };
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    refused(idp.ops.sign_in_second_factor(&c, wrong, None).await);

    // An expired code (two steps old).
    idp.wait();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    let old = totp_code(&secret, idp.now() - Duration::seconds(70)).unwrap();
    if old != totp_code(&secret, idp.now()).unwrap() {
        refused(idp.ops.sign_in_second_factor(&c, &old, None).await);
    }

    // The right code, once.
    idp.wait();
    let code = totp_code(&secret, idp.now()).unwrap();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    let done = idp.ops.sign_in_second_factor(&c, &code, None).await.unwrap();
    assert!(matches!(done, PasswordSignIn::SignedIn(_)));
    // The pending sign-in is spent too.
    refused(idp.ops.sign_in_second_factor(&c, &code, None).await);
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    refused(idp.ops.sign_in_second_factor(&c, &code, None).await);

    // A recovery code works once (typed in capitals, without its dash).
    idp.wait();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    let typed = recovery[0].replace('-', "").to_uppercase();
    assert!(matches!(
        idp.ops.sign_in_second_factor(&c, &typed, None).await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));
    idp.wait();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    refused(idp.ops.sign_in_second_factor(&c, &recovery[0], None).await);
    idp.wait();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    assert!(matches!(
        idp.ops.sign_in_second_factor(&c, &recovery[1], None).await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));

    // A pending sign-in expires after 5 minutes.
    idp.wait();
    let c = pending(idp.password("aud-one", PASSWORD).await.unwrap());
    idp.clock.advance(Duration::minutes(6));
    let code = totp_code(&secret, idp.now()).unwrap();
    refused(idp.ops.sign_in_second_factor(&c, &code, None).await);
    idp.t.stop().await;
}
on_both_backends!(password_then_totp, super::password_then_totp);

async fn lockout_and_release(db: TestDb) {
    let idp = Idp::spawn_with(db, "source_lockout_after = 8\n").await;
    idp.with_password("auditor", "aud-lock").await;

    // Wrong password and unknown account: the same answer.
    let unknown = idp.password("nobody-here", "not the password!").await;
    idp.wait();
    let wrong = idp.password("aud-lock", "not the password!").await;
    assert_eq!(
        format!("{:?}", wrong.as_ref().err()),
        format!("{:?}", unknown.as_ref().err())
    );
    refused(wrong);

    // Right after a failure, even the right password waits (growing delay).
    refused(idp.password("aud-lock", PASSWORD).await);

    // lockout_after = 5 failures: the account is locked, right password or not.
    for _ in 0..4 {
        idp.wait();
        refused(idp.password("aud-lock", "not the password!").await);
    }
    idp.wait();
    refused(idp.password("aud-lock", PASSWORD).await);
    idp.clock.advance(Duration::minutes(10));
    refused(idp.password("aud-lock", PASSWORD).await);
    // Released once the failures are older than lockout_minutes (15).
    idp.clock.advance(Duration::minutes(6));
    assert!(matches!(
        idp.password("aud-lock", PASSWORD).await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));

    // Per source address: a site behind one NAT address is not locked as
    // fast as one name (here source_lockout_after = 8, lockout_after = 5)...
    let from: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    for i in 0..5 {
        idp.wait();
        refused(
            idp.ops
                .sign_in_password(&format!("guess-{i}"), "whatever-password", Some(from))
                .await,
        );
    }
    idp.wait();
    assert!(matches!(
        idp.ops
            .sign_in_password("aud-lock", PASSWORD, Some(from))
            .await
            .unwrap(),
        PasswordSignIn::SignedIn(_)
    ));
    // ... but failures on any names lock the address at its own threshold.
    for i in 5..8 {
        idp.wait();
        refused(
            idp.ops
                .sign_in_password(&format!("guess-{i}"), "whatever-password", Some(from))
                .await,
        );
    }
    idp.wait();
    refused(idp.ops.sign_in_password("aud-lock", PASSWORD, Some(from)).await);
    let elsewhere: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    assert!(matches!(
        idp.ops
            .sign_in_password("aud-lock", PASSWORD, Some(elsewhere))
            .await
            .unwrap(),
        PasswordSignIn::SignedIn(_)
    ));

    // Failures and lockouts are in the trail.
    let reader = idp.t.token("auditor", "aud-reader", None).await;
    let (st, body) = idp.t.call("GET", "/api/v1/audit", Some(&reader), None).await;
    assert_eq!(st, 200, "{body}");
    let text = body.to_string();
    assert!(text.contains("sign_in.failed"), "{text}");
    assert!(text.contains("sign_in.locked"), "{text}");
    // A name that is no account is not kept (it may be a password typed in
    // the wrong field).
    assert!(!text.contains("nobody-here") && !text.contains("guess-1"), "{text}");
    assert!(text.contains("account:unknown"), "{text}");
    assert!(text.contains("account:aud-lock"), "{text}");
    idp.t.stop().await;
}
on_both_backends!(lockout_and_release, super::lockout_and_release);

async fn mfa_enforced_for_security_and_admin(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let sec = idp.with_password("security", "sec-mfa").await;
    // No session before the enrolment the role requires.
    let c = match idp.password("sec-mfa", PASSWORD).await.unwrap() {
        PasswordSignIn::MustEnrol(c) => c,
        other => panic!("expected an enrolment, got {other:?}"),
    };
    // The pending cookie is no console session.
    assert!(idp.ops.console_session(&c, true, false).await.unwrap().is_none());
    // A TOTP step cannot be skipped with this cookie.
    refused(idp.ops.sign_in_second_factor(&c, "123456", None).await);
    let e = idp.ops.new_totp(&sec);
    let bad = idp.ops.sign_in_enrol(&c, &e.secret, "12345", None).await;
    assert!(matches!(bad, Err(OpsError::Invalid(_))), "{bad:?}");
    let code = totp_code(&e.secret, idp.now()).unwrap();
    let (done, codes) = idp.ops.sign_in_enrol(&c, &e.secret, &code, None).await.unwrap();
    assert!(matches!(done, PasswordSignIn::SignedIn(_)));
    assert_eq!(codes.len(), 10);
    // From now on, the second factor is asked.
    idp.wait();
    pending(idp.password("sec-mfa", PASSWORD).await.unwrap());

    // Admin too.
    idp.with_password("admin", "adm-mfa").await;
    assert!(matches!(
        idp.password("adm-mfa", PASSWORD).await.unwrap(),
        PasswordSignIn::MustEnrol(_)
    ));
    idp.t.stop().await;
}
on_both_backends!(
    mfa_enforced_for_security_and_admin,
    super::mfa_enforced_for_security_and_admin
);

async fn argon2id_and_admin_reset(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let user = idp.with_password("auditor", "aud-reset").await;
    let hash = idp
        .t
        .app
        .store
        .credentials(&user.id)
        .await
        .unwrap()
        .password_hash
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m="), "{hash}");
    assert!(hash.contains(",t=") && hash.contains(",p="), "{hash}");
    assert!(!hash.contains(PASSWORD));

    // Too short.
    let short = idp
        .ops
        .change_own_password(&Actor::from(user.clone()), Some(PASSWORD), "short-pw")
        .await;
    assert!(matches!(short, Err(OpsError::Invalid(_))), "{short:?}");
    // Only an admin resets.
    let not_admin = idp.ops.reset_password(&Actor::from(user.clone()), &user.id).await;
    assert!(matches!(not_admin, Err(OpsError::Forbidden(_))), "{not_admin:?}");

    let temporary = idp.ops.reset_password(&idp.admin, &user.id).await.unwrap();
    refused(idp.password("aud-reset", PASSWORD).await);
    idp.wait();
    let c = match idp.password("aud-reset", &temporary).await.unwrap() {
        PasswordSignIn::MustChangePassword(c) => c,
        other => panic!("expected a forced change, got {other:?}"),
    };
    let same = idp.ops.sign_in_change_password(&c, &temporary, None).await;
    assert!(matches!(same, Err(OpsError::Invalid(_))), "{same:?}");
    let done = idp
        .ops
        .sign_in_change_password(&c, "a brand new passphrase", None)
        .await
        .unwrap();
    assert!(matches!(done, PasswordSignIn::SignedIn(_)));
    idp.wait();
    refused(idp.password("aud-reset", &temporary).await);
    idp.wait();
    assert!(matches!(
        idp.password("aud-reset", "a brand new passphrase").await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));
    let unknown = idp.ops.reset_password(&idp.admin, &UserId("usr_nope".into())).await;
    assert!(unknown.is_err());

    // A directory account has no local password: neither its owner nor an
    // admin sets one (the directory's password is the only one).
    let dir_user = idp.account("auditor", "aud-directory").await;
    idp.t
        .app
        .store
        .set_directory_account(
            &dir_user.id,
            "uid=aud-directory,ou=people,dc=example,dc=org",
            portier::domain::Role::Auditor,
            &|_| test_effects(),
        )
        .await
        .unwrap();
    let own = idp
        .ops
        .change_own_password(&Actor::from(dir_user.clone()), None, "a local passphrase")
        .await;
    assert!(matches!(own, Err(OpsError::Conflict(_))), "{own:?}");
    let reset = idp.ops.reset_password(&idp.admin, &dir_user.id).await;
    assert!(matches!(reset, Err(OpsError::Conflict(_))), "{reset:?}");
    idp.t.stop().await;
}
on_both_backends!(argon2id_and_admin_reset, super::argon2id_and_admin_reset);

async fn console_password_and_totp(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let sec = idp.with_password("security", "sec-console").await;
    let (secret, _) = idp.enrol(&sec).await;
    idp.wait();

    let mut b = ConsoleClient::anonymous(&idp.t);
    let (st, body) = b.get("/console/sign-in").await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(r#"action="/console/sign-in/password""#), "{body}");
    // A wrong password: the one message, no pending cookie.
    let (st, body) = b
        .post(
            "/console/sign-in/password",
            &[("name", "sec-console"), ("password", "wrong password!!")],
        )
        .await;
    assert_eq!(st, 401, "{body}");
    assert!(b.cookie("__Host-portier-pending").is_none());
    idp.wait();
    let (st, body) = b
        .post(
            "/console/sign-in/password",
            &[("name", "sec-console"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(b.path.starts_with("/console/sign-in/code"), "{}", b.path);
    assert!(b.cookie("__Host-portier").is_none(), "no session before the code");
    // The TOTP page is not a session: console pages still send to sign-in.
    let code = totp_code(&secret, idp.now()).unwrap();
    let (st, body) = b.post("/console/sign-in/code", &[("code", &code)]).await;
    assert_eq!(st, 200, "{body}");
    assert!(b.cookie("__Host-portier").is_some(), "{body}");
    assert_eq!(b.path, "/console/security");
    // The account page.
    let (st, body) = b.get("/console/account").await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("change-password"), "{body}");
    idp.t.stop().await;
}
on_both_backends!(console_password_and_totp, super::console_password_and_totp);

/// An admin's resets (lost phone, forgotten password) through the API, the
/// list of accounts with their sign-in methods, and who may reset whom.
async fn admin_resets_and_account_list(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let sec = idp.with_password("security", "sec-lost-phone").await;
    let (secret, _) = idp.enrol(&sec).await;
    idp.wait();
    let c = pending(idp.password("sec-lost-phone", PASSWORD).await.unwrap());
    let code = totp_code(&secret, idp.now()).unwrap();
    let session = match idp.ops.sign_in_second_factor(&c, &code, None).await.unwrap() {
        PasswordSignIn::SignedIn(s) => s.cookie,
        other => panic!("expected a session, got {other:?}"),
    };
    let admin = idp.t.admin.clone();
    let row = |list: &serde_json::Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {list}"))
    };
    let (st, list) = idp.t.call("GET", "/api/v1/users", Some(&admin), None).await;
    assert_eq!(st, 200, "{list}");
    let r = row(&list, "sec-lost-phone");
    assert_eq!(
        (r["sign_in"].as_str(), r["mfa"].as_bool()),
        (Some("password"), Some(true)),
        "{r}"
    );
    assert_eq!(r["must_change_password"], false);
    assert!(r["last_sign_in_at"].is_string(), "{r}");

    // Only an admin, and never on their own account.
    let other = idp.t.token("security", "sec-other", None).await;
    let path = format!("/api/v1/users/{}/reset-mfa", sec.id);
    let (st, body) = idp.t.call("POST", &path, Some(&other), None).await;
    assert_eq!(st, 403, "{body}");
    let own = format!("/api/v1/users/{}/reset-mfa", idp.admin.id);
    let (st, body) = idp.t.call("POST", &own, Some(&admin), None).await;
    assert_eq!(st, 403, "{body}");
    let own = format!("/api/v1/users/{}/reset-password", idp.admin.id);
    let (st, body) = idp.t.call("POST", &own, Some(&admin), None).await;
    assert_eq!(st, 403, "{body}");

    // The lost phone: the second factor goes, and so does the open session.
    let (st, body) = idp.t.call("POST", &path, Some(&admin), None).await;
    assert_eq!(st, 200, "{body}");
    assert!(idp.ops.console_session(&session, true, false).await.unwrap().is_none());
    let (st, body) = idp.t.call("POST", &path, Some(&admin), None).await;
    assert_eq!(st, 409, "{body}");
    // The role requires one: the next sign-in enrols again.
    idp.wait();
    assert!(matches!(
        idp.password("sec-lost-phone", PASSWORD).await.unwrap(),
        PasswordSignIn::MustEnrol(_)
    ));

    // The forgotten password: a temporary one, shown once, never cached.
    let path = format!("/api/v1/users/{}/reset-password", sec.id);
    let resp = idp
        .t
        .http
        .post(idp.t.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    let temporary = body["temporary_password"].as_str().unwrap().to_owned();
    assert_eq!(temporary.len(), portier::ops::TEMPORARY_PASSWORD_LEN);
    assert_eq!(body["must_change"], true);
    let (_, list) = idp.t.call("GET", "/api/v1/users", Some(&admin), None).await;
    let r = row(&list, "sec-lost-phone");
    assert_eq!(
        (r["mfa"].as_bool(), r["must_change_password"].as_bool()),
        (Some(false), Some(true)),
        "{r}"
    );
    idp.wait();
    assert!(matches!(
        idp.password("sec-lost-phone", &temporary).await.unwrap(),
        PasswordSignIn::MustChangePassword(_)
    ));
    let r = row(&list, "sec-other");
    assert_eq!(r["sign_in"], "none", "{r}");

    // Both resets are in the trail, by the admin.
    let reader = idp.t.token("auditor", "aud-resets", None).await;
    let (_, trail) = idp.t.call("GET", "/api/v1/audit", Some(&reader), None).await;
    let text = trail.to_string();
    assert!(
        text.contains("user.mfa_reset") && text.contains("user.password_reset"),
        "{text}"
    );
    idp.t.stop().await;
}
on_both_backends!(admin_resets_and_account_list, super::admin_resets_and_account_list);

/// The API accepts a console session like a token; a change made with it
/// needs the session's CSRF token, so another site cannot ride the cookie.
async fn api_accepts_console_sessions(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let sec = t.token("security", "sec-api-cookie", None).await;
    let mut b = ConsoleClient::sign_in(&t, &sec).await;
    let (st, me) = b.api("GET", "/api/v1/me", None, &[]).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["name"], "sec-api-cookie");
    let lockdown = serde_json::json!({"reason": "cookie-riding attempt"});
    let (st, body) = b.api("POST", "/api/v1/lockdown", Some(lockdown.clone()), &[]).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("X-Portier-CSRF"),
        "{body}"
    );
    let (st, body) = b
        .api(
            "POST",
            "/api/v1/lockdown",
            Some(lockdown.clone()),
            &[("x-portier-csrf", "wrong")],
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, page) = b.get("/console/security").await;
    assert_eq!(st, 200, "{page}");
    let csrf = b.csrf().unwrap().to_owned();
    let (st, body) = b
        .api("POST", "/api/v1/lockdown", Some(lockdown), &[("x-portier-csrf", &csrf)])
        .await;
    assert!(st == 200 || st == 201, "{st} {body}");
    let lift = serde_json::json!({"reason": "test over"});
    let (st, body) = t.call("DELETE", "/api/v1/lockdown", Some(&sec), Some(lift)).await;
    assert!(st < 300, "{st} {body}");
    // After sign-out the cookie is nothing.
    let (st, _) = b.post("/console/sign-out", &[]).await;
    assert!(st < 400, "{st}");
    let (st, body) = b.api("GET", "/api/v1/me", None, &[]).await;
    assert_eq!(st, 401, "{body}");
    t.stop().await;
}
on_both_backends!(api_accepts_console_sessions, super::api_accepts_console_sessions);

/// A right password does not reset the failures wrong codes made: guessing
/// codes with a password between every few tries still locks the name.
async fn codes_cannot_be_guessed_between_passwords(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let aud = idp.with_password("auditor", "aud-guess").await;
    let (secret, _) = idp.enrol(&aud).await;
    let right = totp_code(&secret, idp.now()).unwrap();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        idp.wait();
        let c = pending(idp.password("aud-guess", PASSWORD).await.unwrap());
        idp.wait();
        refused(idp.ops.sign_in_second_factor(&c, wrong, None).await);
        idp.wait();
        refused(idp.ops.sign_in_second_factor(&c, wrong, None).await);
    }
    // Four wrong codes, then a fifth after a right password: locked.
    idp.wait();
    let c = pending(idp.password("aud-guess", PASSWORD).await.unwrap());
    idp.wait();
    refused(idp.ops.sign_in_second_factor(&c, wrong, None).await);
    idp.wait();
    refused(idp.password("aud-guess", PASSWORD).await);
    // Released after the lockout; a completed sign-in then clears the count.
    idp.clock.advance(Duration::minutes(16));
    let c = pending(idp.password("aud-guess", PASSWORD).await.unwrap());
    let code = totp_code(&secret, idp.now()).unwrap();
    assert!(matches!(
        idp.ops.sign_in_second_factor(&c, &code, None).await.unwrap(),
        PasswordSignIn::SignedIn(_)
    ));
    idp.t.stop().await;
}
on_both_backends!(
    codes_cannot_be_guessed_between_passwords,
    super::codes_cannot_be_guessed_between_passwords
);

/// A token is a first factor only: a role that requires a second factor
/// enrols or gives its code before a console session opens, as after a
/// password; and a pending reset is finished with the temporary password.
async fn token_sign_in_asks_the_second_factor(db: TestDb) {
    let idp = Idp::spawn(db).await;
    let token = idp.t.token("security", "sec-token-mfa", None).await;
    let mut b = ConsoleClient::anonymous(&idp.t);
    b.get("/console/sign-in").await;
    let (st, body) = b.post("/console/sign-in", &[("token", &token)]).await;
    assert_eq!(st, 200, "{body}");
    assert!(b.path.starts_with("/console/sign-in/enrol"), "{}", b.path);
    assert!(b.cookie("__Host-portier").is_none(), "no session before the enrolment");
    // Enrolled, the code is asked.
    let user = idp.t.app.store.user_by_name("sec-token-mfa").await.unwrap().unwrap().0;
    let (secret, _) = idp.enrol(&user).await;
    idp.clock.advance(Duration::seconds(30));
    let mut b = ConsoleClient::anonymous(&idp.t);
    b.get("/console/sign-in").await;
    b.post("/console/sign-in", &[("token", &token)]).await;
    assert!(b.path.starts_with("/console/sign-in/code"), "{}", b.path);
    let code = totp_code(&secret, idp.now()).unwrap();
    let (st, body) = b.post("/console/sign-in/code", &[("code", &code)]).await;
    assert_eq!(st, 200, "{body}");
    assert!(b.cookie("__Host-portier").is_some(), "{body}");
    // An auditor (no second factor required or enrolled) goes straight in.
    let aud = idp.t.token("auditor", "aud-token", None).await;
    let b = ConsoleClient::sign_in(&idp.t, &aud).await;
    assert!(b.cookie("__Host-portier").is_some());
    // After an admin's reset, the token does not open the console.
    let aud_id = idp.t.app.store.user_by_name("aud-token").await.unwrap().unwrap().0.id;
    idp.ops.reset_password(&idp.admin, &aud_id).await.unwrap();
    let mut b = ConsoleClient::anonymous(&idp.t);
    b.get("/console/sign-in").await;
    let (st, body) = b.post("/console/sign-in", &[("token", &aud)]).await;
    assert_eq!(st, 409, "{body}");
    assert!(b.cookie("__Host-portier").is_none());
    idp.t.stop().await;
}
on_both_backends!(
    token_sign_in_asks_the_second_factor,
    super::token_sign_in_asks_the_second_factor
);

/// Parallel attempts on one name do not all pass the throttle: the first is
/// checked (and counted), the others find its delay and are refused unseen.
async fn parallel_guesses_are_throttled_one_by_one(db: TestDb) {
    let idp = Idp::spawn(db).await;
    idp.with_password("auditor", "aud-burst").await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let ops = idp.ops.clone();
            tokio::spawn(async move {
                ops.sign_in_password("aud-burst", &format!("guess number {i}"), None)
                    .await
            })
        })
        .collect();
    for attempt in attempts {
        refused(attempt.await.unwrap());
    }
    let since = idp.now() - Duration::minutes(15);
    let (failures, _) = idp
        .t
        .app
        .store
        .sign_in_failures("account:aud-burst", since)
        .await
        .unwrap();
    assert_eq!(failures, 1, "only the first of a burst is tried");
    idp.t.stop().await;
}
on_both_backends!(
    parallel_guesses_are_throttled_one_by_one,
    super::parallel_guesses_are_throttled_one_by_one
);
