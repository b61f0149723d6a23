//! The authentication and cryptography section, read from the TLS stack as the
//! gateway and the API build it (provider, enabled versions, the client
//! certificate verifier) and from the configured certificates, not written by hand.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::config::Settings;
use crate::gateway::tls;
use crate::ops::Lang;
use crate::secrets::AtRestReport;

/// One TLS endpoint (gateway or API) as its ServerConfig is built.
#[derive(Debug, Clone, Serialize)]
pub struct TlsEndpoint {
    pub listen: String,
    /// `TLSv1_3`, `TLSv1_2`.
    pub versions: Vec<String>,
    /// The cipher suites offered, by IANA name (rustls' spelling).
    pub cipher_suites: Vec<String>,
    pub key_exchange_groups: Vec<String>,
    /// Signature schemes accepted for the peer's certificate (client certificates);
    /// empty when the endpoint asks for none.
    pub client_signature_schemes: Vec<String>,
    pub client_certificate_required: bool,
    pub session_resumption: bool,
}

/// A configured certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    pub role: String,
    pub path: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub key_type: String,
    pub key_bits: Option<usize>,
    pub signature_algorithm: String,
}

/// The whole section.
#[derive(Debug, Clone, Serialize)]
pub struct CryptoReport {
    pub gateway: TlsEndpoint,
    pub api: TlsEndpoint,
    pub certificates: Vec<CertificateInfo>,
    pub client_certificate_rules: Vec<String>,
    pub token_hashing: String,
    /// The argon2 parameter sets found in stored password hashes (none: no local password).
    pub password_hashing: Vec<String>,
    pub totp: String,
    pub audit_chain: String,
    pub at_rest: AtRestReport,
}

/// The suites of `provider` that the enabled `versions` can negotiate: what the
/// ServerConfig built from them offers.
fn endpoint(
    listen: std::net::SocketAddr,
    version_names: &[String],
    vendor_ca: Option<&Path>,
) -> Result<TlsEndpoint, tls::TlsError> {
    let provider = tls::provider();
    let versions = tls::versions(version_names)?;
    let cipher_suites = provider
        .cipher_suites
        .iter()
        .filter(|s| versions.iter().any(|v| v.version == s.version().version))
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    let key_exchange_groups = provider.kx_groups.iter().map(|g| format!("{:?}", g.name())).collect();
    let client_signature_schemes = match vendor_ca {
        Some(ca) => tls::client_verifier(tls::load_certs(ca)?)?
            .supported_verify_schemes()
            .iter()
            .map(|s| format!("{s:?}"))
            .collect(),
        None => Vec::new(),
    };
    Ok(TlsEndpoint {
        listen: listen.to_string(),
        versions: versions.iter().map(|v| format!("{:?}", v.version)).collect(),
        cipher_suites,
        key_exchange_groups,
        client_signature_schemes,
        client_certificate_required: vendor_ca.is_some(),
        // The gateway disables it (tls::gateway_server_config); the API keeps rustls' default.
        session_resumption: vendor_ca.is_none(),
    })
}

fn oid_name(oid: &str) -> &str {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        other => other,
    }
}

/// Key type and size of the first certificate of a PEM file.
pub fn certificate(role: &str, path: &Path) -> Result<CertificateInfo, tls::TlsError> {
    let certs = tls::load_certs(path)?;
    let bad = |reason: String| tls::TlsError::Read {
        path: path.to_owned(),
        reason,
    };
    let der = certs
        .first()
        .ok_or_else(|| tls::TlsError::NoCertificate(path.to_owned()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| bad(e.to_string()))?;
    let spki = &cert.tbs_certificate.subject_pki;
    let alg = spki.algorithm.algorithm.to_id_string();
    let mut key_type = oid_name(&alg).to_owned();
    if let Some(curve) = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()) {
        key_type = format!("{key_type} {}", oid_name(&curve.to_id_string()));
    }
    let key_bits = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => Some(ec.key_size()),
        _ => None,
    };
    let sig = cert.signature_algorithm.algorithm.to_id_string();
    Ok(CertificateInfo {
        role: role.to_owned(),
        path: path.display().to_string(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.to_string(),
        key_type,
        key_bits,
        signature_algorithm: oid_name(&sig).to_owned(),
    })
}

