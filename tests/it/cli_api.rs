//! Each command-line use case and its API twin record the same audit event
//! (issue 9: both go through the one use-case layer, so they cannot drift; the
//! CLI once recorded `token.created` where the API recorded `user.created`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use portier::audit::AuditRecord;
use portier::store::AuditFilter;
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// The account the CLI runs as (recorded as `cli:<USER>`).
const OPERATOR: &str = "operator";

/// The node's configuration, with a lockdown file of the CLI's own so that the
/// running node does not follow (and store) the CLI's lockdowns itself.
fn cli_config(t: &TestApp) -> PathBuf {
    let text = std::fs::read_to_string(t.dir.path().join("portier.toml")).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let gateway = doc
        .entry("gateway")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    gateway.insert("lockdown_file".into(), toml::Value::String("cli-lockdown".into()));
    let path = t.dir.path().join("cli.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// Runs `portier <args> --config <cli config>`; asserts success.
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
        .arg(cli_config(t))
        .env("USER", OPERATOR)
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

async fn events(t: &TestApp, action: &str) -> Vec<AuditRecord> {
    t.app
        .store
        .list_audit(&AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

fn details(e: &AuditRecord) -> Value {
    serde_json::from_str(&e.details).unwrap()
}

/// The keys of an event's details, less those named in `except`.
fn keys(e: &AuditRecord, except: &[&str]) -> BTreeSet<String> {
    details(e)
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !except.contains(&k.as_str()))
        .cloned()
        .collect()
}

async fn token_create_and_post_users_record_the_same_event(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(json!({"name": "Acme", "networks": ["127.0.0.2"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let vendor_id = v["id"].as_str().unwrap().to_owned();
    for (role, vendor) in [("security", None), ("vendor", Some(vendor_id.as_str()))] {
        let api_name = format!("{role}-api");
        let cli_name = format!("{role}-cli");
        let (st, created) = t
            .call(
                "POST",
                "/api/v1/users",
                Some(&t.admin),
                Some(json!({"name": api_name, "role": role, "vendor_id": vendor})),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let mut args = vec!["token", "create", "--role", role, "--name", &cli_name];
        if let Some(v) = vendor {
            args.extend(["--vendor", v]);
        }
        let token = portier(&t, &args).await;
        assert!(token.trim().starts_with("ptk_"), "{token}");

        let all = events(&t, "user.created").await;
        let by_name = |name: &str| {
            all.iter()
                .find(|e| details(e)["name"] == name)
                .unwrap_or_else(|| panic!("no user.created event for {name}: {all:?}"))
                .clone()
        };
        let (api, cli) = (by_name(&api_name), by_name(&cli_name));
        assert_eq!(api.action, cli.action);
        assert_eq!(api.outcome, cli.outcome);
        assert_eq!(keys(&api, &[]), keys(&cli, &[]), "{api:?} / {cli:?}");
        for k in ["role", "vendor_id"] {
            assert_eq!(details(&api)[k], details(&cli)[k], "{k}");
        }
        // Both name the created account as the object, and the caller as the actor.
        let users = t.app.store.list_users().await.unwrap();
        let id_of = |name: &str| users.iter().find(|u| u.name == name).unwrap().id.0.clone();
        assert_eq!(api.object, id_of(&api_name));
        assert_eq!(cli.object, id_of(&cli_name));
        assert_eq!(api.object, created["id"].as_str().unwrap());
        assert_eq!(cli.actor, format!("cli:{OPERATOR}"));
        assert_ne!(api.actor, cli.actor);
    }
    let chain = portier::audit::verify_store(t.app.store.as_ref(), |_| {})
        .await
        .unwrap();
    assert!(chain.valid, "{chain:?}");
    t.stop().await;
}
on_both_backends!(
    token_create_and_post_users_record_the_same_event,
    super::token_create_and_post_users_record_the_same_event
);

async fn lockdown_on_off_and_the_lockdown_api_record_the_same_events(db: TestDb) {
    let t = TestApp::spawn(db).await;
    let security = t.token("security", "soc", None).await;
    let (st, v) = t
        .call(
            "POST",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "api drill"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = t
        .call(
            "DELETE",
            "/api/v1/lockdown",
            Some(&security),
            Some(json!({"reason": "api lift"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    portier(&t, &["lockdown", "on", "--reason", "cli drill"]).await;
    let (_, state) = t.call("GET", "/api/v1/lockdown", Some(&security), None).await;
    assert_eq!(state["active"], true, "{state}");
    portier(&t, &["lockdown", "off", "--reason", "cli lift"]).await;
    let (_, state) = t.call("GET", "/api/v1/lockdown", Some(&security), None).await;
    assert_eq!(state["active"], false, "{state}");

    for (action, api_reason, cli_reason) in [
        ("lockdown.on", "api drill", "cli drill"),
        ("lockdown.off", "api lift", "cli lift"),
    ] {
        let all = events(&t, action).await;
        assert_eq!(all.len(), 2, "one {action} each: {all:?}");
        let by_reason = |r: &str| {
            all.iter()
                .find(|e| details(e)["reason"] == r)
                .unwrap_or_else(|| panic!("no {action} event with reason {r:?}: {all:?}"))
                .clone()
        };
        let (api, cli) = (by_reason(api_reason), by_reason(cli_reason));
        assert_eq!(api.action, cli.action);
        assert_eq!(api.object, cli.object);
        assert_eq!(api.outcome, cli.outcome);
        assert_eq!(keys(&api, &[]), keys(&cli, &[]), "{api:?} / {cli:?}");
        assert_eq!(details(&api)["via"], "api");
        assert_eq!(details(&cli)["via"], "cli");
        assert_eq!(cli.actor, format!("cli:{OPERATOR}"));
    }
    let chain = portier::audit::verify_store(t.app.store.as_ref(), |_| {})
        .await
        .unwrap();
    assert!(chain.valid, "{chain:?}");
    t.stop().await;
}
on_both_backends!(
    lockdown_on_off_and_the_lockdown_api_record_the_same_events,
    super::lockdown_on_off_and_the_lockdown_api_record_the_same_events
);
