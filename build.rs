//! Records the crates compiled into this binary (name, version, licence, source,
//! Cargo.lock checksum) into `$OUT_DIR/dependencies.json`, which `src/sbom.rs`
//! includes: `portier sbom` and the dossier's third-party table describe the very
//! build they run from, not whatever Cargo.lock sits next to them later.
//!
//! The set comes from `cargo tree -e normal --target $TARGET`: it applies the
//! feature resolver as a build does (features that only dev-dependencies enable are
//! left out), which `cargo metadata`'s resolve graph does not — that graph is the
//! lock-file resolution and over-reports (e.g. `sqlx-mysql` and `rsa`, present in
//! Cargo.lock, are never compiled here). A second run with `-e normal,no-proc-macro`
//! tells which of them are linked; the rest (procedural macros and what only they
//! use) runs in the compiler only. Source and checksum come from Cargo.lock.
//!
//! When the list cannot be obtained, the build still succeeds but records the
//! error: `portier sbom` then refuses rather than print an incomplete bill.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let doc = match collect(&out_dir) {
        Ok(crates) => serde_json::json!({ "target": env::var("TARGET").unwrap_or_default(), "crates": crates }),
        Err(e) => {
            println!("cargo:warning=dependency list not recorded (portier sbom will refuse): {e}");
            serde_json::json!({ "target": env::var("TARGET").unwrap_or_default(), "error": e })
        }
    };
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = std::fs::write(out_dir.join("dependencies.json"), text) {
        println!("cargo:warning=cannot write dependencies.json: {e}");
        std::process::exit(1);
    }
}

#[derive(Debug)]
struct LockEntry {
    source: Option<String>,
    checksum: Option<String>,
}

fn collect(out_dir: &Path) -> Result<Vec<serde_json::Value>, String> {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let target = env::var("TARGET").map_err(|_| "TARGET unset")?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let lock_path = manifest_dir.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let lock = parse_lock(&lock);

    let tree = |edges: &str| -> Result<String, String> {
        // The running cargo holds the build directory's lock, not the package cache's,
        // while build scripts run: a nested, offline `cargo tree` does not wait on it.
        // Its own target directory and no rustc-info cache keep it off the outer build's files.
        let output = Command::new(&cargo)
            .current_dir(&manifest_dir)
            .args([
                "tree",
                "-e",
                edges,
                "--prefix",
                "none",
                "--locked",
                "--offline",
                "--color",
                "never",
            ])
            .args(["--target", &target, "--format", "{p}\t{l}"])
            .arg("--manifest-path")
            .arg(manifest_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", out_dir.join("cargo-tree"))
            .env("CARGO_CACHE_RUSTC_INFO", "0")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .output()
            .map_err(|e| format!("cannot run cargo tree: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo tree failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        String::from_utf8(output.stdout).map_err(|e| format!("cargo tree output: {e}"))
    };
    let stdout = tree("normal")?;
    // Without the edges into procedural macros: what is linked into the binary.
    // The rest (syn, quote, serde_derive…) only runs inside the compiler.
    let mut linked = std::collections::BTreeSet::new();
    for line in tree("normal,no-proc-macro")?.lines().filter(|l| !l.trim().is_empty()) {
        let (name, version, ..) = parse_line(line)?;
        linked.insert((name, version));
    }

    let root = env::var("CARGO_PKG_NAME").unwrap_or_default();
    let mut crates: BTreeMap<(String, String), serde_json::Value> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let (name, version, licence, proc_macro) = parse_line(line)?;
        if name == root {
            continue;
        }
        let matches: Vec<&LockEntry> = lock
            .get(&(name.clone(), version.clone()))
            .into_iter()
            .flatten()
            .collect();
        let entry = match matches.as_slice() {
            [one] => *one,
            [] => return Err(format!("{name} {version} is not in Cargo.lock")),
            _ => return Err(format!("{name} {version} appears from several sources in Cargo.lock")),
        };
        let source = match entry.source.as_deref() {
            None => "path".to_owned(),
            Some(s) if s.starts_with("registry+https://github.com/rust-lang/crates.io-index") => "crates.io".to_owned(),
            Some(s) if s.starts_with("sparse+https://index.crates.io/") => "crates.io".to_owned(),
            Some(s) if s.starts_with("git+") => "git".to_owned(),
            Some(s) => s.split('+').next().unwrap_or("registry").to_owned(),
        };
        crates.insert(
            (name.clone(), version.clone()),
            serde_json::json!({
                "name": name,
                "version": version,
                "license": licence,
                "source": source,
                "source_id": entry.source,
                "checksum": entry.checksum,
                "proc_macro": proc_macro,
                "linked": linked.contains(&(name.clone(), version.clone())),
            }),
        );
    }
    if crates.is_empty() {
        return Err("cargo tree listed no dependency".to_owned());
    }
    Ok(crates.into_values().collect())
}

/// `name vX.Y.Z [(source)] [(proc-macro)] [(*)]<TAB>licence` -> (name, version, licence, proc-macro).
fn parse_line(line: &str) -> Result<(String, String, String, bool), String> {
    // A package printed before is marked `(*)` at the end of the line.
    let line = line.trim_end().strip_suffix("(*)").unwrap_or(line).trim_end();
    let (package, licence) = line.split_once('\t').unwrap_or((line, ""));
    let mut words = package.split(' ');
    let name = words.next().unwrap_or_default().to_owned();
    let version = words
        .next()
        .and_then(|v| v.strip_prefix('v'))
        .ok_or_else(|| format!("unexpected cargo tree line: {line}"))?
        .to_owned();
    Ok((
        name,
        version,
        licence.trim().to_owned(),
        package.contains("(proc-macro)"),
    ))
}

/// Cargo.lock's `[[package]]` entries by (name, version); the format is flat
/// `key = "value"` lines, which is all this needs.
fn parse_lock(text: &str) -> BTreeMap<(String, String), Vec<LockEntry>> {
    let mut out: BTreeMap<(String, String), Vec<LockEntry>> = BTreeMap::new();
    let mut flush = |fields: &mut BTreeMap<String, String>| {
        if let (Some(name), Some(version)) = (fields.remove("name"), fields.remove("version")) {
            out.entry((name, version)).or_default().push(LockEntry {
                source: fields.remove("source"),
                checksum: fields.remove("checksum"),
            });
        }
        fields.clear();
    };
    let mut fields = BTreeMap::new();
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut fields);
            in_package = line == "[[package]]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((key, value)) = line.split_once(" = ") {
            if let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                fields.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    flush(&mut fields);
    out
}
