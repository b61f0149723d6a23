//! `portier dossier` on a scripted deployment (init, then a vendor and a device
//! in its database), in both languages: every document is written, the rights
//! document is `portier rights`' own, the architecture names the vendor's
//! network and the device's subnet, and the cryptography section lists exactly
//! the cipher suites the gateway's TLS configuration accepts (handshakes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use portier::config::Settings;
use portier::gateway::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn portier() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portier"))
}

fn run(args: &[&str]) -> String {
    run_in(Path::new("."), args)
}

fn run_in(cwd: &Path, args: &[&str]) -> String {
    let out = portier().current_dir(cwd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `portier init`, then a vendor with a declared network and a device.
async fn deployment(dir: &Path) -> PathBuf {
    let setup = dir.join("site");
    run_in(dir, &["init", "--dir", "site"]);
    let config = setup.join("portier.toml");
    let settings = Settings::load(&config).unwrap();
    let store = portier::store::connect(&settings.database.url).await.unwrap();
    let vendor = crate::common::acme(store.as_ref(), "198.51.100.0/24").await;
    crate::common::mri(store.as_ref(), &vendor, "10.20.30.40:104", "dicom").await;
    config
}

const FILES: &[&str] = &[
    "index.md",
    "index.html",
    "rights.md",
    "rights.html",
    "rights.json",
    "crypto.md",
    "crypto.html",
    "crypto.json",
    "flows.md",
    "flows.html",
    "flows.csv",
    "flows.json",
    "architecture.md",
    "architecture.html",
    "architecture.dot",
    "architecture.mmd",
    "third-party.md",
    "third-party.html",
    "third-party.json",
    "sbom.cdx.json",
    "installation.md",
    "installation.html",
    "procedures.md",
    "procedures.html",
];

#[tokio::test]
async fn dossier_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let config = deployment(dir.path()).await;
    for lang in ["en", "fr"] {
        let out = dir.path().join(lang);
        run(&[
            "dossier",
            "--out",
            out.to_str().unwrap(),
            "--lang",
            lang,
            "--config",
            config.to_str().unwrap(),
        ]);
        for f in FILES {
            let text = std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{lang}/{f}: {e}"));
            assert!(!text.trim().is_empty(), "{lang}/{f} is empty");
        }
        let index = std::fs::read_to_string(out.join("index.md")).unwrap();
        for f in FILES.iter().filter(|f| !f.starts_with("index.")) {
            assert!(index.contains(&format!("({f})")), "index.md does not link {f}");
        }
        for (ext, format) in [("md", "md"), ("html", "html"), ("json", "json")] {
            assert_eq!(
                std::fs::read_to_string(out.join(format!("rights.{ext}"))).unwrap(),
                run(&["rights", "--lang", lang, "--format", format]),
                "{lang}/rights.{ext} differs from `portier rights`"
            );
        }
        for f in ["architecture.dot", "architecture.mmd"] {
            let text = std::fs::read_to_string(out.join(f)).unwrap();
            for needle in ["198.51.100.0/24", "10.20.30.0/24", "mri-1", "Acme Imaging", "SQLite"] {
                assert!(text.contains(needle), "{lang}/{f} does not name {needle}:\n{text}");
            }
        }
        if which_dot() {
            let svg = std::fs::read_to_string(out.join("architecture.svg")).unwrap();
            assert!(svg.contains("<svg") && svg.contains("10.20.30.0/24"));
        }
        let install = std::fs::read_to_string(out.join("installation.md")).unwrap();
        assert!(install.contains("bootstrap-admin"), "{install}");
        assert!(install.contains("TCP/8443"), "{install}");
        let procedures = std::fs::read_to_string(out.join("procedures.md")).unwrap();
        assert!(procedures.contains("Acme Imaging: soc@acme.example"), "{procedures}");
        assert!(procedures.contains("portier lockdown on"), "{procedures}");
        assert!(procedures.contains("portier purge --before"), "{procedures}");
    }
    let fr = std::fs::read_to_string(dir.path().join("fr/procedures.md")).unwrap();
    assert!(fr.contains("Mise en sécurité"));
    // An existing, non-empty directory is refused.
    let again = portier()
        .args(["dossier", "--out", dir.path().join("en").to_str().unwrap(), "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

fn which_dot() -> bool {
    Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// One handshake with the gateway's own server configuration, the client
/// offering only `suite`. Ok when both sides complete it.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    server_ca: &[CertificateDer<'static>],
    client_cert: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    suite: rustls::SupportedCipherSuite,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.map(|_| ()).map_err(|e| e.to_string())
    });
    let mut roots = rustls::RootCertStore::empty();
    for c in server_ca {
        roots.add(c.clone()).unwrap();
    }
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![suite],
        ..rustls::crypto::ring::default_provider()
    };
    let version = match suite {
        rustls::SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        rustls::SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
    };
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(client_cert.0, client_cert.1)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client_result = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let server_result = accept.await.unwrap();
    client_result.and(server_result)
}

#[tokio::test]
async fn crypto_section_lists_exactly_the_suites_the_gateway_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let config = deployment(dir.path()).await;
    let out = dir.path().join("d");
    run(&[
        "dossier",
        "--out",
        out.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let crypto: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("crypto.json")).unwrap()).unwrap();
    let listed: Vec<String> = crypto["gateway"]["cipher_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert!(!listed.is_empty());

    // The gateway's configuration, built as the node builds it from these files.
    let settings = Settings::load(&config).unwrap();
    let g = &settings.gateway;
    let server = tls::gateway_server_config(
        tls::load_certs(&g.cert).unwrap(),
        tls::load_key(&g.key).unwrap(),
        tls::load_certs(&g.vendor_ca).unwrap(),
        &tls::versions(&g.tls_versions).unwrap(),
    )
    .unwrap();
    let server_ca = tls::load_certs(&config.parent().unwrap().join("certs/server-ca.pem")).unwrap();
    let vendor_ca = portier::pki::CertAuthority::load(
        &std::fs::read_to_string(&g.vendor_ca).unwrap(),
        &std::fs::read_to_string(&g.vendor_ca_key).unwrap(),
    )
    .unwrap();
    let tech = vendor_ca.issue_client("alice", Some("Acme Imaging"), 1).unwrap();
    let client_cert = || {
        (
            CertificateDer::pem_slice_iter(tech.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_slice(tech.key_pem.as_bytes()).unwrap(),
        )
    };

    let mut unlisted = 0;
    for suite in rustls::crypto::ring::default_provider().cipher_suites {
        let name = format!("{:?}", suite.suite());
        let result = handshake(server.clone(), &server_ca, client_cert(), suite).await;
        if listed.contains(&name) {
            assert!(result.is_ok(), "listed suite {name} refused: {result:?}");
        } else {
            unlisted += 1;
            assert!(result.is_err(), "unlisted suite {name} accepted");
        }
    }
    // The default setup is TLS 1.3 only: the TLS 1.2 suites are the unlisted ones.
    assert!(unlisted > 0, "no unlisted suite was tried");
    assert!(listed.iter().all(|s| s.starts_with("TLS13_")), "{listed:?}");
}

/// Regenerates docs/dossier-example/{en,fr} from the scripted deployment when
/// PORTIER_DOSSIER_EXAMPLE is set (`.ci/dossier-example`); paths in it are
/// relative to the deployment's directory, so the example carries no temp path.
#[tokio::test]
async fn example_in_the_docs() {
    if std::env::var_os("PORTIER_DOSSIER_EXAMPLE").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path()).await;
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dossier-example");
    for lang in ["en", "fr"] {
        run_in(
            dir.path(),
            &[
                "dossier",
                "--out",
                lang,
                "--lang",
                lang,
                "--config",
                "site/portier.toml",
            ],
        );
        let dest = target.join(lang);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).unwrap();
        }
        std::fs::create_dir_all(&dest).unwrap();
        for entry in std::fs::read_dir(dir.path().join(lang)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
}

/// The same dossier served by a running node (`GET /api/v1/dossier/{lang}` and
/// its documents): every file of the index answers with its media type, the
/// rights are the enforced table's, the flows and the architecture name what
/// the database holds, HTML runs nothing (sandboxed), and what is not a
/// document or a language is a 404.
async fn served(db: crate::common::TestDb) {
    use portier::rights::{document, Format, TABLE};
    let t = crate::common::TestApp::spawn(db).await;
    let (st, vendor) = t
        .call(
            "POST",
            "/api/v1/vendors",
            Some(&t.admin),
            Some(serde_json::json!({"name": "Acme <b>Imaging</b>", "networks": ["198.51.100.0/24"]})),
        )
        .await;
    assert_eq!(st, 201, "{vendor}");
    let (st, device) = t
        .call(
            "POST",
            "/api/v1/devices",
            Some(&t.admin),
            Some(serde_json::json!({"name": "mri-1", "address": "10.20.30.40:104", "protocol": "dicom", "vendor_ids": [vendor["id"]]})),
        )
        .await;
    assert_eq!(st, 201, "{device}");
    let auditor = t.token("auditor", "dossier-reader", None).await;
    let get = |path: String, token: String| {
        let req = t.http.get(t.url(&path)).bearer_auth(token);
        async move { req.send().await.unwrap() }
    };
    for (code, lang) in [("en", portier::ops::Lang::En), ("fr", portier::ops::Lang::Fr)] {
        let (st, index) = t
            .call("GET", &format!("/api/v1/dossier/{code}"), Some(&auditor), None)
            .await;
        assert_eq!(st, 200, "{index}");
        let files: Vec<String> = serde_json::from_value(index["files"].clone()).unwrap();
        for f in FILES {
            assert!(files.iter().any(|x| x == f), "{code}: {f} not served: {files:?}");
        }
        assert_eq!(index["documents"][0]["stem"], "rights");
        for f in &files {
            let resp = get(format!("/api/v1/dossier/{code}/{f}"), auditor.clone()).await;
            assert_eq!(resp.status(), 200, "{code}/{f}");
            let h = resp.headers().clone();
            let ctype = h["content-type"].to_str().unwrap().to_owned();
            let expected = match f.rsplit('.').next().unwrap() {
                "md" => "text/markdown",
                "html" => "text/html",
                "json" => "application/json",
                "csv" => "text/csv",
                "svg" => "image/svg+xml",
                _ => "text/plain",
            };
            assert!(ctype.starts_with(expected), "{code}/{f}: {ctype}");
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(
                csp.starts_with("sandbox allow-same-origin;") && csp.contains("default-src 'none'"),
                "{csp}"
            );
            let body = resp.text().await.unwrap();
            assert!(!body.trim().is_empty(), "{code}/{f} is empty");
            match f.as_str() {
                "rights.json" => assert_eq!(body, document(TABLE, lang, Format::Json)),
                "rights.html" => assert_eq!(body, document(TABLE, lang, Format::Html)),
                "flows.json" => assert!(body.contains("198.51.100.0/24"), "{body}"),
                "architecture.dot" => {
                    assert!(body.contains("10.20.30.0/24") && body.contains("mri-1"), "{body}")
                }
                // A vendor's name is text in the page, never markup.
                "architecture.html" | "flows.html" => {
                    assert!(!body.contains("<b>Imaging"), "{f}: {body}");
                }
                _ => {}
            }
        }
        for missing in ["secrets.toml", "..%2Fportier.toml"] {
            let path = format!("/api/v1/dossier/{code}/{missing}");
            assert_eq!(t.call("GET", &path, Some(&auditor), None).await.0, 404, "{path}");
        }
    }
    let (st, body) = t.call("GET", "/api/v1/dossier/de", Some(&auditor), None).await;
    assert_eq!(st, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("en or fr"),
        "{body}"
    );
    t.stop().await;
}
crate::on_both_backends!(the_dossier_is_served_to_auditors, super::served);

/// Requests at the same moment share one assembly, and an assembly is served
/// again for a few seconds: the same documents, not a second database read.
async fn one_assembly_at_a_time(db: crate::common::TestDb) {
    use portier::dossier::Served;
    use portier::ops::Lang;
    let t = crate::common::TestApp::spawn(db).await;
    let settings = t.settings().clone();
    let at_rest = portier::secrets::AtRest::locate(&settings.secrets).unwrap();
    let served = Served::new(settings, at_rest);
    let store = t.app.store.as_ref();
    let (a, b) = tokio::join!(served.current(store, Lang::En), served.current(store, Lang::En));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(&a, &b), "two assemblies for two requests at once");
    let again = served.current(store, Lang::En).await.unwrap();
    assert!(Arc::ptr_eq(&a, &again), "not served again within its freshness");
    let fr = served.current(store, Lang::Fr).await.unwrap();
    assert!(!Arc::ptr_eq(&a, &fr));
    assert!(fr.get("procedures.md").is_some() && a.get("procedures.md").is_some());
    t.stop().await;
}
crate::on_both_backends!(requests_share_one_assembly, super::one_assembly_at_a_time);
