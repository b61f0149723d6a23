//! Secrets at rest (issue 13, docs/secrets.md), with the real binary: `init`
//! under a master key leaves no private key in clear and the node serves (API
//! over TLS, a technician certificate signed by the decrypted vendor CA, a
//! tunnel through the gateway); a wrong or missing key stops the start with a
//! message naming what does not decrypt; `secrets rotate` moves everything to
//! a new key, the node serves with it and the old key no longer works; TOTP
//! secrets are stored encrypted for their account and sign-in still works.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use portier::clock::{Clock, ManualClock, SharedClock};
use portier::domain::Role;
use portier::ops::{totp_code, Actor, Ops, OpsError, PasswordSignIn};
use portier::secrets::envelope;
use portier::secrets::{master_key, AtRest};
use portier::store::Store;
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

/// How long a node may take to start.
const START_WITHIN: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";

fn portier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portier"));
    // Only what a test gives: no PORTIER_* of the test's environment, no
    // systemd credential directory.
    for (name, _) in std::env::vars() {
        if name.starts_with("PORTIER_") || name == "RUST_LOG" || name == "CREDENTIALS_DIRECTORY" {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A setup made by `portier init` on a test database, with two master keys
/// kept outside it.
struct Setup {
    db: TestDb,
    dir: tempfile::TempDir,
}

impl Setup {
    fn site(&self) -> PathBuf {
        self.dir.path().join("site")
    }
    fn config(&self) -> PathBuf {
        self.site().join("portier.toml")
    }
    fn key_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("keys").join(name)
    }
    fn key_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.key_file(name)).unwrap().trim().to_owned()
    }
    fn at_rest(&self, name: &str) -> AtRest {
        AtRest::with_key(master_key::read_key_file(&self.key_file(name)).unwrap())
    }

    /// `portier <args> --config <config>` on this setup's database.
    fn command(&self, args: &[&str], config: &Path) -> Command {
        let mut cmd = portier();
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .env("PORTIER_DATABASE_URL", &self.db.url);
        cmd
    }

    /// Starts `portier serve`; `Err` with its status and output if it exits first.
    async fn serve(&self, config: &Path, env: &[(&str, &str)]) -> Result<Node, (ExitStatus, String)> {
        let mut cmd = self.command(&["serve"], config);
        cmd.env("PORTIER_GATEWAY_LISTEN", "127.0.0.1:0")
            .env("PORTIER_API_LISTEN", "127.0.0.1:0")
            .env("PORTIER_GATEWAY_NODE", "secrets-node")
            .env("PORTIER_LOG_FORMAT", "json")
            .env("PORTIER_DATABASE_NODE_STALE_SECS", "3")
            .env("PORTIER_DATABASE_HEARTBEAT_SECS", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let serve = ServeProcess::start(cmd, START_WITHIN).await?;
        Ok(Node {
            http: https_client(&self.site().join("certs/server-ca.pem"), serve.api),
            serve,
        })
    }

    /// The use cases on this setup's database, with `at_rest` and a clock of our own.
    fn ops(&self, at_rest: AtRest, clock: SharedClock) -> Ops {
        let settings = portier::config::Settings::load(&self.config()).unwrap();
        Ops {
            cache: Arc::new(portier::admission::AdmissionCache::new(
                self.db.store.clone(),
                settings.policy_settings(),
                clock.clone(),
            )),
            store: self.db.store.clone(),
            registry: Arc::new(portier::gateway::Registry::default()),
            clock,
            rules: portier::ops::Rules {
                at_rest,
                ..settings.api_limits()
            },
        }
    }
}

