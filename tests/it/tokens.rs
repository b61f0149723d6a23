//! Personal API tokens and the account lifecycle (issue 11): expiry on the
//! product's clock, revocation at once (on a second node too), last use,
//! shown once and listed by prefix, owner and admin rights, disabled accounts,
//! the bootstrap token's expiry, re-used names, and the CLI's twin commands.

use std::sync::Arc;

use chrono::{Duration, Utc};
use portier::clock::{Clock, ManualClock, SharedClock, SystemClock};
use portier::ops::{Actor, Ops};
use portier::store::AuditFilter;
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

async fn status(t: &TestApp, token: &str) -> u16 {
    t.call("GET", "/api/v1/me", Some(token), None).await.0
}

/// The id of the account named `name`, through the API.
async fn account(t: &TestApp, name: &str) -> Value {
    let (st, users) = t.call("GET", "/api/v1/users", Some(&t.admin), None).await;
    assert_eq!(st, 200, "{users}");
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no account {name}: {users}"))
        .clone()
}

async fn events(t: &TestApp, action: &str) -> Vec<portier::audit::AuditRecord> {
    t.app
        .store
        .list_audit(&AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn expiry_last_use_and_listing(db: TestDb) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with(db, "", clock.clone() as SharedClock).await;
    let soc = t.token("security", "soc", None).await;
    let (st, created) = t
        .call(
            "POST",
            "/api/v1/tokens",
            Some(&soc),
            Some(json!({"name": "nightly export", "expires_in_days": 7})),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ptk_") && secret.len() == 68, "{secret}");
    assert_eq!(created["prefix"], secret[..10]);
    assert_eq!(status(&t, &secret).await, 200);

    // Listed by prefix, with its last use and expiry; the secret never again.
    let (st, list) = t.call("GET", "/api/v1/tokens", Some(&soc), None).await;
    assert_eq!(st, 200, "{list}");
    assert!(!list.to_string().contains(&secret[10..]), "{list}");
    assert!(!list.to_string().contains(&soc[10..]), "{list}");
    let tokens = list.as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{list}");
    let export = tokens.iter().find(|t| t["name"] == "nightly export").unwrap();
    assert_eq!(export["prefix"], secret[..10]);
    assert!(export["last_used_at"].is_string(), "{export}");
    assert!(export["revoked_at"].is_null());
    let expires: chrono::DateTime<Utc> = export["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (expires - (clock.now() + Duration::days(7))).num_seconds().abs() < 5,
        "{expires}"
    );
    let initial = tokens.iter().find(|t| t["name"] == "initial").unwrap();
    assert_eq!(initial["prefix"], soc[..10]);

    // Expiry: 1 to max_token_days (365) days.
    for days in [0, -1, 366] {
        let (st, body) = t
            .call(
                "POST",
                "/api/v1/tokens",
                Some(&soc),
                Some(json!({"name": "x", "expires_in_days": days})),
            )
            .await;
        assert_eq!(st, 422, "{days}: {body}");
    }

    // Expired on the product's clock: 401; the 90-day initial token still works.
    clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(status(&t, &secret).await, 401);
    assert_eq!(status(&t, &soc).await, 200);
    assert_eq!(account(&t, "soc").await["live_tokens"], 1);
    clock.advance(Duration::days(83));
    assert_eq!(
        status(&t, &soc).await,
        401,
        "the initial token expires after token_days"
    );
    assert_eq!(events(&t, "token.created").await.len(), 1);
    t.stop().await;
}
on_both_backends!(expiry_last_use_and_listing, super::expiry_last_use_and_listing);

async fn owner_or_admin_revokes(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let alice = t.token("security", "alice", None).await;
    let bob = t.token("security", "bob", None).await;
    let (_, created) = t
        .call("POST", "/api/v1/tokens", Some(&alice), Some(json!({"name": "script"})))
        .await;
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
    let path = format!("/api/v1/tokens/{id}");
    // Another non-admin may neither revoke nor list it.
    assert_eq!(t.call("DELETE", &path, Some(&bob), None).await.0, 403);
    let alice_id = account(&t, "alice").await["id"].as_str().unwrap().to_owned();
    let bob_id = account(&t, "bob").await["id"].as_str().unwrap().to_owned();
    let (st, _) = t
        .call("GET", &format!("/api/v1/tokens?user_id={alice_id}"), Some(&bob), None)
        .await;
    assert_eq!(st, 403);
    assert_eq!(status(&t, &secret).await, 200);

    // The owner revokes: 401 at once; a second revocation is a conflict.
    let (st, revoked) = t.call("DELETE", &path, Some(&alice), None).await;
    assert_eq!(st, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(status(&t, &secret).await, 401);
    assert_eq!(status(&t, &alice).await, 200, "only that token");
    let (st, body) = t.call("DELETE", &path, Some(&alice), None).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(t.call("DELETE", "/api/v1/tokens/nope", Some(&alice), None).await.0, 404);

    // An admin lists and revokes anyone's.
    let (st, list) = t
        .call("GET", &format!("/api/v1/tokens?user_id={bob_id}"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200, "{list}");
    let bob_initial = list[0]["id"].as_str().unwrap().to_owned();
    let (st, _) = t
        .call("DELETE", &format!("/api/v1/tokens/{bob_initial}"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(status(&t, &bob).await, 401);
    let revocations = events(&t, "token.revoked").await;
    assert_eq!(revocations.len(), 2, "{revocations:?}");
    assert_eq!(account(&t, "bob").await["live_tokens"], 0);
    t.stop().await;
}
on_both_backends!(owner_or_admin_revokes, super::owner_or_admin_revokes);

async fn disabled_account_tokens_stop_and_enable_restores(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let aud = t.token("auditor", "aud", None).await;
    let (_, created) = t
        .call("POST", "/api/v1/tokens", Some(&aud), Some(json!({"name": "report"})))
        .await;
    let second = created["token"].as_str().unwrap().to_owned();
    let view = account(&t, "aud").await;
    assert_eq!(view["state"], "active");
    assert_eq!(view["live_tokens"], 2);
    let id = view["id"].as_str().unwrap().to_owned();
    let console = crate::console_support::ConsoleClient::sign_in(&t, &aud).await;
    let session = portier::token::hash(console.cookie("__Host-portier").unwrap());
    assert!(t.app.store.console_session(&session).await.unwrap().is_some());
    assert!(account(&t, "aud").await["last_sign_in_at"].is_string());

    let (st, _) = t
        .call("POST", &format!("/api/v1/users/{id}/disable"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200);
    // Its console session is ended (not merely refused): enabling does not revive it.
    assert!(t.app.store.console_session(&session).await.unwrap().is_none());
    assert_eq!(status(&t, &aud).await, 401);
    assert_eq!(status(&t, &second).await, 401);
    assert_eq!(account(&t, "aud").await["state"], "disabled");
    let (st, user) = t
        .call("POST", &format!("/api/v1/users/{id}/enable"), Some(&aud), None)
        .await;
    assert_eq!(st, 401, "{user}");
    let (st, user) = t
        .call("POST", &format!("/api/v1/users/{id}/enable"), Some(&t.admin), None)
        .await;
    assert_eq!(st, 200, "{user}");
    assert!(user["disabled_at"].is_null());
    assert_eq!(status(&t, &aud).await, 200);
    assert_eq!(status(&t, &second).await, 200);
    assert_eq!(events(&t, "user.enabled").await.len(), 1);
    assert_eq!(events(&t, "user.disabled").await.len(), 1);
    t.stop().await;
}
on_both_backends!(
    disabled_account_tokens_stop_and_enable_restores,
    super::disabled_account_tokens_stop_and_enable_restores
);

async fn reused_name_answers_409_in_words(db: TestDb) {
    let t = TestApp::spawn(db).await;
    t.token("security", "soc", None).await;
    let (st, body) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "soc", "role": "auditor", "email": "soc@example.org"})),
        )
        .await;
    assert_eq!(st, 409, "{body}");
    let text = body.to_string();
    assert!(text.contains("an account named \\\"soc\\\" already exists"), "{text}");
    for raw in ["UNIQUE", "api_users", "constraint", "_key"] {
        assert!(!text.contains(raw), "{text}");
    }
    // The e-mail address is kept and listed.
    let (st, _) = t
        .call(
            "POST",
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "jeanne", "role": "auditor", "email": "jeanne@example.org"})),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(account(&t, "jeanne").await["email"], "jeanne@example.org");
    t.stop().await;
}
on_both_backends!(
    reused_name_answers_409_in_words,
    super::reused_name_answers_409_in_words
);

/// The use cases as `init` runs them, on the node's clock.
fn ops(t: &TestApp, clock: SharedClock) -> Ops {
    Ops {
        cache: Arc::new(portier::admission::AdmissionCache::new(
            t.app.store.clone(),
            t.settings().policy_settings(),
            clock.clone(),
        )),
        store: t.app.store.clone(),
        registry: t.app.registry.clone(),
        clock,
        rules: t.settings().api_limits(),
    }
}

async fn bootstrap_token_expires_after_a_day(db: TestDb) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with(db, "", clock.clone() as SharedClock).await;
    let created = ops(&t, clock.clone() as SharedClock)
        .create_bootstrap_admin(&Actor::cli("init"), "bootstrap-admin")
        .await
        .unwrap();
    assert_eq!(
        created.expires_at,
        Some(clock.now() + Duration::hours(24)),
        "[auth] bootstrap_token_hours"
    );
    assert_eq!(status(&t, &created.token).await, 200);
    clock.advance(Duration::hours(24) - Duration::seconds(1));
    assert_eq!(status(&t, &created.token).await, 200);
    clock.advance(Duration::seconds(1));
    assert_eq!(status(&t, &created.token).await, 401);
    t.stop().await;
}
on_both_backends!(
    bootstrap_token_expires_after_a_day,
    super::bootstrap_token_expires_after_a_day
);

