//! One UDP socket for every peer: classify each datagram by its first byte
//! (RFC 7983 7) and route it to a peer, by the STUN USERNAME of a binding
//! request (RFC 8445 7.2.2: `server-ufrag:client-ufrag`) for an address not
//! seen before, then by the source address.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

/// What a datagram carries, by its first byte (RFC 7983 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 0..=3: STUN.
    Stun,
    /// 20..=63: DTLS.
    Dtls,
    /// 128..=191: RTP or RTCP.
    Rtp,
    /// Anything else (ZRTP, TURN channels, garbage): dropped.
    Other,
}

/// Classifies a datagram.
pub fn classify(datagram: &[u8]) -> Class {
    match datagram.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) => Class::Rtp,
        _ => Class::Other,
    }
}

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// The USERNAME attribute (RFC 8489 14.3) of a STUN message, if the
/// datagram is a well-formed STUN message that has one.
pub fn stun_username(datagram: &[u8]) -> Option<&str> {
    let header = datagram.get(..20)?;
    if header.get(4..8)? != STUN_MAGIC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
    let body = datagram.get(20..20usize.checked_add(len)?)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let typ = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let alen = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        let value = rest.get(4..4usize.checked_add(alen)?)?;
        if typ == ATTR_USERNAME {
            return std::str::from_utf8(value).ok();
        }
        // Attributes are padded to 4 bytes (RFC 8489 14).
        let padded = alen.checked_add(3)? & !3;
        rest = rest.get(4usize.checked_add(padded)?..)?;
    }
    None
}

/// Our ufrag: the part of a USERNAME before the colon.
pub fn local_ufrag(username: &str) -> &str {
    username.split(':').next().unwrap_or(username)
}

/// Routes datagrams to peers, keyed by an id of the caller's (`K`).
///
/// A peer is registered by its ICE ufrag when it is created. The first
/// STUN binding request from a new address names that ufrag, and binds the
/// address to the peer; later datagrams (DTLS, SRTP) from that address go
/// to the same peer. A peer can have several addresses (ICE candidates,
/// network change); an address belongs to one peer.
#[derive(Debug)]
pub struct Router<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
    max_addrs: usize,
}

impl<K: Clone + Eq + Hash> Router<K> {
    /// A router that keeps at most `max_addrs` address bindings (bounded
    /// memory under a flood of checks from spoofed addresses).
    pub fn new(max_addrs: usize) -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            max_addrs,
        }
    }

    /// Registers a peer's local ufrag.
    pub fn insert(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// After an ICE restart: routes `new_ufrag` to `key` and forgets every
    /// other ufrag of `key` (checks with the old username are dropped; the
    /// addresses already bound stay, so media keeps flowing).
    pub fn replace_ufrag(&mut self, key: &K, new_ufrag: &str) {
        self.by_ufrag.retain(|_, k| k != key);
        self.by_ufrag.insert(new_ufrag.to_owned(), key.clone());
    }

    /// Forgets a peer: its ufrag and every address bound to it.
    pub fn remove(&mut self, key: &K) {
        self.by_ufrag.retain(|_, k| k != key);
        self.by_addr.retain(|_, k| k != key);
    }

    /// Number of registered peers.
    pub fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Whether no peer is registered.
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }

    /// Number of bound addresses.
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }

    /// The peer a datagram from `from` belongs to, binding `from` when it is
    /// a STUN message whose USERNAME names a registered peer. `None`: drop.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<K> {
        let class = classify(datagram);
        if class == Class::Stun
            && let Some(user) = stun_username(datagram)
        {
            if let Some(key) = self.by_ufrag.get(local_ufrag(user)).cloned() {
                if self.by_addr.get(&from) != Some(&key)
                    && (self.by_addr.len() < self.max_addrs || self.by_addr.contains_key(&from))
                {
                    self.by_addr.insert(from, key.clone());
                }
                return Some(key);
            }
            return None;
        }
        if class == Class::Other {
            return None;
        }
        self.by_addr.get(&from).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after it, to check padding handling.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn classify_rfc7983_ranges() {
        assert_eq!(classify(&[0]), Class::Stun);
        assert_eq!(classify(&[3]), Class::Stun);
        assert_eq!(classify(&[4]), Class::Other);
        assert_eq!(classify(&[22]), Class::Dtls);
        assert_eq!(classify(&[64]), Class::Other);
        assert_eq!(classify(&[0x80]), Class::Rtp);
        assert_eq!(classify(&[0xbf]), Class::Rtp);
        assert_eq!(classify(&[0xc0]), Class::Other);
        assert_eq!(classify(&[]), Class::Other);
    }

    #[test]
    fn username_parsed_with_padding() {
        let m = binding("abcde:xyz");
        assert_eq!(stun_username(&m), Some("abcde:xyz"));
        assert_eq!(stun_username(&m[..m.len() - 10]), None);
    }

    #[test]
    fn routes_by_ufrag_then_address() {
        let mut r = Router::new(16);
        r.insert("peerA", 1u32);
        r.insert("peerB", 2u32);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        // DTLS before any STUN from this address: unknown.
        assert_eq!(r.route(a, &[22, 254, 253]), None);
        assert_eq!(r.route(a, &binding("peerA:c1")), Some(1));
        assert_eq!(r.route(b, &binding("peerB:c2")), Some(2));
        assert_eq!(r.route(a, &[22, 254, 253]), Some(1));
        assert_eq!(r.route(b, &[0x80, 96]), Some(2));
        assert_eq!(r.route(b, &binding("nobody:c2")), None);
        r.remove(&1);
        assert_eq!(r.route(a, &[22, 254, 253]), None);
        assert_eq!(r.route(b, &[22]), Some(2));
    }

    #[test]
    fn address_table_is_bounded() {
        let mut r = Router::new(2);
        r.insert("p", 1u32);
        for port in 0..10u16 {
            let from = SocketAddr::from(([127, 0, 0, 1], 6000 + port));
            assert_eq!(r.route(from, &binding("p:x")), Some(1));
        }
        assert_eq!(r.addresses(), 2);
    }
}
