//! `portier sbom`: the CycloneDX SBOM lists exactly the crates compiled into the
//! binary (checked against `cargo tree` and `cargo metadata`, run here), with
//! Cargo.lock's versions and checksums, no dev-only crate, and validates against
//! the CycloneDX 1.5 schema vendored in tests/fixtures/cyclonedx.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn portier() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portier"))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(manifest_dir());
    cmd
}

fn sbom(args: &[&str]) -> String {
    let out = portier().arg("sbom").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// (name, version) of every package `cargo tree` shows through normal edges from
/// portier, for the host (the root itself left out).
fn cargo_tree_normal() -> BTreeSet<(String, String)> {
    cargo_tree("normal")
}

fn cargo_tree(edges: &str) -> BTreeSet<(String, String)> {
    let out = cargo()
        .args([
            "tree",
            "-e",
            edges,
            "--prefix",
            "none",
            "--locked",
            "--offline",
            "-p",
            "portier",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let set: BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.strip_prefix('v')?.to_owned();
            Some((name, version))
        })
        .filter(|(name, _)| name != "portier")
        .collect();
    assert!(set.len() > 100, "cargo tree listed only {} packages", set.len());
    set
}

/// Packages reachable from portier's dev-dependencies but never through normal
/// edges (from `cargo metadata`'s resolve graph).
fn dev_only(normal: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    // Filtered to the host, as the build is: other platforms' crates are not downloaded here.
    let rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8(rustc.stdout).unwrap();
    let host = host.lines().find_map(|l| l.strip_prefix("host: ")).unwrap().to_owned();
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--filter-platform",
            &host,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: BTreeMap<&str, (String, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap();
            (
                id,
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["version"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = meta["resolve"]["root"].as_str().unwrap();
    // Start from portier's dev edges, then follow everything below them.
    let mut stack: Vec<&str> = nodes[root]["deps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"] == "dev"))
        .map(|d| d["pkg"].as_str().unwrap())
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().unwrap() {
            if d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()) {
                stack.push(d["pkg"].as_str().unwrap());
            }
        }
    }
    seen.iter()
        .map(|id| packages[id].clone())
        .filter(|p| !normal.contains(p))
        .collect()
}

/// name@version -> checksum, from Cargo.lock.
fn lock_checksums() -> BTreeMap<String, String> {
    let lock: toml::Value = std::fs::read_to_string(manifest_dir().join("Cargo.lock"))
        .unwrap()
        .parse()
        .unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let key = format!("{}@{}", p["name"].as_str()?, p["version"].as_str()?);
            Some((key, p.get("checksum")?.as_str()?.to_owned()))
        })
        .collect()
}

fn cyclonedx_validator() -> jsonschema::Validator {
    let fixtures = manifest_dir().join("tests/fixtures/cyclonedx");
    let load =
        |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(fixtures.join(f)).unwrap()).unwrap() };
    let registry = jsonschema::Registry::new()
        .add("http://cyclonedx.org/schema/spdx.schema.json", load("spdx.schema.json"))
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            load("jsf-0.82.schema.json"),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .offline()
        .should_validate_formats(true)
        .build(&load("bom-1.5.schema.json"))
        .unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, bom: &Value) -> Vec<String> {
    validator
        .iter_errors(bom)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn sbom_lists_exactly_the_crates_in_the_binary_and_validates() {
    let bom: Value = serde_json::from_str(&sbom(&[])).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(serial.strip_prefix("urn:uuid:").unwrap()).is_ok(),
        "{serial}"
    );
    assert_eq!(bom["metadata"]["component"]["name"], "portier");
    assert_eq!(bom["metadata"]["component"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(bom["metadata"]["component"]["licenses"][0]["expression"], "Apache-2.0");
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "portier");

    let components = bom["components"].as_array().unwrap();
    let listed: BTreeSet<(String, String)> = components
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), components.len(), "a crate listed twice");

    // The same set as cargo tree, versions included.
    let normal = cargo_tree_normal();
    let missing: Vec<_> = normal.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&normal).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );

    // Linked ("required") versus compile time only ("excluded"): what remains
    // without the edges into procedural macros is what the binary links.
    let linked: BTreeSet<(String, String)> = components
        .iter()
        .filter(|c| c["scope"] == "required")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(linked, cargo_tree("normal,no-proc-macro"));
    let scope_of = |name: &str| components.iter().find(|c| c["name"] == name).unwrap()["scope"].clone();
    assert_eq!(scope_of("serde_derive"), "excluded");
    assert_eq!(scope_of("syn"), "excluded");
    assert_eq!(scope_of("rustls"), "required");

    // Nothing that only the tests use.
    let dev = dev_only(&normal);
    let dev_names: BTreeSet<&str> = dev.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["fantoccini", "tempfile", "jsonschema"] {
        assert!(
            dev_names.contains(expected),
            "{expected} should be dev-only: {dev_names:?}"
        );
    }
    let leaked: Vec<_> = dev.intersection(&listed).collect();
    assert!(leaked.is_empty(), "dev-only crates in the SBOM: {leaked:?}");

    // purl, licence and Cargo.lock's checksum on every crates.io component.
    let sums = lock_checksums();
    for c in components {
        let (name, version) = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
        assert_eq!(c["type"], "library");
        assert_eq!(c["purl"], format!("pkg:cargo/{name}@{version}"));
        let expected = &sums[&format!("{name}@{version}")];
        assert_eq!(c["hashes"][0]["alg"], "SHA-256", "{name}");
        assert_eq!(c["hashes"][0]["content"].as_str(), Some(expected.as_str()), "{name}");
        let expression = c["licenses"][0]["expression"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no licence"));
        assert!(
            !expression.contains('/'),
            "{name}: {expression} is not an SPDX expression"
        );
    }
    let rustls = components.iter().find(|c| c["name"] == "rustls").unwrap();
    assert_eq!(rustls["licenses"][0]["expression"], "Apache-2.0 OR ISC OR MIT");

    let validator = cyclonedx_validator();
    let errors = schema_errors(&validator, &bom);
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator does reject a malformed bill: a bad hash and an unknown type.
    let mut broken = bom.clone();
    broken["components"][0]["hashes"][0]["content"] = "not-hex".into();
    broken["components"][1]["type"] = "gadget".into();
    assert_eq!(
        schema_errors(&validator, &broken).len(),
        2,
        "{:#?}",
        schema_errors(&validator, &broken)
    );
}

