//! A lossy UDP relay (this kernel has no netem): it listens on `front`
//! (the address the server announces as its candidate) and forwards each
//! client's datagrams to the server from a socket of its own, and the
//! server's back, dropping a seeded share each way. Each client address
//! gets its own seed (`seed + n` for the n-th client seen), so one run
//! covers several different loss patterns and the same seed replays.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most clients one relay serves (bounded threads and sockets).
const MAX_CLIENTS: usize = 64;

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn drop(&mut self, permille: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < permille
    }
}

/// Counters of a relay.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) forwarded: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) clients: AtomicU64,
}

pub(crate) struct Relay {
    pub(crate) front: SocketAddr,
    pub(crate) counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// A relay on `front` to `server`, dropping `percent` of datagrams each
    /// way with per-client seeds from `seed`.
    pub(crate) fn start(front: SocketAddr, server: SocketAddr, percent: u64, seed: u64) -> Relay {
        let sock = UdpSocket::bind(front).expect("bind the relay's front address");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let front = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let permille = percent * 10;
        let (stop2, counts2) = (stop.clone(), counts.clone());
        let main = std::thread::spawn(move || {
            let front = Arc::new(sock);
            // client address -> (upstream socket, its seeded rng for the
            // client->server direction)
            let mut clients: HashMap<SocketAddr, (Arc<UdpSocket>, Rng)> = HashMap::new();
            let back_threads: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());
            let mut buf = vec![0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = front.recv_from(&mut buf) else {
                    continue;
                };
                if !clients.contains_key(&from) {
                    if clients.len() >= MAX_CLIENTS {
                        continue;
                    }
                    let seed = seed.wrapping_add(clients.len() as u64);
                    let up = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    up.set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    up.connect(server).unwrap();
                    counts2.clients.fetch_add(1, Ordering::Relaxed);
                    // server -> client, its own rng.
                    let (up2, front2, stop3, c3) =
                        (up.clone(), front.clone(), stop2.clone(), counts2.clone());
                    let t = std::thread::spawn(move || {
                        let mut rng = Rng::new(seed ^ 0x5555_5555);
                        let mut buf = vec![0u8; 2048];
                        while !stop3.load(Ordering::Relaxed) {
                            let Ok(n) = up2.recv(&mut buf) else { continue };
                            if permille > 0 && rng.drop(permille) {
                                c3.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            c3.forwarded.fetch_add(1, Ordering::Relaxed);
                            let _ = front2.send_to(&buf[..n], from);
                        }
                    });
                    back_threads.lock().unwrap().push(t);
                    clients.insert(from, (up, Rng::new(seed)));
                }
                let Some((up, rng)) = clients.get_mut(&from) else {
                    continue;
                };
                if permille > 0 && rng.drop(permille) {
                    counts2.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                counts2.forwarded.fetch_add(1, Ordering::Relaxed);
                let _ = up.send(&buf[..n]);
            }
            for t in back_threads.into_inner().unwrap() {
                let _ = t.join();
            }
        });
        Relay {
            front,
            counts,
            stop,
            threads: vec![main],
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
