//! Certificates: the development PKI `portier init` writes, technician
//! certificates signed by the vendor CA, and the identity of a presented certificate.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::domain::Fingerprint;

/// What can go wrong with certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("not a PEM certificate")]
    NotPem,
    #[error("certificate subject refused: {0}")]
    BadSubject(#[from] crate::domain::BadText),
    #[error("unparsable X.509 certificate: {0}")]
    BadCertificate(String),
    #[error(transparent)]
    KeyFile(#[from] crate::secrets::key_file::KeyFileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate authority able to sign: the server CA or the vendor CA.
pub struct CertAuthority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // Back-dated a little so a client whose clock is slightly behind accepts it.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

impl CertAuthority {
    /// A new self-signed CA (ECDSA P-256) valid for `days`.
    pub fn generate(common_name: &str, days: i64) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, Some("Portier"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, days);
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// Loads a CA from its PEM certificate and key, to sign with it.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem)?;
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA private key, PEM. Write it with [`write_private`].
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A TLS server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[&str], days: i64) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(names.first().copied().unwrap_or("portier"), Some("Portier"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, days);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client (technician) certificate with a fresh key; for development and tests.
    pub fn issue_client(&self, common_name: &str, organization: Option<&str>, days: i64) -> Result<Issued, PkiError> {
        check_subject(common_name, organization)?;
        let key = KeyPair::generate()?;
        let params = client_params(common_name, organization, days);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a technician's CSR. The subject is set by the CA, not taken from the
    /// CSR: only its public key is used.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
        organization: Option<&str>,
        days: i64,
    ) -> Result<String, PkiError> {
        check_subject(common_name, organization)?;
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        csr.params = client_params(common_name, organization, days);
        Ok(csr.signed_by(&self.cert, &self.key)?.pem())
    }
}

/// A subject's names are one line each: a newline or a control character would
/// forge a second attribute in every log and export that prints the subject.
fn check_subject(common_name: &str, organization: Option<&str>) -> Result<(), PkiError> {
    crate::domain::one_line("common name", common_name, 256)?;
    if let Some(o) = organization {
        crate::domain::one_line("organization", o, 256)?;
    }
    Ok(())
}

fn client_params(common_name: &str, organization: Option<&str>, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name, organization);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    params
}

/// What Portier records of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub fingerprint: Fingerprint,
    /// RFC 4514 subject, e.g. `CN=alice,O=Acme`.
    pub subject: String,
    /// Start of the validity period.
    pub not_before: DateTime<Utc>,
    /// End of the validity period.
    pub not_after: DateTime<Utc>,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let not_before = DateTime::from_timestamp(cert.validity().not_before.timestamp(), 0)
            .ok_or_else(|| PkiError::BadCertificate("not_before out of range".into()))?;
        let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
            .ok_or_else(|| PkiError::BadCertificate("not_after out of range".into()))?;
        Ok(Self {
            fingerprint: Fingerprint::of_der(der),
            subject: cert.subject().to_string(),
            not_before,
            not_after,
        })
    }

    /// Reads the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let der = first_cert_der(pem)?;
        Self::from_der(&der)
    }
}

/// The DER bytes of the first certificate in a PEM text.
pub fn first_cert_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .ok_or(PkiError::NotPem)
}

/// Writes a secret (private key, token) readable by its owner only (0600).
pub fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes a public file (certificate).
pub fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    std::fs::write(path, contents).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Paths of the development PKI inside a certificate directory.
#[derive(Debug, Clone)]
pub struct DevPkiPaths {
    pub server_ca: PathBuf,
    pub server_ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub vendor_ca: PathBuf,
    pub vendor_ca_key: PathBuf,
}

impl DevPkiPaths {
    /// The standard file names under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            server_ca: dir.join("server-ca.pem"),
            server_ca_key: dir.join("server-ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            vendor_ca: dir.join("vendor-ca.pem"),
            vendor_ca_key: dir.join("vendor-ca.key"),
        }
    }
}

/// Generates the development PKI in `dir`: a server CA and the gateway/API server
/// certificate for localhost, and the vendor CA that signs technician certificates.
pub fn generate_dev_pki(dir: &Path) -> Result<DevPkiPaths, PkiError> {
    generate_dev_pki_under(dir, None)
}

/// [`generate_dev_pki`] with the private keys encrypted under `master`
/// (docs/secrets.md), or in clear (0600) without one.
pub fn generate_dev_pki_under(dir: &Path, master: Option<&crate::secrets::MasterKey>) -> Result<DevPkiPaths, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let paths = DevPkiPaths::in_dir(dir);
    let server_ca = CertAuthority::generate("Portier development server CA", 3650)?;
    let server = server_ca.issue_server(&["localhost", "127.0.0.1", "::1"], 825)?;
    let vendor_ca = CertAuthority::generate("Portier vendor CA", 3650)?;
    use crate::secrets::envelope::KeyRole;
    let write_key = |path: &Path, role: KeyRole, pem: &str| match master {
        Some(k) => write_private(path, &crate::secrets::key_file::seal_pem(k, role, pem, path)?),
        None => write_private(path, pem),
    };
    write_public(&paths.server_ca, &server_ca.cert_pem())?;
    write_key(&paths.server_ca_key, KeyRole::ServerCa, &server_ca.key_pem())?;
    // The chain: leaf then CA, so clients that only know the CA can verify.
    write_public(
        &paths.server_cert,
        &format!("{}{}", server.cert_pem, server_ca.cert_pem()),
    )?;
    write_key(&paths.server_key, KeyRole::TlsServer, &server.key_pem)?;
    write_public(&paths.vendor_ca, &vendor_ca.cert_pem())?;
    write_key(&paths.vendor_ca_key, KeyRole::VendorCa, &vendor_ca.key_pem())?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_the_given_subject() {
        let ca = CertAuthority::generate("test CA", 1).unwrap();
        let c = ca.issue_client("alice", Some("Acme"), 1).unwrap();
        let info = CertInfo::from_pem(&c.cert_pem).unwrap();
        assert_eq!(info.subject, "O=Acme, CN=alice");
        assert!(info.not_after > Utc::now());
        assert!(info.not_before < Utc::now() && info.not_before > Utc::now() - chrono::Duration::minutes(10));
        assert!(CertInfo::from_pem("garbage").is_err());
    }

    #[test]
    fn subjects_with_line_breaks_are_refused() {
        let ca = CertAuthority::generate("Vendor CA", 1).unwrap();
        assert!(matches!(
            ca.issue_client("alice\nCN=admin", Some("Acme"), 1),
            Err(PkiError::BadSubject(_))
        ));
        assert!(matches!(
            ca.issue_client("alice", Some("Acme\u{202e}"), 1),
            Err(PkiError::BadSubject(_))
        ));
    }

    #[test]
    fn csr_subject_is_replaced_by_the_ca() {
        let ca = CertAuthority::generate("test CA", 1).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = dn("evil-admin", Some("Hospital"));
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let cert = ca.sign_csr(&csr, "bob", Some("Acme"), 30).unwrap();
        assert_eq!(CertInfo::from_pem(&cert).unwrap().subject, "O=Acme, CN=bob");
        let reloaded = CertAuthority::load(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert!(reloaded.sign_csr(&csr, "bob", None, 1).is_ok());
    }

    #[test]
    fn private_files_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_private(&p, "secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write_private(&p, "other").is_err());
    }
}
