//! Third-party software: the crates compiled into this binary, recorded at build
//! time by `build.rs` (name, version, licence, source, Cargo.lock checksum), as a
//! CycloneDX 1.5 SBOM (`portier sbom`) and as the dossier's table; plus the
//! container image's Debian packages when the dpkg status file is given.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ops::Lang;

/// What `build.rs` wrote for this build.
const RECORDED: &str = include_str!(concat!(env!("OUT_DIR"), "/dependencies.json"));

/// Why there is no SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("the dependency list was not recorded when this binary was built: {0}")]
    NotRecorded(String),
    #[error("the recorded dependency list is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One crate compiled into the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// The manifest's licence expression as published (may use the legacy `/`);
    /// empty when the crate only ships a licence file.
    pub license: String,
    /// `crates.io`, `path`, `git` or another registry's kind.
    pub source: String,
    /// Cargo.lock's source line, when there is one.
    pub source_id: Option<String>,
    /// SHA-256 of the `.crate` file, from Cargo.lock (registry crates only).
    pub checksum: Option<String>,
    /// A procedural macro: it runs in the compiler and generates code, it is not linked.
    pub proc_macro: bool,
    /// Linked into the binary; false for procedural macros and the crates only
    /// they use (compile time only).
    pub linked: bool,
}

impl Crate {
    /// The licence as an SPDX expression: the legacy `MIT/Apache-2.0` becomes
    /// `MIT OR Apache-2.0` (what crates.io and cargo-deny read it as).
    pub fn spdx_license(&self) -> Option<String> {
        let text = self.license.trim();
        if text.is_empty() {
            return None;
        }
        if text.contains('/') {
            Some(text.split('/').map(str::trim).collect::<Vec<_>>().join(" OR "))
        } else {
            Some(text.to_owned())
        }
    }

    /// `pkg:cargo/name@version`.
    pub fn purl(&self) -> String {
        format!("pkg:cargo/{}@{}", self.name, self.version)
    }
}

#[derive(Debug, Deserialize)]
struct Recorded {
    #[serde(default)]
    crates: Vec<Crate>,
    #[serde(default)]
    error: Option<String>,
}

/// The crates compiled into this binary, sorted by name then version.
pub fn crates() -> Result<Vec<Crate>, SbomError> {
    parse_recorded(RECORDED)
}

fn parse_recorded(text: &str) -> Result<Vec<Crate>, SbomError> {
    let recorded: Recorded = serde_json::from_str(text)?;
    if let Some(e) = recorded.error {
        return Err(SbomError::NotRecorded(e));
    }
    if recorded.crates.is_empty() {
        return Err(SbomError::NotRecorded("empty list".to_owned()));
    }
    Ok(recorded.crates)
}

/// An installed Debian package of the container image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The licences its machine-readable copyright file declares (Debian's
    /// short names, e.g. `GPL-2+`, `BSD-3-clause`); empty when the file is
    /// absent or free-form.
    pub licenses: Vec<String>,
}

impl OsPackage {
    /// `pkg:deb/debian/name@version?arch=…`.
    pub fn purl(&self) -> String {
        let mut purl = format!("pkg:deb/debian/{}@{}", self.name, self.version.replace(':', "%3A"));
        if !self.architecture.is_empty() {
            let _ = write!(purl, "?arch={}", self.architecture);
        }
        purl
    }
}

