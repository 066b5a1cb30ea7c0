//! A QUIC server's self-signed certificate and the clients' pinning of it, for every Veil
//! protocol (the ALPN name is the caller's: [`crate::ingress::ALPN`] for the ingress).
//!
//! On first start the server creates an ECDSA P-256 certificate and key and writes them to
//! its data directory (`ingress-cert.der`, `ingress-key.der`, the key with mode 0600); later
//! starts load them, so the fingerprint is stable. Clients do not use a CA: they pin the
//! certificate, either by its fingerprint (sha3-256 of the DER, printed by the server and
//! written to `ingress-cert.fingerprint`) or by the certificate file itself. The TLS
//! handshake signature is still verified against the pinned certificate's key, so pinning
//! a certificate does not mean trusting whoever presents its bytes.
//!
//! Only TLS 1.3 is offered (QUIC requires it), with the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha3::{Digest, Sha3_256};

use crate::error::TlsError;

/// Certificate file name in the data directory.
pub const CERT_FILE: &str = "ingress-cert.der";
/// Private key file name in the data directory (PKCS#8 DER).
pub const KEY_FILE: &str = "ingress-key.der";
/// Fingerprint file name in the data directory (one line, `0x` hex).
pub const FINGERPRINT_FILE: &str = "ingress-cert.fingerprint";

veil_primitives::byte_id!(
    /// sha3-256 of a certificate's DER encoding: what clients pin (`0x` hex).
    CertFingerprint,
    32
);

impl CertFingerprint {
    /// The fingerprint of `cert`.
    #[must_use]
    pub fn of(cert: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha3_256::digest(cert).into())
    }
}

/// The server's certificate and key.
#[derive(Debug)]
pub struct ServerIdentity {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl ServerIdentity {
    /// The certificate's fingerprint.
    #[must_use]
    pub fn fingerprint(&self) -> CertFingerprint {
        CertFingerprint::of(&self.cert)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_path_buf(), source }
}

/// Loads the identity from `dir`, or creates and persists a new one if there is none.
///
/// # Errors
/// [`TlsError::Io`] for file errors, [`TlsError::Generate`] if key generation fails.
pub fn load_or_create(dir: &Path) -> Result<ServerIdentity, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read(&cert_path).map_err(io(&cert_path))?;
        let key = std::fs::read(&key_path).map_err(io(&key_path))?;
        return Ok(ServerIdentity {
            cert: CertificateDer::from(cert),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        });
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert = certified.cert.der().to_vec();
    let key = certified.key_pair.serialize_der();
    write_private(&key_path, &key)?;
    write_atomic(&cert_path, &cert)?;
    let fp = CertFingerprint::of(&cert);
    let fp_path = dir.join(FINGERPRINT_FILE);
    write_atomic(&fp_path, format!("{fp}\n").as_bytes())?;
    Ok(ServerIdentity {
        cert: CertificateDer::from(cert),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    })
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io(&tmp))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The quinn server crypto configuration for `identity`, advertising the protocol `alpn`.
///
/// # Errors
/// [`TlsError::Config`] if rustls refuses the key, [`TlsError::Quic`] if quinn refuses the
/// configuration.
pub fn server_crypto(
    identity: &ServerIdentity,
    alpn: &[u8],
) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg.max_early_data_size = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(cfg)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    Ok(Arc::new(quic))
}

/// The QUIC endpoint configuration of a server with `identity`. Its stateless-reset key is
/// derived from the identity's private key, so a server restarted with the same identity
/// (after a crash, `kill -9`) answers the first packet of a connection of its previous
/// incarnation with a valid stateless reset: clients notice at once, rather than at their
/// idle timeout, and reconnect.
#[must_use]
pub fn server_endpoint_config(identity: &ServerIdentity) -> quinn::EndpointConfig {
    use sha3::Digest;
    let mut h = sha3::Sha3_256::new();
    h.update(b"veil/quic-stateless-reset/v1");
    h.update(identity.key.secret_der());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &h.finalize());
    quinn::EndpointConfig::new(Arc::new(key))
}

/// Binds a QUIC server endpoint on `listen` with [`server_endpoint_config`], on a socket
/// with large buffers ([`crate::udp::bind`]).
///
/// # Errors
/// If the socket cannot be bound.
pub fn bind_server(
    identity: &ServerIdentity,
    server: quinn::ServerConfig,
    listen: std::net::SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    let socket = crate::udp::bind(listen)?;
    quinn::Endpoint::new(
        server_endpoint_config(identity),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}

/// How a client recognises the server.
#[derive(Debug, Clone)]
pub enum Pin {
    /// The certificate's fingerprint.
    Fingerprint(CertFingerprint),
    /// The certificate itself (DER), for example read from the server's `ingress-cert.der`.
    Certificate(Vec<u8>),
}

impl Pin {
    /// Reads a certificate file (DER) to pin.
    ///
    /// # Errors
    /// [`TlsError::Io`] if the file cannot be read.
    pub fn from_cert_file(path: &Path) -> Result<Pin, TlsError> {
        std::fs::read(path).map(Pin::Certificate).map_err(io(path))
    }

    fn fingerprint(&self) -> CertFingerprint {
        match self {
            Pin::Fingerprint(f) => *f,
            Pin::Certificate(der) => CertFingerprint::of(der),
        }
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    /// `None` only for protocols that authenticate the server at the application layer with
    /// a signature over the TLS exporter ([`client_crypto_channel_bound`]).
    fingerprint: Option<CertFingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.fingerprint.is_none_or(|f| CertFingerprint::of(end_entity) == f) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The quinn client crypto configuration pinning the server's certificate, asking for the
/// protocol `alpn`.
///
/// # Errors
/// [`TlsError::Config`] or [`TlsError::Quic`] if the configuration is refused.
pub fn client_crypto(
    pin: &Pin,
    alpn: &[u8],
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>, TlsError> {
    quic_client(Some(pin.fingerprint()), alpn)
}

/// The quinn client crypto configuration for a protocol whose peers authenticate each other
/// by signing the TLS session's keying-material exporter (the keyper protocol): TLS 1.3, any
/// server certificate, ALPN `alpn`. The certificate is not trusted for anything; the
/// application-layer signature over the exporter is what authenticates the server.
///
/// # Errors
/// [`TlsError::Config`] or [`TlsError::Quic`] if the configuration is refused.
pub fn client_crypto_channel_bound(
    alpn: &[u8],
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>, TlsError> {
    // No pin: the certificate is not trusted for anything here (the handshake signature is
    // still checked with its key).
    quic_client(None, alpn)
}

/// TLS 1.3 client configuration with the optional pin and `alpn`.
fn quic_client(
    fingerprint: Option<CertFingerprint>,
    alpn: &[u8],
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier { fingerprint, provider: provider.clone() });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    Ok(Arc::new(quic))
}

/// The paths of the identity files in `dir`.
#[must_use]
pub fn identity_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(FINGERPRINT_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reloaded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let a = load_or_create(dir).unwrap();
        let b = load_or_create(dir).unwrap();
        assert_eq!(a.cert, b.cert);
        let written = std::fs::read_to_string(dir.join(FINGERPRINT_FILE)).unwrap();
        assert_eq!(written.trim().parse::<CertFingerprint>().unwrap(), a.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        server_crypto(&a, crate::ingress::ALPN).unwrap();
        client_crypto(&Pin::Fingerprint(a.fingerprint()), crate::ingress::ALPN).unwrap();
        assert!("0x12".parse::<CertFingerprint>().is_err());
    }
}
