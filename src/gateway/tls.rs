//! TLS configuration: the gateway's server side (TLS 1.3, client certificate
//! required and verified against the vendor CA) and the technician's client side
//! used by `portier connect` and the tests.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};

/// Errors while building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read PEM: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{0}: no certificate found")]
    NoCertificate(PathBuf),
    #[error("{0}: no private key found")]
    NoKey(PathBuf),
    #[error("unsupported TLS version {0:?} (expected \"1.2\" or \"1.3\")")]
    BadVersion(String),
    #[error("no TLS version enabled")]
    NoVersion,
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Why a TLS handshake failed, in a few classes: recorded in
/// `tls.handshake_failed` and, with the source address, the key of its audit
/// budget, so one source's flood of one kind cannot hide other failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeFailure {
    /// Not finished within the handshake timeout.
    Timeout,
    /// The peer closed or reset the connection before finishing.
    Closed,
    /// The client presented no certificate.
    NoCertificate,
    /// The client's certificate was refused (unknown issuer, expired, bad signature…).
    BadCertificate,
    /// Not TLS, a version or cipher we do not offer, an alert, a malformed message.
    Protocol,
    /// A configured load balancer sent no valid PROXY protocol v2 header.
    ProxyHeaderInvalid,
    /// A PROXY protocol header from an address not in `gateway.proxy_protocol_from`.
    ProxyHeaderUntrusted,
    /// Anything else (local I/O errors and the like).
    Other,
}

impl HandshakeFailure {
    /// The class of an error returned by the TLS acceptor: from the rustls error
    /// it wraps when there is one, else from the I/O error kind.
    pub fn of(error: &io::Error) -> Self {
        if let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return Self::of_rustls(tls);
        }
        match error.kind() {
            io::ErrorKind::TimedOut => Self::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Self::Closed,
            _ => Self::Other,
        }
    }

    fn of_rustls(error: &rustls::Error) -> Self {
        use rustls::Error as E;
        match error {
            E::NoCertificatesPresented => Self::NoCertificate,
            E::InvalidCertificate(_) => Self::BadCertificate,
            E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::InvalidEncryptedClientHello(_)
            | E::InvalidMessage(_)
            | E::UnsupportedNameType
            | E::DecryptError
            | E::PeerIncompatible(_)
            | E::PeerMisbehaved(_)
            | E::AlertReceived(_)
            | E::PeerSentOversizedRecord
            | E::NoApplicationProtocol => Self::Protocol,
            _ => Self::Other,
        }
    }

    /// The class as written in the audit trail.
    pub fn code(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::NoCertificate => "no_certificate",
            Self::BadCertificate => "bad_certificate",
            Self::Protocol => "protocol",
            Self::ProxyHeaderInvalid => "proxy_header_invalid",
            Self::ProxyHeaderUntrusted => "proxy_header_untrusted",
            Self::Other => "other",
        }
    }
}

/// The crypto provider Portier uses everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        other => TlsError::Read {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// The private key of a PEM text already read (and decrypted) from `path`.
pub fn key_from_pem(pem: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        other => TlsError::Read {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Parses configured TLS versions (`"1.2"`, `"1.3"`).
pub fn versions(names: &[String]) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let mut out = Vec::new();
    for n in names {
        let v = match n.as_str() {
            "1.3" => &rustls::version::TLS13,
            "1.2" => &rustls::version::TLS12,
            other => return Err(TlsError::BadVersion(other.to_owned())),
        };
        if !out.iter().any(|x: &&SupportedProtocolVersion| x.version == v.version) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoVersion);
    }
    Ok(out)
}

fn roots(certs: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(c)?;
    }
    Ok(Arc::new(store))
}

/// The verifier of technicians' certificates: they must chain to `vendor_ca`.
pub fn client_verifier(
    vendor_ca: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(roots(vendor_ca)?, provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

/// The gateway's server configuration: client certificates are required and must
/// chain to the vendor CA.
pub fn gateway_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    vendor_ca: Vec<CertificateDer<'static>>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = client_verifier(vendor_ca)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // Tunnels carry arbitrary protocols; no ALPN, and no 0-RTT data (replayable).
    cfg.max_early_data_size = 0;
    disable_resumption(&mut cfg);
    Ok(Arc::new(cfg))
}

/// No TLS session resumption on the gateway: a resumed handshake skips the client
/// certificate verification and replays the identity of the first one, so an
/// expired (or re-issued CA's) certificate would keep opening tunnels. Every
/// connection does a full handshake and re-verifies the chain; the cost, one
/// signature per tunnel, is negligible next to a maintenance session.
fn disable_resumption(cfg: &mut ServerConfig) {
    // No stateful resumption: nothing is stored, so no session id or TLS 1.3
    // stateful ticket can be redeemed.
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    // No TLS 1.3 tickets sent at all.
    cfg.send_tls13_tickets = 0;
    // Stateless tickets: the builder's default ticketer produces none; keep it
    // that way (`cfg.ticketer` is never replaced here).
}

/// A server configuration without client certificates (the admin API).
pub fn plain_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, TlsError> {
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(cfg))
}

/// Verifies the gateway's certificate against `gateway_name` whatever SNI is sent:
/// the SNI names the *device*, while the certificate names the gateway host.
#[derive(Debug)]
struct GatewayNameVerifier {
    inner: Arc<WebPkiServerVerifier>,
    gateway_name: ServerName<'static>,
}

impl ServerCertVerifier for GatewayNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _sni: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.gateway_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A technician's client configuration: trusts `server_ca` for a gateway named
/// `gateway_name`, presents the technician's certificate, and speaks only the
/// given versions (TLS 1.3 normally).
pub fn technician_client_config(
    server_ca: Vec<CertificateDer<'static>>,
    gateway_name: &str,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(roots(server_ca)?, provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let gateway_name = ServerName::try_from(gateway_name.to_owned()).map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = Arc::new(GatewayNameVerifier { inner, gateway_name });
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(client_chain, client_key)?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::HandshakeFailure as F;

    #[test]
    fn handshake_failures_are_classed_from_the_rustls_error() {
        let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases = [
            (tls(rustls::Error::NoCertificatesPresented), F::NoCertificate),
            (
                tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                )),
                F::BadCertificate,
            ),
            (
                tls(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                F::Protocol,
            ),
            (
                tls(rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)),
                F::Protocol,
            ),
            // A text that looks like another class does not fool the classifier.
            (tls(rustls::Error::General("no certificate".into())), F::Other),
            (io::Error::from(io::ErrorKind::UnexpectedEof), F::Closed),
            (io::Error::from(io::ErrorKind::ConnectionReset), F::Closed),
            (io::Error::from(io::ErrorKind::TimedOut), F::Timeout),
            (io::Error::other("something else"), F::Other),
        ];
        for (error, class) in cases {
            assert_eq!(F::of(&error), class, "{error}");
        }
        assert_eq!(F::NoCertificate.code(), "no_certificate");
    }
}
