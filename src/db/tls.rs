//! TLS connectors for the PostgreSQL connection, one per `DB_SSL_MODE`, with
//! the CA and client certificate of `DB_SSL_ROOT_CERT`, `DB_SSL_CERT` and
//! `DB_SSL_KEY` when they are set.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{SslMode, TlsFiles};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A connector for `prefer`/`require` (encrypted, certificate not checked, as
/// libpq does) or `verify-full` (the chain against `files`' CA, else the web
/// PKI roots, and the host name), presenting `files`' client certificate
/// when there is one. `None` for `disable`.
pub fn connector(mode: SslMode, files: &TlsFiles) -> Option<MakeRustlsConnect> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let builder = match mode {
        SslMode::Disable => return None,
        SslMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            if files.roots.is_empty() {
                roots.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
            } else {
                // Read and checked as PEM with the configuration; one rustls
                // refuses is left out, and the handshake then says so.
                let (_, refused) = roots.add_parsable_certificates(files.roots.iter().cloned());
                if refused > 0 {
                    tracing::warn!(refused, "DB_SSL_ROOT_CERT holds certificates that are not valid CA certificates");
                }
            }
            builder.with_root_certificates(roots)
        }
        SslMode::Prefer | SslMode::Require => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
        }
    };
    let config = match &files.identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => match builder.with_client_auth_cert(chain.clone(), key.clone_key()) {
            Ok(config) => config,
            Err(e) => {
                // The key does not fit the certificate, or is of a kind rustls
                // cannot sign with: connect without it, and say so.
                tracing::error!(error = %e, "DB_SSL_CERT/DB_SSL_KEY cannot be used; connecting without a client certificate");
                return connector(mode, &TlsFiles { identity: None, ..files.clone() });
            }
        },
    };
    Some(MakeRustlsConnect::new(config))
}

/// Accepts any certificate but still checks handshake signatures: the
/// `require` semantics of libpq (encryption without authentication).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