#[test]
fn init_says_when_the_bootstrap_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let run = |json: bool, name: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portier"));
        cmd.arg("init");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg("--dir").arg(dir.path().join(name)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let v: Value = serde_json::from_str(&run(true, "a")).unwrap();
    let at: chrono::DateTime<Utc> = v["admin_token_expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        ((at - Utc::now()) - Duration::hours(24)).num_seconds().abs() < 60,
        "{at}"
    );
    let text = run(false, "b");
    assert!(
        text.contains("It expires at") && text.contains("or when revoked"),
        "{text}"
    );
}

/// Revoked through node A, refused by node B at once (tokens are looked up
/// on every call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_on_the_other() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let a = TestApp::spawn_config(db, "gateway.node = \"a\"\n", "", clock.clone()).await;
    let mut settings = a.settings().clone();
    settings.gateway.node = "b".into();
    let b = portier::app::App::start_with_clock(&settings, clock).await.unwrap();
    let soc = a.token("security", "soc", None).await;
    let (_, created) = a
        .call("POST", "/api/v1/tokens", Some(&soc), Some(json!({"name": "script"})))
        .await;
    let secret = created["token"].as_str().unwrap().to_owned();
    let on_b = |token: String| {
        let req = a
            .http
            .get(format!("https://localhost:{}/api/v1/me", b.api_addr.port()))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(on_b(secret.clone()).await, 200);
    let path = format!("/api/v1/tokens/{}", created["id"].as_str().unwrap());
    assert_eq!(a.call("DELETE", &path, Some(&soc), None).await.0, 200);
    assert_eq!(on_b(secret.clone()).await, 401);
    assert_eq!(status(&a, &secret).await, 401);
    b.stop().await;
    a.stop().await;
}