/// Two master keys (`a.key`, `b.key`) and `init --master-key-file a.key`;
/// returns the setup and the bootstrap admin token.
fn init_encrypted(db: TestDb) -> (Setup, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let setup = Setup { db, dir };
    for k in ["a.key", "b.key"] {
        run(portier().args(["secrets", "new-key", "--out"]).arg(setup.key_file(k)));
    }
    let out = run(portier()
        .args(["init", "--json", "--dir"])
        .arg(setup.site())
        .arg("--master-key-file")
        .arg(setup.key_file("a.key"))
        .env("PORTIER_DATABASE_URL", &setup.db.url));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["keys_encrypted"], true, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
    (setup, v["admin_token"].as_str().unwrap().to_owned())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_no_clear_key(dir: &Path) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for label in ["BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN RSA PRIVATE KEY"] {
            assert!(
                !bytes.windows(label.len()).any(|w| w == label.as_bytes()),
                "{} holds a private key in clear",
                f.display()
            );
        }
    }
}

/// A running `portier serve`, killed if still running when dropped.
struct Node {
    serve: ServeProcess,
    http: reqwest::Client,
}

impl Node {
    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("https://localhost:{}{path}", self.serve.api.port());
        let mut req = self.http.request(method.parse().unwrap(), url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) -> Value {
        let (st, v) = self.call(method, path, token, body).await;
        assert_eq!(st, want, "{method} {path}: {v}");
        v
    }

    /// SIGTERM, then the exit.
    async fn stop(mut self) {
        self.serve.terminate().await;
    }
}

/// A technician certificate signed through the API (by the node's decrypted
/// vendor CA key), a device, an approved window, and a client TLS
/// configuration for the gateway.
async fn tunnel_scene(node: &Node, admin: &str, server_ca: &Path) -> Arc<rustls::ClientConfig> {
    let device = echo_device().await;
    let v = node
        .ok(
            "POST",
            "/api/v1/vendors",
            admin,
            Some(json!({"name": "Acme", "networks": ["127.0.0.2"]})),
            201,
        )
        .await;
    let vendor_id = v["id"].as_str().unwrap().to_owned();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let t = node
        .ok(
            "POST",
            &format!("/api/v1/vendors/{vendor_id}/technicians"),
            admin,
            Some(json!({"name": "tech", "csr_pem": csr})),
            201,
        )
        .await;
    let cert_pem = t["certificate_pem"].as_str().unwrap().to_owned();
    let d = node
        .ok(
            "POST",
            "/api/v1/devices",
            admin,
            Some(
                json!({"name": "mri-1", "address": device.to_string(), "protocol": "echo", "vendor_ids": [vendor_id]}),
            ),
            201,
        )
        .await;
    let account = |role: &'static str, name: &'static str, vendor: Option<String>| async move {
        let v = node
            .ok(
                "POST",
                "/api/v1/users",
                admin,
                Some(json!({"name": name, "role": role, "vendor_id": vendor})),
                201,
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    };
    let desk = account("vendor", "desk", Some(vendor_id.clone())).await;
    let soc = account("security", "soc", None).await;
    let now = Utc::now();
    let w = node
        .ok(
            "POST",
            "/api/v1/windows",
            &desk,
            Some(
                json!({"device_ids": [d["id"]], "starts_at": now - chrono::Duration::minutes(1),
                "ends_at": now + chrono::Duration::hours(1), "reason": "maintenance"}),
            ),
            201,
        )
        .await;
    node.ok(
        "POST",
        &format!("/api/v1/windows/{}/approve", w["id"].as_str().unwrap()),
        &soc,
        None,
        200,
    )
    .await;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let roots = CertificateDer::pem_file_iter(server_ca)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    portier::gateway::tls::technician_client_config(
        roots,
        "localhost",
        vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        TLS13,
    )
    .unwrap()
}

async fn assert_tunnel_works(node: &Node, tls: &Arc<rustls::ClientConfig>) {
    let mut s = connect_from("127.0.0.2", node.serve.gateway, "mri-1", tls.clone())
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut s, b"ping").await, b"ping");
}