/// This machine's own packages (a Debian system, as the image is): the
/// licences of machine-readable copyright files are listed, and the SBOM with
/// them validates.
#[test]
fn os_packages_of_this_system_carry_their_licences() {
    let status = std::path::Path::new("/var/lib/dpkg/status");
    if !status.exists() {
        eprintln!("skipped: no dpkg status on this system");
        return;
    }
    let bom: Value = serde_json::from_str(&sbom(&["--dpkg-status", "/var/lib/dpkg/status"])).unwrap();
    let errors = schema_errors(&cyclonedx_validator(), &bom);
    assert!(errors.is_empty(), "{errors:#?}");
    let table: Value =
        serde_json::from_str(&sbom(&["--format", "json", "--dpkg-status", "/var/lib/dpkg/status"])).unwrap();
    let os = table["os_packages"].as_array().unwrap();
    // ca-certificates' copyright file is machine-readable (GPL-2+, MPL-2.0).
    let ca = os.iter().find(|p| p["name"] == "ca-certificates").unwrap();
    assert!(ca["license"].as_str().unwrap().contains("MPL-2.0"), "{ca}");
    let with = os.iter().filter(|p| p["license"] != "").count();
    assert!(with * 2 > os.len(), "{with} of {} packages with a licence", os.len());
}

#[test]
fn os_packages_are_listed_from_a_dpkg_status_file_when_present() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(
        &status,
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u9\n\n\
         Package: ca-certificates\nStatus: install ok installed\nArchitecture: all\nVersion: 20230311\n\n\
         Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n",
    )
    .unwrap();
    let status_arg = status.to_str().unwrap();

    let bom: Value = serde_json::from_str(&sbom(&["--dpkg-status", status_arg])).unwrap();
    let debs: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str().filter(|p| p.starts_with("pkg:deb/")))
        .collect();
    assert_eq!(
        debs,
        [
            "pkg:deb/debian/ca-certificates@20230311?arch=all",
            "pkg:deb/debian/libc6@2.36-9+deb12u9?arch=amd64"
        ]
    );
    let errors = schema_errors(&cyclonedx_validator(), &bom);
    assert!(errors.is_empty(), "{errors:#?}");

    let md = sbom(&["--format", "md", "--lang", "fr", "--dpkg-status", status_arg]);
    assert!(md.contains("## Logiciels tiers"), "{md}");
    assert!(
        md.contains("### Paquets du système d'exploitation (image conteneur) (2)"),
        "{md}"
    );
    assert!(md.contains("| libc6 | 2.36-9+deb12u9 |"), "{md}");
    assert!(!md.contains("removed"));

    // No status file (not the image): no OS list at all.
    let absent = dir.path().join("absent");
    let json: Value =
        serde_json::from_str(&sbom(&["--format", "json", "--dpkg-status", absent.to_str().unwrap()])).unwrap();
    assert!(json["os_packages"].is_null());
    let tree = cargo_tree_normal();
    assert_eq!(json["crates"].as_array().unwrap().len(), tree.len());
    let en = sbom(&["--format", "html", "--lang", "en"]);
    assert!(
        en.contains("<h2>Third-party software</h2>") && !en.contains("Operating system"),
        "{en}"
    );
}
