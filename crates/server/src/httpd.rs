//! The HTTP(S) listener: each connection is admitted under the listener's
//! caps ([`crate::accept`]), then served by hyper with deadlines before
//! trust and after:
//!
//! - the TLS handshake and each request's headers within
//!   `limits.http_header_timeout_ms` (hyper's header timer also runs
//!   between keep-alive requests, so an idle keep-alive connection ends
//!   there);
//! - no bytes either way for `limits.http_idle_ms`: closed;
//! - a write that makes no progress for `limits.max_behind_ms` (a viewer
//!   that stopped reading): closed.
//!
//! Past a cap, a plain-HTTP client gets a `503` and the connection is
//! closed; a TLS one is closed. At shutdown each connection finishes the
//! response it is sending (HTTP-FLV bodies end as the hub ends its viewers)
//! and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::Shared;
use crate::accept::{self, ConnLimit};
use crate::io::WriteTimeout;
use crate::metrics::Metrics;

/// The remote address of an HTTP connection, for handlers
/// (`ConnectInfo<Remote>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remote(pub(crate) SocketAddr);

/// What a refused plain-HTTP client reads before the connection closes.
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 41\r\nConnection: close\r\nRetry-After: 5\r\n\r\ntoo many connections; try again shortly\r\n";

/// Serves `app` on `listener` until `stop`, then waits for the open
/// connections to finish (the caller bounds that wait).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = shared.config.limits;
    let cap = ConnLimit::new("http", limits.max_http_connections, limits.max_http_per_ip);
    let what = if tls.is_some() { "https" } else { "http" };
    let mut conns = JoinSet::new();
    loop {
        let (socket, peer) = tokio::select! {
            a = accept::next(&listener, what) => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = stop.changed() => break,
        };
        let permit = match cap.admit(peer.ip()) {
            Ok(p) => p,
            Err(full) => {
                Metrics::add(&shared.hub.metrics().refused_http, 1);
                tracing::info!(%peer, "{what} connection refused: {full}");
                if tls.is_none() {
                    refuse(&socket);
                }
                continue;
            }
        };
        let (app, shared, stop, tls) = (app.clone(), shared.clone(), stop.clone(), tls.clone());
        conns.spawn(async move {
            connection(socket, peer, tls, app, &shared, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Best effort, never waits: what the client sent so far is read (so the
/// close is a FIN, not a reset that would discard the answer), then the
/// 503 goes into the empty send buffer.
fn refuse(socket: &TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match socket.try_read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = socket.try_write(FULL_RESPONSE);
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) {
    let limits = shared.config.limits;
    let write_timeout = limits.max_behind().max(Duration::from_secs(1));
    let io = WriteTimeout::new(socket, write_timeout).with_idle(limits.http_idle());
    let metrics = shared.hub.metrics();
    match tls {
        None => drive(io, peer, app, shared, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.http_header_timeout(), acceptor.accept(io)).await {
                Ok(Ok(stream)) => drive(stream, peer, app, shared, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, "tls handshake: {e}"),
                Err(_) => {
                    Metrics::add(&metrics.deadline_closes, 1);
                    tracing::debug!(%peer, "tls handshake timed out");
                }
            }
        }
    }
}

/// One HTTP/1.1 connection until it ends, or until `stop` (then it
/// finishes the response in flight).
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Remote(peer)));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.limits.http_header_timeout())
        .serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            Metrics::add(&shared.hub.metrics().deadline_closes, 1);
            tracing::debug!(%peer, "http: request headers not received in time; closed");
        } else {
            tracing::debug!(%peer, "http connection: {e}");
        }
    }
}