/// Runs `portier <args> --config <the node's configuration>`; asserts success.
async fn portier(t: &TestApp, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portier"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PORTIER_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .args(args)
        .arg("--config")
        .arg(t.dir.path().join("portier.toml"))
        .env("USER", "operator")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "portier {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn cli_and_api_record_the_same_token_events(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let soc = t.token("security", "soc", None).await;
    // API: the owner creates and revokes a token.
    let (_, created) = t
        .call("POST", "/api/v1/tokens", Some(&soc), Some(json!({"name": "api-made"})))
        .await;
    let api_id = created["id"].as_str().unwrap().to_owned();
    let (st, _) = t
        .call("DELETE", &format!("/api/v1/tokens/{api_id}"), Some(&soc), None)
        .await;
    assert_eq!(st, 200);
    // CLI: a token for the same account, listed, used, revoked.
    let secret = portier(
        &t,
        &["token", "create", "--user", "soc", "--name", "cli-made", "--days", "3"],
    )
    .await;
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("ptk_"), "{secret}");
    assert_eq!(status(&t, &secret).await, 200);
    let listed = portier(&t, &["token", "list", "--user", "soc"]).await;
    assert!(
        listed.contains(&secret[..10]) && listed.contains("cli-made"),
        "{listed}"
    );
    assert!(!listed.contains(&secret[10..]), "{listed}");
    let cli_id = listed
        .lines()
        .find(|l| l.contains("cli-made"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    portier(&t, &["token", "revoke", &cli_id]).await;
    assert_eq!(status(&t, &secret).await, 401);
    // `account create`, and the older `token create --role` alias.
    let acct = portier(&t, &["account", "create", "--role", "auditor", "--name", "aud"]).await;
    assert_eq!(status(&t, acct.trim()).await, 200);

    for action in ["token.created", "token.revoked"] {
        let all = events(&t, action).await;
        assert_eq!(all.len(), 2, "{action}: {all:?}");
        let keys = |e: &portier::audit::AuditRecord| {
            let v: Value = serde_json::from_str(&e.details).unwrap();
            v.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(keys(&all[0]), keys(&all[1]), "{all:?}");
        assert!(all.iter().any(|e| e.actor == "cli:operator"), "{all:?}");
        assert!(all.iter().any(|e| e.object == api_id) && all.iter().any(|e| e.object == cli_id));
    }
    t.stop().await;
}
on_both_backends!(
    cli_and_api_record_the_same_token_events,
    super::cli_and_api_record_the_same_token_events
);

/// An account from before 0008 keeps its token: copied as "initial", without
/// expiry, and found through the token table.
#[tokio::test]
async fn existing_tokens_survive_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&migrations).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0008" {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("portier.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let (token, hash) = portier::token::generate();
    sqlx::query("INSERT INTO api_users (id, name, role, token_sha256, created_at) VALUES ('u1', 'ops', 'admin', ?, 0)")
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = portier::store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let far = Utc::now() + Duration::days(10_000);
    let user = store
        .user_by_token_hash(&portier::token::hash(&token), far)
        .await
        .unwrap();
    assert_eq!(user.map(|u| u.name).as_deref(), Some("ops"));
    let tokens = store.list_api_tokens(None).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!((tokens[0].name.as_str(), tokens[0].expires_at), ("initial", None));
    assert!(tokens[0].last_used_at.is_some(), "the use above is noted");
}