/// The installed packages of a dpkg status file (stanzas whose `Status` ends in
/// `installed`; removed packages leave `config-files` or `not-installed` behind).
pub fn parse_dpkg_status(text: &str) -> Vec<OsPackage> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut arch = String::new();
        let mut installed = false;
        for line in stanza.lines() {
            // Continuation lines (descriptions, conffiles) start with a space.
            let Some((key, value)) = line.split_once(':').filter(|_| !line.starts_with([' ', '\t'])) else {
                continue;
            };
            let value = value.trim();
            match key {
                "Package" => name = Some(value.to_owned()),
                "Version" => version = Some(value.to_owned()),
                "Architecture" => arch = value.to_owned(),
                "Status" => installed = value.split_whitespace().last() == Some("installed"),
                _ => {}
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            out.push(OsPackage {
                name,
                version,
                architecture: arch,
                licenses: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    out
}

/// The licences a Debian machine-readable copyright file (DEP-5) declares:
/// each `License:` field's short name, once, in order of appearance. A
/// free-form file declares none that can be read reliably.
pub fn parse_copyright_licenses(text: &str) -> Vec<String> {
    if !text.starts_with("Format:") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(value) = line.strip_prefix("License:") else {
            continue;
        };
        let name = value.trim();
        if !name.is_empty() && name.len() <= 100 && !out.iter().any(|l| l == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// Most of a copyright file read for its licences (some are megabytes of
/// notices; the `License:` fields of the header paragraphs come first).
const MAX_COPYRIGHT: u64 = 512 * 1024;

/// The licences of `package` from `doc/PACKAGE/copyright`, if readable.
fn package_licenses(doc: &Path, package: &str) -> Vec<String> {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(doc.join(package).join("copyright"))
        .and_then(|f| f.take(MAX_COPYRIGHT).read_to_string(&mut text));
    match read {
        Ok(_) => parse_copyright_licenses(&text),
        // Absent, cut inside a UTF-8 sequence, or unreadable: the table says
        // "not declared" and points at the file.
        Err(_) => Vec::new(),
    }
}

/// The OS packages listed in `status` (a dpkg status file), with the licences
/// their copyright files declare (under `usr/share/doc` of the same root as
/// `var/lib/dpkg/status`); `None` when the file does not exist (not running
/// from the image).
pub fn os_packages(status: &Path) -> Result<Option<Vec<OsPackage>>, SbomError> {
    let root = status
        .to_str()
        .and_then(|s| s.strip_suffix("var/lib/dpkg/status"))
        .map_or_else(|| Path::new("/").to_owned(), std::path::PathBuf::from);
    let doc = root.join("usr/share/doc");
    match std::fs::read_to_string(status) {
        Ok(text) => {
            let mut packages = parse_dpkg_status(&text);
            for p in &mut packages {
                p.licenses = package_licenses(&doc, &p.name);
            }
            Ok(Some(packages))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SbomError::Io {
            path: status.display().to_string(),
            source,
        }),
    }
}

/// A CycloneDX 1.5 JSON SBOM: this build of Portier, the crates compiled into it
/// and, when given, the image's OS packages.
pub fn cyclonedx(crates: &[Crate], os: Option<&[OsPackage]>, serial: uuid::Uuid, now: DateTime<Utc>) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut components: Vec<Value> = crates
        .iter()
        .map(|c| {
            let mut component = serde_json::Map::new();
            component.insert("type".into(), "library".into());
            // CycloneDX's "excluded": used to build, not present at run time.
            let scope = if c.linked { "required" } else { "excluded" };
            component.insert("scope".into(), scope.into());
            component.insert("bom-ref".into(), c.purl().into());
            component.insert("name".into(), c.name.clone().into());
            component.insert("version".into(), c.version.clone().into());
            component.insert("purl".into(), c.purl().into());
            if let Some(expression) = c.spdx_license() {
                component.insert("licenses".into(), json!([{ "expression": expression }]));
            }
            if let Some(sum) = &c.checksum {
                component.insert("hashes".into(), json!([{ "alg": "SHA-256", "content": sum }]));
            }
            let mut properties = vec![json!({ "name": "cargo:source", "value": c.source })];
            if c.proc_macro {
                properties.push(json!({ "name": "cargo:proc-macro", "value": "true" }));
            }
            component.insert("properties".into(), Value::Array(properties));
            Value::Object(component)
        })
        .collect();
    for p in os.unwrap_or_default() {
        let mut component = serde_json::Map::new();
        component.insert("type".into(), "library".into());
        component.insert("bom-ref".into(), p.purl().into());
        component.insert("name".into(), p.name.clone().into());
        component.insert("version".into(), p.version.clone().into());
        component.insert("purl".into(), p.purl().into());
        if !p.licenses.is_empty() {
            // Debian's short names are not all SPDX identifiers: named, not `id`.
            let licenses: Vec<Value> = p.licenses.iter().map(|l| json!({ "license": { "name": l } })).collect();
            component.insert("licenses".into(), Value::Array(licenses));
        }
        component.insert("properties".into(), json!([{ "name": "portier:layer", "value": "os" }]));
        components.push(Value::Object(component));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "tools": { "components": [{ "type": "application", "name": "portier", "version": version }] },
            "component": {
                "type": "application",
                "bom-ref": format!("pkg:cargo/portier@{version}"),
                "name": "portier",
                "version": version,
                "description": env!("CARGO_PKG_DESCRIPTION"),
                "licenses": [{ "expression": env!("CARGO_PKG_LICENSE") }],
                "purl": format!("pkg:cargo/portier@{version}"),
            },
        },
        "components": components,
    })
}

/// One line of the third-party software table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThirdPartyRow {
    pub name: String,
    pub version: String,
    /// SPDX expression; empty when the package does not declare one.
    pub license: String,
    /// `crates.io`, `path`, `git`, or `debian` for the image's packages.
    pub source: String,
    /// False for what only runs in the compiler (procedural macros and their crates).
    pub linked: bool,
}

/// The dossier's third-party software section: crates, and the image's OS
/// packages when known (a separate list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThirdParty {
    pub crates: Vec<ThirdPartyRow>,
    pub os_packages: Option<Vec<ThirdPartyRow>>,
}