/// A configuration value in the legacy format (`enc:v1:`, bound to the kind
/// "config-value" only), as Portier wrote them before the field was bound.
fn legacy_config_value(key_text: &str, key_id: [u8; 8], value: &str) -> String {
    use base64::Engine;
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &b64.decode(key_text).unwrap()).unwrap());
    let nonce = [7u8; 12];
    let mut aad = b"portier-at-rest\0v1\0config-value\0".to_vec();
    aad.extend_from_slice(&key_id);
    let mut body = value.as_bytes().to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
        .unwrap();
    let mut envelope = vec![1u8];
    envelope.extend_from_slice(&key_id);
    envelope.extend_from_slice(&nonce);
    envelope.extend_from_slice(&body);
    format!("enc:v1:{}", b64.encode(envelope))
}

/// The stored TOTP secret of `name`, as the database holds it.
async fn stored_totp(store: &dyn Store, name: &str) -> String {
    let (user, _) = store.user_by_name(name).await.unwrap().unwrap();
    store.credentials(&user.id).await.unwrap().totp_secret.unwrap()
}

/// A password sign-in of `name` finished with the TOTP code of `secret` one
/// minute later on `clock` (a step of its own, never used before).
async fn sign_in_with_code(ops: &Ops, clock: &ManualClock, name: &str, secret: &str) -> Result<(), OpsError> {
    clock.advance(chrono::Duration::seconds(60));
    let cookie = match ops.sign_in_password(name, PASSWORD, None).await? {
        PasswordSignIn::NeedsSecondFactor(c) => c,
        other => panic!("expected a second factor to be due, got {other:?}"),
    };
    let code = totp_code(secret, clock.now()).unwrap();
    match ops.sign_in_second_factor(&cookie, &code, None).await? {
        PasswordSignIn::SignedIn(_) => Ok(()),
        other => panic!("expected a session, got {other:?}"),
    }
}

