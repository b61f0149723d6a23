//! The `portier` binary: init, refusal to overwrite, token creation.

use std::process::Command;

fn portier() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portier"))
}

#[test]
fn init_creates_a_setup_once() {
    let dir = tempfile::tempdir().unwrap();
    let setup = dir.path().join("site");
    let out = portier()
        .args(["init", "--json", "--dir"])
        .arg(&setup)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = v["admin_token"].as_str().unwrap();
    assert!(token.starts_with("ptk_") && token.len() == 68);
    assert!(v["config"].as_str().unwrap().ends_with("portier.toml"));
    for f in ["server-ca.pem", "server.pem", "vendor-ca.pem"] {
        assert!(setup.join("certs").join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    for k in ["server-ca.key", "server.key", "vendor-ca.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(setup.join("certs").join(k))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{k}");
    }
    let config = std::fs::read_to_string(setup.join("portier.toml")).unwrap();
    assert!(config.contains("listen = \"127.0.0.1:"));
    // The token is stored only as its hash.
    let db = std::fs::read(setup.join("portier.db")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));

    let again = portier().args(["init", "--dir"]).arg(&setup).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    let tok = portier()
        .args(["token", "create", "--role", "security", "--name", "soc-1", "--config"])
        .arg(setup.join("portier.toml"))
        .output()
        .unwrap();
    assert!(tok.status.success(), "{}", String::from_utf8_lossy(&tok.stderr));
    assert!(String::from_utf8_lossy(&tok.stdout).trim().starts_with("ptk_"));
    let bad = portier()
        .args(["token", "create", "--role", "vendor", "--name", "v", "--config"])
        .arg(setup.join("portier.toml"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn help_documents_every_subcommand() {
    let out = portier().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["init", "serve", "migrate", "token"] {
        assert!(text.contains(sub), "{sub} missing from --help");
    }
}

#[test]
fn serve_refuses_a_bad_config_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portier.toml");
    std::fs::write(&cfg, "[gateway]\nlisten = \"not an address\"\n").unwrap();
    let out = portier().args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));
}

/// The packaged layout: configuration and PKI in one directory (read-only under
/// the systemd unit's ProtectSystem=strict), the database in the state directory.
#[test]
fn init_with_a_state_dir_puts_the_database_there() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc-portier");
    let state = dir.path().join("var-lib-portier");
    let out = portier()
        .args(["init", "--json", "--dir"])
        .arg(&etc)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(state.join("portier.db").exists());
    assert!(!etc.join("portier.db").exists());
    let config = std::fs::read_to_string(etc.join("portier.toml")).unwrap();
    assert!(
        config.contains(&format!("url = \"sqlite://{}\"", state.join("portier.db").display())),
        "{config}"
    );
    assert!(
        config.contains(&format!("lockdown_file = \"{}\"", state.join("lockdown").display())),
        "{config}"
    );
    // The configuration directory is not needed for writing: migrate works with
    // only the state directory writable.
    let migrate = portier()
        .args(["migrate", "--config"])
        .arg(etc.join("portier.toml"))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let again = portier()
        .args(["init", "--dir"])
        .arg(dir.path().join("other"))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!again.status.success(), "an existing database is never overwritten");
}

/// `portier rights` prints the rights per profile from the table in the binary,
/// without any configuration, in each language and format.
#[test]
fn rights_prints_the_table_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = portier()
            .arg("rights")
            .args(args)
            .current_dir(dir.path())
            .env_remove("PORTIER_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let md = run(&[]);
    assert_eq!(
        md,
        portier::rights::document(
            portier::rights::TABLE,
            portier::ops::Lang::En,
            portier::rights::Format::Markdown
        )
    );
    let approve = md.lines().find(|l| l.starts_with("| ApproveWindow |")).unwrap();
    assert!(approve.contains("| yes | yes | no | no |"), "{approve}");
    let fr = run(&["--lang", "fr", "--format", "html"]);
    assert!(fr.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"), "{fr}");
    assert!(fr.contains("<h1>Droits par profil</h1>"));
    assert!(fr.contains("Fonctions avancées de l&#39;administrateur"));
    let json: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    let lockdown = json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "Lockdown")
        .unwrap();
    assert_eq!(lockdown["advanced"], true);
    assert_eq!(
        lockdown["roles"],
        serde_json::json!({"admin": false, "security": true, "auditor": false, "vendor": false})
    );
    assert_eq!(lockdown["api"][0]["method"], "POST");
    let bad = portier().args(["rights", "--format", "pdf"]).output().unwrap();
    assert!(!bad.status.success());
}