/// The table's rows.
pub fn third_party(crates: &[Crate], os: Option<&[OsPackage]>) -> ThirdParty {
    ThirdParty {
        crates: crates
            .iter()
            .map(|c| ThirdPartyRow {
                name: c.name.clone(),
                version: c.version.clone(),
                license: c.spdx_license().unwrap_or_default(),
                source: c.source.clone(),
                linked: c.linked,
            })
            .collect(),
        os_packages: os.map(|list| {
            list.iter()
                .map(|p| ThirdPartyRow {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    license: p.licenses.join(", "),
                    source: "debian".to_owned(),
                    linked: true,
                })
                .collect()
        }),
    }
}

struct Words {
    title: &'static str,
    intro: &'static str,
    crates: &'static str,
    os: &'static str,
    os_note: &'static str,
    name: &'static str,
    version: &'static str,
    license: &'static str,
    source: &'static str,
    none: &'static str,
    compile_time: &'static str,
    compile_note: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            title: "Third-party software",
            intro: "Every crate compiled into this build of Portier, with its exact version and licence, \
                    recorded when the binary was built. The same list, with checksums, is printed as a \
                    CycloneDX SBOM by `portier sbom`.",
            crates: "Rust crates",
            os: "Operating system packages (container image)",
            os_note: "Licences of Debian packages as their machine-readable copyright files declare them (Debian short names); where none is shown the file is free-form: see /usr/share/doc/PACKAGE/copyright in the image.",
            name: "Name",
            version: "Version",
            license: "Licence",
            source: "Source",
            none: "none declared",
            compile_time: "compile time only",
            compile_note: "\"compile time only\": procedural macros and the crates only they use run inside \
                           the compiler to generate code; they are not in the binary.",
        },
        Lang::Fr => Words {
            title: "Logiciels tiers",
            intro: "Toutes les bibliothèques (crates) compilées dans cette version de Portier, avec leur \
                    version exacte et leur licence, relevées à la compilation du binaire. La même liste, \
                    avec les empreintes, est fournie en nomenclature CycloneDX par `portier sbom`.",
            crates: "Bibliothèques Rust",
            os: "Paquets du système d'exploitation (image conteneur)",
            os_note: "Licences des paquets Debian telles que leurs fichiers copyright lisibles par machine les déclarent (noms courts de Debian) ; quand aucune n'est indiquée, le fichier est en texte libre : voir /usr/share/doc/PAQUET/copyright dans l'image.",
            name: "Nom",
            version: "Version",
            license: "Licence",
            source: "Origine",
            none: "non déclarée",
            compile_time: "compilation seulement",
            compile_note: "« compilation seulement » : les macros procédurales et les bibliothèques qu'elles \
                           seules utilisent s'exécutent dans le compilateur pour produire du code ; elles ne \
                           sont pas dans le binaire.",
        },
    }
}

