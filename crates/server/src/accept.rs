//! Accepting TCP connections: a cap per listener and per source IP, and an
//! accept loop that backs off on errors (EMFILE, ENFILE, ENOBUFS) instead of
//! spinning.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// First and longest pause after a failed `accept`.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How many connections a listener holds, in all and per source IP.
#[derive(Debug)]
pub(crate) struct ConnLimit {
    what: &'static str,
    max: usize,
    per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Full {
    #[error("{what}: {max} connections open (the listener's limit)")]
    Listener { what: &'static str, max: usize },
    #[error("{what}: {max} connections open from {ip} (the per-address limit)")]
    Address {
        what: &'static str,
        max: usize,
        ip: IpAddr,
    },
}

/// A connection's place under its [`ConnLimit`], given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    limit: Arc<ConnLimit>,
    ip: IpAddr,
}

impl ConnLimit {
    pub(crate) fn new(what: &'static str, max: usize, per_ip: usize) -> Arc<ConnLimit> {
        Arc::new(ConnLimit {
            what,
            max,
            per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    /// A permit for a connection from `ip`, or why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Full> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max {
            return Err(Full::Listener {
                what: self.what,
                max: self.max,
            });
        }
        let n = open.by_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err(Full::Address {
                what: self.what,
                max: self.per_ip,
                ip,
            });
        }
        *n = n.saturating_add(1);
        open.total = open.total.saturating_add(1);
        Ok(Permit {
            limit: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts the next connection. A failing `accept` (out of file
/// descriptors, most often) is logged and retried after a pause that
/// doubles up to 1 s, so the loop never spins; it never returns an error.
pub(crate) async fn next(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    let mut pause = BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                return (socket, peer);
            }
            Err(e) => {
                tracing::warn!(
                    "{what} accept: {e}; retrying in {} ms (raise the open-file limit, `ulimit -n`, if this is EMFILE)",
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_all_and_per_address_and_permits_give_back() {
        let limit = ConnLimit::new("test", 3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = limit.admit(a).unwrap();
        let p2 = limit.admit(a).unwrap();
        assert_eq!(
            limit.admit(a).unwrap_err(),
            Full::Address {
                what: "test",
                max: 2,
                ip: a
            }
        );
        let p3 = limit.admit(b).unwrap();
        assert_eq!(
            limit.admit(b).unwrap_err(),
            Full::Listener {
                what: "test",
                max: 3
            }
        );
        drop(p1);
        assert_eq!(limit.open(), 2);
        let p4 = limit.admit(a).unwrap();
        drop((p2, p3, p4));
        assert_eq!(limit.open(), 0);
        assert!(limit.open.lock().unwrap().by_ip.is_empty());
    }
}
