//! HTTPS: a rustls acceptor from PEM files and an axum listener that hands
//! out TLS streams (handshakes run in their own tasks, with a time limit, so
//! a slow client does not hold up the others).

use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{ConfigError, Tls};
use crate::io::WriteTimeout;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// An axum listener over TLS.
pub(crate) struct Listener {
    rx: mpsc::Receiver<(TlsStream<WriteTimeout<TcpStream>>, SocketAddr)>,
    addr: SocketAddr,
}

impl Listener {
    pub(crate) fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        mut stop: watch::Receiver<bool>,
        write_timeout: Duration,
    ) -> Self {
        let addr = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    _ = stop.changed() => break,
                };
                let (socket, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("https accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let socket = WriteTimeout::new(socket, write_timeout);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "tls handshake: {e}"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Listener { rx, addr }
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<WriteTimeout<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            None => pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