async fn encrypted_init_serves_and_rotates(db: TestDb) {
    let (setup, admin) = init_encrypted(db);
    let certs = setup.site().join("certs");
    assert_no_clear_key(&setup.site());
    for k in ["server-ca.key", "server.key", "vendor-ca.key"] {
        let text = std::fs::read_to_string(certs.join(k)).unwrap();
        assert!(text.starts_with("-----BEGIN PORTIER ENCRYPTED PRIVATE KEY-----"), "{k}");
    }
    // A webhook secret, encrypted with `portier secrets encrypt` for its field.
    let mut enc = setup
        .command(
            &["secrets", "encrypt", "--field", "notify.webhooks[0].secret"],
            &setup.config(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    enc.stdin
        .take()
        .unwrap()
        .write_all(b"a webhook secret long enough\n")
        .unwrap();
    let out = enc.wait_with_output().unwrap();
    assert!(out.status.success());
    let sealed_hook = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(sealed_hook.starts_with("enc:v2:") && !sealed_hook.contains("webhook"));
    // A second one in clear, and a third in the legacy format (as Portier
    // wrote them before the field was bound), quoted in a comment too.
    let key_a = setup.at_rest("a.key");
    let legacy_hook = legacy_config_value(
        &setup.key_text("a.key"),
        key_a.key().unwrap().id().0,
        "a legacy webhook secret",
    );
    let comment = format!("# the secret before: \"{legacy_hook}\" (kept for the record)");
    let mut config = std::fs::OpenOptions::new().append(true).open(setup.config()).unwrap();
    writeln!(
        config,
        "\n[[notify.webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"{sealed_hook}\"\n\n\
         [[notify.webhooks]]\nurl = \"http://127.0.0.1:9/clear\"\nsecret = \"a clear webhook secret, long\"\n\n\
         {comment}\n[[notify.webhooks]]\nurl = \"http://127.0.0.1:9/legacy\"\nsecret = '{legacy_hook}'   # legacy"
    )
    .unwrap();
    drop(config);

    // The node serves with the key named in the configuration (the legacy
    // value read), warning of the secret in clear by its field.
    let node = setup.serve(&setup.config(), &[]).await.unwrap();
    node.ok("GET", "/api/v1/vendors", &admin, None, 200).await;
    let log = node.serve.log_text();
    assert!(
        log.lines().any(|l| l.contains("configuration secret stored in clear")
            && l.contains("notify.webhooks[1].secret")
            && l.contains("portier secrets encrypt")
            && l.contains("WARN")),
        "{log}"
    );
    assert!(!log.contains("notify.webhooks[0].secret"), "{log}");
    // The legacy value is named once, as legacy.
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("notify.webhooks[2].secret"))
        .collect();
    assert!(
        named.len() == 1
            && named[0].contains("legacy format")
            && named[0].contains("portier secrets rotate")
            && named[0].contains("WARN"),
        "{log}"
    );
    let tls = tunnel_scene(&node, &admin, &certs.join("server-ca.pem")).await;
    assert_tunnel_works(&node, &tls).await;

    // A TOTP enrolment through the use cases, under key A.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ops_a = setup.ops(setup.at_rest("a.key"), clock.clone());
    ops_a
        .create_account(
            &Actor::cli("test"),
            "sec",
            Role::Security,
            None,
            None,
            chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let sec = Actor::from(setup.db.store.user_by_name("sec").await.unwrap().unwrap().0);
    ops_a.change_own_password(&sec, None, PASSWORD).await.unwrap();
    let enrolment = ops_a.new_totp(&setup.db.store.user_by_name("sec").await.unwrap().unwrap().0);
    let code = totp_code(&enrolment.secret, clock.now()).unwrap();
    ops_a.confirm_totp(&sec, &enrolment.secret, &code).await.unwrap();
    let row = stored_totp(setup.db.store.as_ref(), "sec").await;
    assert!(row.starts_with("enc:v2:") && !row.contains(&enrolment.secret), "{row}");
    assert_eq!(
        envelope::key_id_of(&envelope::value_envelope(&row).unwrap()).unwrap(),
        key_a.key().unwrap().id()
    );
    sign_in_with_code(&ops_a, &clock, "sec", &enrolment.secret)
        .await
        .unwrap();

    // No rotation while the node runs (it holds key A): refused, naming it,
    // and nothing changed.
    let snapshot =
        |paths: &[PathBuf]| -> Vec<String> { paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect() };
    let watched = [
        setup.config(),
        certs.join("server.key"),
        certs.join("vendor-ca.key"),
        certs.join("server-ca.key"),
    ];
    let before_refusal = snapshot(&watched);
    let b_file = setup.key_file("b.key");
    let rotate_to_b = || {
        setup.command(
            &[
                "secrets",
                "rotate",
                "--json",
                "--new-key-file",
                b_file.to_str().unwrap(),
            ],
            &setup.config(),
        )
    };
    let out = rotate_to_b().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refused") && err.contains("secrets-node (pid ") && err.contains("Stop every node first"),
        "{err}"
    );
    assert_eq!(snapshot(&watched), before_refusal);
    assert_eq!(stored_totp(setup.db.store.as_ref(), "sec").await, row);
    node.stop().await;

    // A wrong key (the environment wins over the file): refused, naming the key file.
    let (status, log) = setup
        .serve(&setup.config(), &[(master_key::ENV_VAR, &setup.key_text("b.key"))])
        .await
        .err()
        .expect("a wrong master key must stop the start");
    assert!(!status.success());
    assert!(
        log.contains("wrong master key") && log.contains("could not be decrypted"),
        "{log}"
    );
    // No master key at all: refused too.
    let keyless = setup.site().join("keyless.toml");
    let text = std::fs::read_to_string(setup.config()).unwrap();
    std::fs::write(
        &keyless,
        text.lines()
            .filter(|l| !l.starts_with("master_key_file"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let (_, log) = setup.serve(&keyless, &[]).await.err().expect("no master key");
    assert!(log.contains("no master key is configured"), "{log}");

    // Rotation to key B.
    let keys = ["server.key", "vendor-ca.key", "server-ca.key"];
    let before: Vec<String> = keys
        .iter()
        .map(|k| std::fs::read_to_string(certs.join(k)).unwrap())
        .collect();
    let config_before = std::fs::read_to_string(setup.config()).unwrap();
    let out = run(&mut rotate_to_b());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["config_values"], 2, "{report}");
    assert_eq!(
        report["clear_config_values"],
        json!(["notify.webhooks[1].secret"]),
        "{report}"
    );
    // The warning names the command as it must be run (`--field` is required).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`portier secrets encrypt --field notify.webhooks[1].secret`"),
        "{stderr}"
    );
    assert_eq!(report["totp"]["rewritten"], 1, "{report}");
    assert_eq!(report["key_files"].as_array().unwrap().len(), 3, "{report}");
    for (k, old) in keys.iter().zip(&before) {
        let now = std::fs::read_to_string(certs.join(k)).unwrap();
        assert!(
            now.starts_with("-----BEGIN PORTIER ENCRYPTED PRIVATE KEY-----") && now != *old,
            "{k}"
        );
    }
    // Only the two encrypted values changed, upgraded to the current format;
    // the comment quoting the legacy value (and every other byte) stayed.
    let config_after = std::fs::read_to_string(setup.config()).unwrap();
    assert!(!config_after.contains(&sealed_hook));
    assert!(config_after.contains(&format!("\n{comment}\n")), "{config_after}");
    assert_eq!(config_after.lines().count(), config_before.lines().count());
    let changed: Vec<(&str, &str)> = config_before
        .lines()
        .zip(config_after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(
        changed[0].1.starts_with("secret = \"enc:v2:") && changed[0].1.ends_with('"'),
        "{changed:?}"
    );
    assert!(
        changed[1].1.starts_with("secret = 'enc:v2:") && changed[1].1.ends_with("'   # legacy"),
        "{changed:?}"
    );
    let settings = portier::config::Settings::load(&setup.config()).unwrap();
    let open = portier::secrets::unseal_settings(&settings, &setup.at_rest("b.key")).unwrap();
    assert_eq!(open.notify.webhooks[2].secret.expose(), "a legacy webhook secret");
    assert_no_clear_key(&setup.site());
    let row_b = stored_totp(setup.db.store.as_ref(), "sec").await;
    assert_ne!(row_b, row);
    let rotated = crate::common::audit_events(setup.db.store.as_ref(), "secrets.rotated").await;
    assert_eq!(rotated.len(), 1);
    let new_id = setup.at_rest("b.key").key().unwrap().id().to_string();
    let details: Value = serde_json::from_str(&rotated[0].details).unwrap();
    assert_eq!(details["new_key"], new_id.as_str(), "{details}");
    assert_eq!(details["totp_secrets"], 1, "{details}");
    // Recorded before its first write, naming what it was about to replace.
    let started = crate::common::audit_events(setup.db.store.as_ref(), "secrets.rotation_started").await;
    assert_eq!(started.len(), 1);
    assert!(started[0].seq < rotated[0].seq);
    let details: Value = serde_json::from_str(&started[0].details).unwrap();
    assert_eq!(details["new_key"], new_id.as_str(), "{details}");
    assert!(!details["files"].as_array().unwrap().is_empty(), "{details}");
    let chain = portier::audit::verify_store(setup.db.store.as_ref(), |_| {})
        .await
        .unwrap();
    assert!(chain.valid, "{chain:?}");

    // The old key no longer starts the node; the new one does, and it serves.
    let (_, log) = setup.serve(&setup.config(), &[]).await.err().expect("the old key");
    assert!(log.contains("wrong master key"), "{log}");
    let b = setup.key_text("b.key");
    let node = setup
        .serve(&setup.config(), &[(master_key::ENV_VAR, &b)])
        .await
        .unwrap();
    node.ok("GET", "/api/v1/vendors", &admin, None, 200).await;
    assert_tunnel_works(&node, &tls).await;
    // The decrypted vendor CA still signs.
    let vendors = node.ok("GET", "/api/v1/vendors", &admin, None, 200).await;
    let vendor_id = vendors[0]["id"].as_str().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    node.ok(
        "POST",
        &format!("/api/v1/vendors/{vendor_id}/technicians"),
        &admin,
        Some(json!({"name": "tech-2", "csr_pem": csr})),
        201,
    )
    .await;
    node.stop().await;

    // TOTP: sign-in works under key B; under key A it fails closed.
    let ops_b = setup.ops(setup.at_rest("b.key"), clock.clone());
    sign_in_with_code(&ops_b, &clock, "sec", &enrolment.secret)
        .await
        .unwrap();
    let err = sign_in_with_code(&ops_a, &clock, "sec", &enrolment.secret)
        .await
        .unwrap_err();
    assert!(matches!(err, OpsError::Unavailable(_)), "{err:?}");
}

on_both_backends!(
    encrypted_init_serves_and_rotates_on,
    super::encrypted_init_serves_and_rotates
);

async fn clear_init_says_so_and_rotate_encrypts(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let setup = Setup { db, dir };
    let out = run(portier()
        .args(["init", "--dir"])
        .arg(setup.site())
        .env("PORTIER_DATABASE_URL", &setup.db.url));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no master key given"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Private keys: NOT encrypted"));
    let server_key = std::fs::read_to_string(setup.site().join("certs/server.key")).unwrap();
    assert!(server_key.contains("BEGIN PRIVATE KEY"));

    // A TOTP secret stored in clear (no master key yet).
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ops = setup.ops(AtRest::none(), clock.clone());
    ops.create_account(
        &Actor::cli("test"),
        "sec",
        Role::Security,
        None,
        None,
        chrono::Duration::days(1),
    )
    .await
    .unwrap();
    let user = setup.db.store.user_by_name("sec").await.unwrap().unwrap().0;
    let e = ops.new_totp(&user);
    ops.confirm_totp(
        &Actor::from(user),
        &e.secret,
        &totp_code(&e.secret, clock.now()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(stored_totp(setup.db.store.as_ref(), "sec").await, e.secret);

    // An exposed key file is refused.
    let key = setup.key_file("m.key");
    std::fs::write(&key, format!("{}\n", master_key::generate().as_str())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = setup
            .command(
                &["secrets", "rotate", "--new-key-file", key.to_str().unwrap()],
                &setup.config(),
            )
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("readable by its group or others"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Rotation from no key: the migration to encrypted secrets.
    run(&mut setup.command(
        &["secrets", "rotate", "--new-key-file", key.to_str().unwrap()],
        &setup.config(),
    ));
    assert_no_clear_key(&setup.site());
    let row = stored_totp(setup.db.store.as_ref(), "sec").await;
    assert!(row.starts_with("enc:v2:"), "{row}");
    let text = std::fs::read_to_string(&key).unwrap();
    let out = run(setup
        .command(&["secrets", "status"], &setup.config())
        .env(master_key::ENV_VAR, text.trim()));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["master_key"]["source"]["kind"], "environment", "{status}");
    for s in status["secrets"].as_array().unwrap() {
        assert_eq!(s["state"], "encrypted", "{status}");
    }
    // Sign-in works with the secret as encrypted; a secret put back in clear
    // behind the node's back is not read while a master key is configured.
    let keyed = AtRest::with_key(master_key::read_key_file(&key).unwrap());
    let ops = setup.ops(keyed, clock.clone());
    let sec = Actor::from(setup.db.store.user_by_name("sec").await.unwrap().unwrap().0);
    ops.change_own_password(&sec, None, PASSWORD).await.unwrap();
    sign_in_with_code(&ops, &clock, "sec", &e.secret).await.unwrap();
    assert!(setup
        .db
        .store
        .replace_totp_secret(&sec.id, &row, &e.secret)
        .await
        .unwrap());
    let err = sign_in_with_code(&ops, &clock, "sec", &e.secret).await.unwrap_err();
    assert!(matches!(err, OpsError::Unavailable(_)), "{err:?}");
}

on_both_backends!(
    clear_init_says_so_and_rotate_encrypts_on,
    super::clear_init_says_so_and_rotate_encrypts
);