/// The argon2 parameters of a PHC string, e.g. `argon2id v=19 m=19456 t=2 p=1`.
fn phc_params(phc: &str) -> Option<String> {
    let h = argon2::password_hash::PasswordHash::new(phc).ok()?;
    let params: Vec<String> = h.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(format!(
        "{} v={} {}",
        h.algorithm,
        h.version.map(|v| v.to_string()).unwrap_or_default(),
        params.join(" ")
    ))
}

/// Gathers the section. `password_hashes`: the stored PHC strings.
pub fn report(
    settings: &Settings,
    password_hashes: &[String],
    at_rest: AtRestReport,
) -> Result<CryptoReport, tls::TlsError> {
    let g = &settings.gateway;
    let a = &settings.api;
    let mut certificates = vec![
        certificate("gateway server", &g.cert)?,
        certificate("vendor CA", &g.vendor_ca)?,
    ];
    certificates.push(certificate("API server", &a.cert)?);
    let mut password_hashing: Vec<String> = password_hashes.iter().filter_map(|h| phc_params(h)).collect();
    password_hashing.sort();
    password_hashing.dedup();
    Ok(CryptoReport {
        gateway: endpoint(g.listen, &g.tls_versions, Some(&g.vendor_ca))?,
        api: endpoint(a.listen, &a.tls_versions, None)?,
        certificates,
        client_certificate_rules: vec![
            format!("required on the gateway; must chain to the vendor CA {}", g.vendor_ca.display()),
            "every connection does a full handshake (no session resumption, no 0-RTT): the chain is re-verified each time".into(),
            format!("technician certificates are issued for {} days by the API", a.technician_cert_days),
            "the certificate's SHA-256 fingerprint must be a registered, non-revoked technician of the vendor (policy, from the database)".into(),
        ],
        token_hashing: "SHA-256 of the bearer token; only the hash and a display prefix are stored".into(),
        password_hashing,
        totp: "RFC 6238 TOTP, HMAC-SHA-1, 6 digits, 30 s steps; a code is accepted once".into(),
        audit_chain: "SHA-256 hash chain over every audit event (portier audit verify)".into(),
        at_rest,
    })
}

fn md_list(out: &mut String, items: &[String]) {
    if items.is_empty() {
        out.push_str("- —\n");
    }
    for i in items {
        let _ = writeln!(out, "- `{i}`");
    }
}

