//! HTTPS: a rustls acceptor from PEM files (handshakes run per connection,
//! with a deadline, in [`crate::httpd`]).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, Tls};

fn bad(field: &str, problem: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        problem,
    }
}

/// Loads the certificate chain and key named in `[tls]`.
pub(crate) fn acceptor(t: &Tls) -> Result<TlsAcceptor, ConfigError> {
    let certs = CertificateDer::pem_file_iter(&t.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("tls.cert", format!("{}: {e}", t.cert.display())))?;
    if certs.is_empty() {
        return Err(bad(
            "tls.cert",
            format!("{}: no PEM certificate in it", t.cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key)
        .map_err(|e| bad("tls.key", format!("{}: {e}", t.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("tls.key", format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
