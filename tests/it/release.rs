//! Release integrity: deploy/release.sh writes the artifacts, SHA256SUMS and its
//! minisign signature; deploy/verify-release.sh accepts them with the right public
//! key and refuses a tampered artifact, a re-computed checksum list, another key,
//! and an unlisted file. Uses a throwaway key in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// minisign is installed by .ci/run; outside CI its absence skips the test.
fn minisign_available() -> bool {
    let found = Command::new("minisign")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("PORTIER_REQUIRE_HOSTILE").is_none(),
            "minisign is not installed (PORTIER_REQUIRE_HOSTILE is set)"
        );
        eprintln!("skipped: minisign not installed");
    }
    found
}

fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (public, secret) = (dir.join(format!("{name}.pub")), dir.join(format!("{name}.key")));
    let out = run(Command::new("minisign")
        .arg("-G")
        .arg("-W")
        .arg("-p")
        .arg(&public)
        .arg("-s")
        .arg(&secret));
    assert!(out.status.success(), "{}", text(&out));
    (public, secret)
}

fn verify(public: &Path, dir: &Path) -> Output {
    run(Command::new("bash")
        .arg(script("verify-release.sh"))
        .arg("--pubkey")
        .arg(public)
        .arg(dir))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_signed_release_verifies_and_a_tampered_one_does_not() {
    if !minisign_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (public, secret) = keypair(tmp.path(), "release");
    let out_dir = tmp.path().join("out");
    // The debug binary without its debug sections: the same program, packed in
    // seconds rather than a minute and a half.
    let binary = tmp.path().join("portier");
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&binary)
        .arg(env!("CARGO_BIN_EXE_portier"))
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(env!("CARGO_BIN_EXE_portier"), &binary).unwrap();
    }
    let release = || {
        run(Command::new("bash")
            .arg(script("release.sh"))
            .arg("--key")
            .arg(&secret)
            .arg("--out")
            .arg(&out_dir)
            .arg("--binary")
            .arg(&binary))
    };
    let out = release();
    assert!(out.status.success(), "{}", text(&out));

    let version = env!("CARGO_PKG_VERSION");
    let dir = out_dir.join(format!("portier-{version}"));
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert_eq!(listed.len(), 2, "{sums}");
    let tarball = listed
        .iter()
        .find(|f| f.ends_with("-linux.tar.gz"))
        .unwrap()
        .to_string();
    assert!(
        listed.contains(&format!("portier-{version}.cdx.json").as_str()),
        "{sums}"
    );
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("portier-{version}.cdx.json"))).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let contents = run(Command::new("tar").arg("-tzf").arg(dir.join(&tarball)));
    let contents = String::from_utf8_lossy(&contents.stdout).to_string();
    for f in ["portier", "LICENSE", "SECURITY.md", "CHANGELOG.md", "portier.service"] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!("/{f}"))),
            "{f} missing from {contents}"
        );
    }

    // The untouched release verifies.
    let ok = verify(&public, &dir);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains(&format!("release verified: portier {version} SHA256SUMS")),
        "{}",
        text(&ok)
    );

    // A release is written once.
    let again = release();
    assert!(
        !again.status.success() && text(&again).contains("written once"),
        "{}",
        text(&again)
    );

    // One byte added to the tarball: the checksum check fails.
    let tampered = tmp.path().join("tampered");
    copy_dir(&dir, &tampered);
    let mut bytes = std::fs::read(tampered.join(&tarball)).unwrap();
    bytes.push(0);
    std::fs::write(tampered.join(&tarball), &bytes).unwrap();
    let bad = verify(&public, &tampered);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(text(&bad).contains("does not match SHA256SUMS"), "{}", text(&bad));

    // ... and a checksum list recomputed to match it no longer carries the signature.
    let out = run(Command::new("sh")
        .current_dir(&tampered)
        .arg("-c")
        .arg(format!("sha256sum {tarball} portier-{version}.cdx.json > SHA256SUMS")));
    assert!(out.status.success());
    let bad = verify(&public, &tampered);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("signature of SHA256SUMS does not verify"),
        "{}",
        text(&bad)
    );

    // Signed by another key: refused.
    let (other_public, _) = keypair(tmp.path(), "other");
    let bad = verify(&other_public, &dir);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(text(&bad).contains("does not verify"), "{}", text(&bad));

    // An extra, unlisted file beside the artifacts: refused.
    let extra = tmp.path().join("extra");
    copy_dir(&dir, &extra);
    std::fs::write(extra.join("portier-hotfix"), b"#!/bin/sh\n").unwrap();
    let bad = verify(&public, &extra);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("not in SHA256SUMS: portier-hotfix"),
        "{}",
        text(&bad)
    );
}