impl CryptoReport {
    /// The section in Markdown.
    pub fn to_markdown(&self, lang: Lang) -> String {
        let fr = lang == Lang::Fr;
        let mut out = String::new();
        let t = |en: &'static str, f: &'static str| if fr { f } else { en };
        let _ = writeln!(
            out,
            "# {}\n",
            t("Authentication and cryptography", "Authentification et cryptographie")
        );
        let _ = writeln!(
            out,
            "{}\n",
            t(
                "Read from the running configuration and the TLS stack (rustls with the ring provider) as Portier builds it.",
                "Lu dans la configuration en service et dans la pile TLS (rustls, fournisseur ring) telle que Portier la construit."
            )
        );
        for (name, e) in [
            (t("Gateway (technicians)", "Passerelle (techniciens)"), &self.gateway),
            (t("Admin API", "API d'administration"), &self.api),
        ] {
            let _ = writeln!(out, "## {name} — `{}`\n", e.listen);
            let _ = writeln!(out, "### {}\n", t("TLS versions", "Versions de TLS"));
            md_list(&mut out, &e.versions);
            let _ = writeln!(out, "\n### {}\n", t("Cipher suites", "Suites de chiffrement"));
            md_list(&mut out, &e.cipher_suites);
            let _ = writeln!(out, "\n### {}\n", t("Key exchange groups", "Groupes d'échange de clés"));
            md_list(&mut out, &e.key_exchange_groups);
            let _ = writeln!(
                out,
                "\n### {}\n",
                t(
                    "Signature schemes of client certificates",
                    "Schémas de signature des certificats clients"
                )
            );
            md_list(&mut out, &e.client_signature_schemes);
            let yes_no = |b: bool| if b { t("yes", "oui") } else { t("no", "non") };
            let _ = writeln!(
                out,
                "\n{}: {} · {}: {}\n",
                t("Client certificate required", "Certificat client exigé"),
                yes_no(e.client_certificate_required),
                t("Session resumption", "Reprise de session"),
                yes_no(e.session_resumption)
            );
        }
        let _ = writeln!(out, "## {}\n", t("Certificates", "Certificats"));
        let _ = writeln!(
            out,
            "| {} |\n| --- | --- | --- | --- | --- | --- | --- |",
            t(
                "Role | File | Subject | Key | Bits | Signature | Expires",
                "Rôle | Fichier | Sujet | Clé | Bits | Signature | Expire"
            )
        );
        for c in &self.certificates {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                c.role,
                c.path,
                c.subject.replace('|', "\\|"),
                c.key_type,
                c.key_bits.map(|b| b.to_string()).unwrap_or_else(|| "—".into()),
                c.signature_algorithm,
                c.not_after
            );
        }
        let _ = writeln!(
            out,
            "\n## {}\n",
            t("Client certificate rules", "Règles des certificats clients")
        );
        for r in &self.client_certificate_rules {
            let _ = writeln!(out, "- {r}");
        }
        let _ = writeln!(out, "\n## {}\n", t("Secrets and hashes", "Secrets et empreintes"));
        let _ = writeln!(out, "- {}: {}", t("API tokens", "Jetons d'API"), self.token_hashing);
        if self.password_hashing.is_empty() {
            let _ = writeln!(
                out,
                "- {}: {}",
                t("Passwords", "Mots de passe"),
                t(
                    "no account has a local password",
                    "aucun compte n'a de mot de passe local"
                )
            );
        }
        for p in &self.password_hashing {
            let _ = writeln!(
                out,
                "- {}: `{p}`",
                t(
                    "Passwords (argon2, per stored hash)",
                    "Mots de passe (argon2, par empreinte stockée)"
                )
            );
        }
        let _ = writeln!(out, "- TOTP: {}", self.totp);
        let _ = writeln!(out, "- {}: {}", t("Audit trail", "Piste d'audit"), self.audit_chain);
        let _ = writeln!(out, "\n## {}\n", t("Secrets at rest", "Secrets stockés"));
        let _ = writeln!(out, "- {}: {}", t("Cipher", "Chiffrement"), self.at_rest.algorithm);
        let _ = writeln!(out, "- {}: {}", t("Key", "Clé"), self.at_rest.key_derivation);
        match &self.at_rest.master_key {
            Some(k) => {
                let _ = writeln!(
                    out,
                    "- {}: `{}`",
                    t("Master key", "Clé maîtresse"),
                    serde_json::to_string(k).unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(out, "- {}", t("No master key found by this command: secrets below marked clear are stored in clear", "Aucune clé maîtresse trouvée par cette commande : les secrets marqués en clair sont stockés en clair"));
            }
        }
        let _ = writeln!(
            out,
            "\n| {} |\n| --- | --- | --- |",
            t("Secret | Location | State", "Secret | Emplacement | État")
        );
        for s in &self.at_rest.secrets {
            let state = serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let count = s.count.map(|n| format!(" ({n})")).unwrap_or_default();
            let _ = writeln!(out, "| {}{count} | `{}` | {state} |", s.what, s.location);
        }
        for h in &self.at_rest.hashed_only {
            let _ = writeln!(out, "| {h} | — | {} |", t("hash only", "empreinte seule"));
        }
        out
    }
}
