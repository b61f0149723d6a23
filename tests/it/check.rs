//! `portier check` (issue 13, docs/check.md), with the real binary: a setup
//! left as `init` makes it and weakened exits non-zero with each FAIL line;
//! the same setup commissioned (master key, MFA, a webhook receiving
//! lockdowns, anchoring, a lockdown drill, the bootstrap token revoked) exits 0
//! without any FAIL; on PostgreSQL the checks read that database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn portier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portier"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PORTIER_") || name == "RUST_LOG" || name == "CREDENTIALS_DIRECTORY" {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn check(config: &Path) -> (Output, String) {
    let out = portier().args(["check", "--config"]).arg(config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// Whether a line of `text` has `status`, `check` and contains every one of `words`.
fn has_line(text: &str, status: &str, check: &str, words: &[&str]) -> bool {
    text.lines().any(|l| {
        let mut cols = l.split_whitespace();
        cols.next() == Some(status) && cols.next() == Some(check) && words.iter().all(|w| l.contains(w))
    })
}

fn append(config: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(config).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_weak_setup_fails_each_point() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    run(portier().args(["init", "--json", "--dir"]).arg(&site));
    let config = site.join("portier.toml");
    // TLS 1.2 on the admin API (the first tls_versions after [api]).
    let text = std::fs::read_to_string(&config).unwrap();
    let api = text.find("[api]").unwrap();
    let (head, tail) = text.split_at(api);
    let tail = tail.replacen("tls_versions = [\"1.3\"]", "tls_versions = [\"1.2\", \"1.3\"]", 1);
    std::fs::write(&config, format!("{head}{tail}\n[auth]\nrequire_mfa = []\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(site.join("certs/vendor-ca.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    let (out, text) = check(&config);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("docs/check.md"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (check, words) in [
        ("bootstrap_token", &["still valid", "portier token revoke"][..]),
        ("tls_versions", &["admin API", "api.tls_versions"][..]),
        (
            "secrets_at_rest",
            &["gateway private key", ": in clear", "portier secrets rotate"][..],
        ),
        ("secrets_at_rest", &["vendor CA private key", "in clear"][..]),
        ("mfa", &["admin and security", "auth.require_mfa"][..]),
    ] {
        assert!(
            has_line(&text, "FAIL", check, words),
            "no FAIL {check} {words:?} in:\n{text}"
        );
    }
    #[cfg(unix)]
    assert!(
        has_line(
            &text,
            "FAIL",
            "secrets_at_rest",
            &["readable by others", "0640", "chmod 0600"]
        ),
        "{text}"
    );
    for (check, words) in [
        ("notifications", &["nobody hears of a lockdown", "notify.syslog"][..]),
        ("lockdown", &["never exercised", "portier lockdown on"][..]),
        ("audit_anchoring", &["audit.anchor_minutes"][..]),
        ("backups", &["sqlite3", ".backup"][..]),
    ] {
        assert!(
            has_line(&text, "WARN", check, words),
            "no WARN {check} {words:?} in:\n{text}"
        );
    }
    assert!(has_line(&text, "OK", "audit_chain", &["verifies"]), "{text}");
    assert!(has_line(&text, "OK", "certificates", &["gateway.cert"]), "{text}");
    // Every line is one finding, with the summary last.
    assert!(text.lines().last().unwrap().ends_with("FAIL"), "{text}");

    // The JSON form says the same.
    let out = portier()
        .args(["check", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mfa = v.iter().find(|f| f["check"] == "mfa").unwrap();
    assert_eq!(mfa["status"], "FAIL");
    assert_eq!(mfa["fix"], "set auth.require_mfa = [\"security\", \"admin\"]");
}

#[test]
fn a_commissioned_setup_passes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key = keys.join("master.key");
    run(portier().args(["secrets", "new-key", "--out"]).arg(&key));
    let site = dir.path().join("site");
    run(portier()
        .args(["init", "--json", "--dir"])
        .arg(&site)
        .arg("--master-key-file")
        .arg(&key));
    let config: PathBuf = site.join("portier.toml");

    // Before commissioning: the live bootstrap token fails the check.
    let (out, text) = check(&config);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(has_line(&text, "FAIL", "bootstrap_token", &["still valid"]), "{text}");

    // A webhook secret encrypted under the master key, anchoring on, MFA explicit.
    let mut enc = portier()
        .args(["secrets", "encrypt", "--field", "notify.webhooks.secret", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    enc.stdin
        .take()
        .unwrap()
        .write_all(b"whsec_c2VjcmV0c2VjcmV0c2VjcmV0\n")
        .unwrap();
    let enc = enc.wait_with_output().unwrap();
    assert!(enc.status.success());
    let sealed = String::from_utf8(enc.stdout).unwrap().trim().to_owned();
    append(
        &config,
        &format!(
            "\n[auth]\nrequire_mfa = [\"admin\", \"security\"]\n\n[audit]\nanchor_minutes = 60\n\n\
             [[notify.webhooks]]\nurl = \"https://siem.hospital.test/portier\"\nsecret = \"{sealed}\"\nevents = [\"lockdown.*\", \"audit.*\"]\n"
        ),
    );
    // A lockdown drill.
    for state in ["on", "off"] {
        run(portier()
            .args(["lockdown", state, "--reason", "commissioning drill", "--config"])
            .arg(&config));
    }
    // The bootstrap token revoked.
    let list = run(portier().args(["token", "list", "--config"]).arg(&config));
    let list = String::from_utf8(list.stdout).unwrap();
    let id = list
        .lines()
        .find(|l| l.contains("bootstrap-admin"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    run(portier().args(["token", "revoke", &id, "--config"]).arg(&config));

    let (out, text) = check(&config);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.lines().any(|l| l.starts_with("FAIL")), "{text}");
    for (check, words) in [
        ("bootstrap_token", &["revoked or expired"][..]),
        ("tls_versions", &["TLS 1.3 only"][..]),
        ("secrets_at_rest", &["gateway private key", ": encrypted"][..]),
        ("secrets_at_rest", &["notify.webhooks[0].secret", ": encrypted"][..]),
        ("master_key", &["master.key"][..]),
        ("mfa", &["admin and security"][..]),
        ("notifications", &["1 webhook(s) receive lockdown.on"][..]),
        ("lockdown", &["last exercised"][..]),
        ("audit_anchoring", &["every 60 minutes"][..]),
        ("audit_chain", &["verifies"][..]),
    ] {
        assert!(
            has_line(&text, "OK", check, words),
            "no OK {check} {words:?} in:\n{text}"
        );
    }
    // Backups cannot be verified from here: a warning, not a failure.
    assert!(has_line(&text, "WARN", "backups", &["cannot be verified"]), "{text}");

    // A webhook secret left in clear beside the master key: named, with the
    // command that encrypts it for its field.
    append(
        &config,
        "\n[[notify.webhooks]]\nurl = \"https://siem.hospital.test/other\"\nsecret = \"a clear secret, long enough\"\n",
    );
    let (out, text) = check(&config);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        has_line(
            &text,
            "FAIL",
            "secrets_at_rest",
            &[
                "notify.webhooks[1].secret: in clear",
                "portier secrets encrypt --field notify.webhooks[1].secret"
            ]
        ),
        "{text}"
    );
    assert!(
        has_line(
            &text,
            "OK",
            "secrets_at_rest",
            &["notify.webhooks[0].secret", ": encrypted"]
        ),
        "{text}"
    );
}

/// The same checks on PostgreSQL: the database is read (its chain verified,
/// its accounts looked at), no SQLite file is looked for, and the backup
/// advice names pg_dump.
#[tokio::test]
async fn the_checks_read_postgresql_too() {
    let Some(db) = crate::common::TestDb::postgres().await else {
        eprintln!("skipped: PORTIER_TEST_PG_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    run(portier().args(["init", "--json", "--dir"]).arg(&site));
    let config = site.join("portier.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("url = \"sqlite://portier.db\"", &format!("url = \"{}\"", db.url), 1);
    assert!(text.contains("postgres"), "{text}");
    std::fs::write(&config, text).unwrap();
    run(portier().args(["migrate", "--config"]).arg(&config));
    // A drill recorded in PostgreSQL: what the checks read is that database.
    for state in ["on", "off"] {
        run(portier()
            .args(["lockdown", state, "--reason", "drill", "--config"])
            .arg(&config));
    }
    let (_, text) = check(&config);
    assert!(has_line(&text, "OK", "lockdown", &[]), "{text}");
    assert!(has_line(&text, "OK", "audit_chain", &["verifies"]), "{text}");
    assert!(!text.contains("(0 events)"), "{text}");
    assert!(has_line(&text, "WARN", "backups", &["pg_dump"]), "{text}");
    assert!(!text.contains("cannot be read"), "{text}");
    assert!(!text.contains("sqlite"), "{text}");
    // The bootstrap account `init` made lives in the SQLite file, not here.
    assert!(!has_line(&text, "FAIL", "bootstrap_token", &[]), "{text}");
}