fn source_cell(r: &ThirdPartyRow, w: &Words) -> String {
    if r.linked {
        r.source.clone()
    } else {
        format!("{} ({})", r.source, w.compile_time)
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

impl ThirdParty {
    /// The section in Markdown.
    pub fn to_markdown(&self, lang: Lang) -> String {
        let w = words(lang);
        let mut out = format!("## {}\n\n{}\n\n", w.title, w.intro);
        let table = |out: &mut String, title: &str, rows: &[ThirdPartyRow]| {
            let _ = write!(
                out,
                "### {title} ({})\n\n| {} | {} | {} | {} |\n|---|---|---|---|\n",
                rows.len(),
                w.name,
                w.version,
                w.license,
                w.source
            );
            for r in rows {
                let license = if r.license.is_empty() { w.none } else { &r.license };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    md_cell(&r.name),
                    md_cell(&r.version),
                    md_cell(license),
                    md_cell(&source_cell(r, &w))
                );
            }
            out.push('\n');
        };
        table(&mut out, w.crates, &self.crates);
        let _ = writeln!(out, "{}\n", w.compile_note);
        if let Some(os) = &self.os_packages {
            table(&mut out, w.os, os);
            let _ = writeln!(out, "{}\n", w.os_note);
        }
        out
    }

    /// The section as an HTML fragment (escaped by maud).
    pub fn to_html(&self, lang: Lang) -> String {
        let w = words(lang);
        let table = |title: &str, rows: &[ThirdPartyRow]| {
            maud::html! {
                h3 { (title) " (" (rows.len()) ")" }
                table {
                    thead { tr { th { (w.name) } th { (w.version) } th { (w.license) } th { (w.source) } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (r.name) } td { (r.version) }
                                td { @if r.license.is_empty() { (w.none) } @else { (r.license) } }
                                td { (source_cell(r, &w)) }
                            }
                        }
                    }
                }
            }
        };
        maud::html! {
            section lang=(lang.code()) {
                h2 { (w.title) }
                p { (w.intro) }
                (table(w.crates, &self.crates))
                p { (w.compile_note) }
                @if let Some(os) = &self.os_packages {
                    (table(w.os, os))
                    p { (w.os_note) }
                }
            }
        }
        .into_string()
    }

    /// The section as JSON (the same rows; headings are the reader's business).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, license: &str, checksum: Option<&str>) -> Crate {
        Crate {
            name: name.to_owned(),
            version: "1.2.3".to_owned(),
            license: license.to_owned(),
            source: "crates.io".to_owned(),
            source_id: Some("registry+https://github.com/rust-lang/crates.io-index".to_owned()),
            checksum: checksum.map(str::to_owned),
            proc_macro: false,
            linked: true,
        }
    }

    #[test]
    fn legacy_slash_licences_become_spdx_or() {
        assert_eq!(
            krate("a", "MIT/Apache-2.0", None).spdx_license().as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            krate("a", "Apache-2.0 / MIT", None).spdx_license().as_deref(),
            Some("Apache-2.0 OR MIT")
        );
        assert_eq!(
            krate("a", "MIT OR Apache-2.0", None).spdx_license().as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(krate("a", "", None).spdx_license(), None);
    }

    #[test]
    fn recorded_error_refuses() {
        let err = parse_recorded(r#"{"target":"x","error":"cargo tree failed"}"#).unwrap_err();
        assert!(err.to_string().contains("cargo tree failed"), "{err}");
        assert!(parse_recorded(r#"{"target":"x","crates":[]}"#).is_err());
    }

    #[test]
    fn this_build_is_recorded() {
        let list = crates().unwrap();
        let linked = |name: &str| list.iter().find(|c| c.name == name).map(|c| (c.linked, c.proc_macro));
        assert_eq!(linked("serde"), Some((true, false)));
        assert_eq!(linked("serde_derive"), Some((false, true)));
        assert_eq!(linked("syn"), Some((false, false)), "only procedural macros use syn");
        assert!(list
            .iter()
            .any(|c| c.name == "rustls" && c.checksum.as_deref().map(str::len) == Some(64)));
        assert!(
            list.iter().all(|c| c.name != "portier"),
            "the root is the metadata component"
        );
    }

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\
                    Description: GNU C Library\n multi-line: description\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n\
                    Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n";
        let pkgs = parse_dpkg_status(text);
        assert_eq!(
            pkgs.iter()
                .map(|p| (p.name.as_str(), p.version.as_str()))
                .collect::<Vec<_>>(),
            [("libc6", "2.36-9+deb12u4"), ("tzdata", "2024a-0+deb12u1")]
        );
        assert_eq!(pkgs[0].purl(), "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64");
        let epoch = OsPackage {
            name: "x".into(),
            version: "1:2.0".into(),
            architecture: String::new(),
            licenses: Vec::new(),
        };
        assert_eq!(epoch.purl(), "pkg:deb/debian/x@1%3A2.0");
    }

    /// An image's root: the dpkg status and the copyright files beside it.
    #[test]
    fn os_packages_carry_their_copyright_files_licences() {
        let root = tempfile::tempdir().unwrap();
        let status = root.path().join("var/lib/dpkg/status");
        std::fs::create_dir_all(status.parent().unwrap()).unwrap();
        std::fs::write(
            &status,
            "Package: libc6\nStatus: install ok installed\nVersion: 2.36\n\n\
             Package: tzdata\nStatus: install ok installed\nVersion: 2024a\n\n\
             Package: nodoc\nStatus: install ok installed\nVersion: 1\n",
        )
        .unwrap();
        let doc = root.path().join("usr/share/doc");
        for (pkg, text) in [
            (
                "libc6",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
                 Files: *\nCopyright: 1991 FSF\nLicense: LGPL-2.1+\n\n\
                 Files: debian/*\nLicense: GPL-2+\n\nLicense: LGPL-2.1+\n The text.\n",
            ),
            (
                "tzdata",
                "This is free-form: public domain, see below.\nLicense: nothing parsed\n",
            ),
        ] {
            std::fs::create_dir_all(doc.join(pkg)).unwrap();
            std::fs::write(doc.join(pkg).join("copyright"), text).unwrap();
        }
        let pkgs = os_packages(&status).unwrap().unwrap();
        let licences: Vec<(&str, Vec<String>)> = pkgs.iter().map(|p| (p.name.as_str(), p.licenses.clone())).collect();
        assert_eq!(
            licences,
            [
                ("libc6", vec!["LGPL-2.1+".to_owned(), "GPL-2+".to_owned()]),
                ("nodoc", vec![]),
                ("tzdata", vec![]),
            ]
        );
        let table = third_party(&[], Some(&pkgs));
        assert_eq!(table.os_packages.as_ref().unwrap()[0].license, "LGPL-2.1+, GPL-2+");
        let bom = cyclonedx(&[], Some(&pkgs), uuid::Uuid::nil(), Utc::now());
        assert_eq!(bom["components"][0]["licenses"][1]["license"]["name"], "GPL-2+");
        assert!(bom["components"][1].get("licenses").is_none());
        assert_eq!(os_packages(&root.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn tables_in_both_languages_escape_their_cells() {
        let mut syn = krate("syn", "MIT OR Apache-2.0", None);
        syn.linked = false;
        let crates = [krate("a|b", "MIT/Apache-2.0", None), krate("<script>", "", None), syn];
        let os = [OsPackage {
            name: "libc6".into(),
            version: "2.36".into(),
            architecture: "amd64".into(),
            licenses: Vec::new(),
        }];
        let t = third_party(&crates, Some(&os));
        let md = t.to_markdown(Lang::Fr);
        assert!(md.contains("## Logiciels tiers"));
        assert!(md.contains("| a\\|b | 1.2.3 | MIT OR Apache-2.0 | crates.io |"), "{md}");
        assert!(md.contains("| <script> | 1.2.3 | non déclarée | crates.io |"), "{md}");
        assert!(md.contains("| libc6 | 2.36 | non déclarée | debian |"), "{md}");
        assert!(
            md.contains("| syn | 1.2.3 | MIT OR Apache-2.0 | crates.io (compilation seulement) |"),
            "{md}"
        );
        let html = t.to_html(Lang::En);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("Operating system packages"));
        let none = third_party(&crates, None);
        assert!(!none.to_markdown(Lang::En).contains("Operating system"));
        let json: Value = serde_json::from_str(&none.to_json().unwrap()).unwrap();
        assert_eq!(json["crates"][0]["license"], "MIT OR Apache-2.0");
        assert!(json["os_packages"].is_null());
    }
}
