//! One UDP socket for every peer: classify each datagram by its first byte
//! (RFC 7983 7) and route it to a peer.
//!
//! A new remote address is bound to a peer only by a STUN binding request
//! (RFC 8489 6.1) whose USERNAME names the peer (`server-ufrag:client-ufrag`,
//! RFC 8445 7.2.2) and whose MESSAGE-INTEGRITY (RFC 8489 14.5) verifies with
//! that peer's ICE password: an unauthenticated datagram never binds an
//! address, so it can neither steal a session's traffic nor keep it alive.
//! Everything else (DTLS, SRTP, STUN responses and indications) is routed by
//! source address. STUN responses are routed by address even when they carry
//! a USERNAME: libnice copies the request's USERNAME
//! (`client-ufrag:server-ufrag`) into its success responses, which would not
//! name us.
//!
//! Each peer has at most [`Router::new`]'s `per_peer` addresses (host and
//! peer-reflexive candidates, NAT rebinding); a new one pushes out the
//! oldest.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::peer::Transport;

/// A remote: its address and whether it speaks UDP or ICE-TCP (the same
/// address on the two is two remotes).
type Remote = (Transport, SocketAddr);

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
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const MESSAGE_INTEGRITY_LEN: usize = 20;
/// Binding request: method 0x001, class request (RFC 8489 5, 18.2).
const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response.
const BINDING_SUCCESS: u16 = 0x0101;

/// The parts of a STUN message the router needs: its type, USERNAME and
/// where MESSAGE-INTEGRITY is, all bounds-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunView<'a> {
    /// The message type (method and class, RFC 8489 5).
    pub message_type: u16,
    /// The transaction id.
    pub transaction_id: [u8; 12],
    /// USE-CANDIDATE (RFC 8445 7.1.2) before MESSAGE-INTEGRITY: the
    /// controlling agent nominates this pair.
    pub use_candidate: bool,
    /// USERNAME, when present and UTF-8.
    pub username: Option<&'a str>,
    /// Offset of the MESSAGE-INTEGRITY attribute's header, when present.
    integrity_at: Option<usize>,
}

impl<'a> StunView<'a> {
    /// Reads a STUN message: the 20-byte header with the magic cookie, then
    /// attributes (padded to 4 bytes) up to the header's length. `None` for
    /// anything malformed.
    pub fn parse(datagram: &'a [u8]) -> Option<Self> {
        let header = datagram.get(..HEADER_LEN)?;
        if header.get(4..8)? != STUN_MAGIC || header.first()? & 0xc0 != 0 {
            return None;
        }
        let message_type = u16::from_be_bytes([*header.first()?, *header.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
        let end = HEADER_LEN.checked_add(len)?;
        let body = datagram.get(HEADER_LEN..end)?;
        let transaction_id: [u8; 12] = header.get(8..20)?.try_into().ok()?;
        let mut view = StunView {
            message_type,
            transaction_id,
            use_candidate: false,
            username: None,
            integrity_at: None,
        };
        let mut pos = 0usize;
        while let Some(rest) = body.get(pos..)
            && rest.len() >= 4
        {
            let typ = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            let alen = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
            let value = rest.get(4..4usize.checked_add(alen)?)?;
            match typ {
                ATTR_USERNAME if view.username.is_none() => {
                    view.username = std::str::from_utf8(value).ok();
                }
                ATTR_USE_CANDIDATE => view.use_candidate = true,
                ATTR_MESSAGE_INTEGRITY => {
                    if alen != MESSAGE_INTEGRITY_LEN {
                        return None;
                    }
                    view.integrity_at = Some(HEADER_LEN.checked_add(pos)?);
                    // Only FINGERPRINT may follow (RFC 8489 14.5); it is not
                    // covered, so stop here.
                    break;
                }
                _ => {}
            }
            let padded = alen.checked_add(3)? & !3;
            pos = pos.checked_add(4)?.checked_add(padded)?;
        }
        Some(view)
    }

    /// Whether this is a binding request (RFC 8489 6.1).
    pub fn is_binding_request(&self) -> bool {
        self.message_type & 0x3fff == BINDING_REQUEST
    }

    /// Whether this is a binding success response.
    pub fn is_binding_success(&self) -> bool {
        self.message_type & 0x3fff == BINDING_SUCCESS
    }

    /// Whether MESSAGE-INTEGRITY is present and verifies with the
    /// short-term credential `password` (RFC 8489 9.1.1: the key is the
    /// password itself; RFC 8445 7.2.2).
    pub fn verify(&self, datagram: &[u8], password: &str) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        let (Some(covered), Some(tag)) = (
            datagram.get(..at),
            at.checked_add(4)
                .and_then(|s| datagram.get(s..s.checked_add(MESSAGE_INTEGRITY_LEN)?)),
        ) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(password.as_bytes()) else {
            return false;
        };
        feed_integrity_input(&mut mac, covered);
        mac.verify_slice(tag).is_ok()
    }
}

/// Feeds the bytes MESSAGE-INTEGRITY covers: the message up to the
/// attribute, with the header's length field set as if the attribute were
/// the last one (RFC 8489 14.5).
fn feed_integrity_input(mac: &mut Hmac<Sha1>, covered: &[u8]) {
    let len = covered
        .len()
        .saturating_sub(HEADER_LEN)
        .saturating_add(4 + MESSAGE_INTEGRITY_LEN);
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    mac.update(covered.get(..2).unwrap_or_default());
    mac.update(&len.to_be_bytes());
    mac.update(covered.get(4..).unwrap_or_default());
}

/// Appends a MESSAGE-INTEGRITY attribute for `password` to a STUN message
/// (header and attributes so far) and fixes its length field: what a client
/// does to a binding request. For tests and tools; peers sign their own
/// messages through the stack.
pub fn append_message_integrity(message: &mut Vec<u8>, password: &str) {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(password.as_bytes()) else {
        return;
    };
    feed_integrity_input(&mut mac, message);
    let tag = mac.finalize().into_bytes();
    message.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    message.extend_from_slice(&(MESSAGE_INTEGRITY_LEN as u16).to_be_bytes());
    message.extend_from_slice(&tag);
    let len = u16::try_from(message.len().saturating_sub(HEADER_LEN)).unwrap_or(u16::MAX);
    if let Some(field) = message.get_mut(2..4) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}

/// The USERNAME attribute (RFC 8489 14.3) of a STUN message, if the
/// datagram is a well-formed STUN message that has one.
pub fn stun_username(datagram: &[u8]) -> Option<&str> {
    StunView::parse(datagram)?.username
}

/// Our ufrag: the part of a USERNAME before the colon.
pub fn local_ufrag(username: &str) -> &str {
    username.split(':').next().unwrap_or(username)
}

/// Where [`Router::route`] sends a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<K> {
    /// The peer.
    pub key: K,
    /// A STUN binding request whose MESSAGE-INTEGRITY verified with the
    /// peer's password: proof that the remote knows the session's
    /// credentials (liveness may count it).
    pub authenticated: bool,
}

#[derive(Debug)]
struct Credentials<K> {
    key: K,
    password: String,
}

/// Routes datagrams to peers, keyed by an id of the caller's (`K`).
///
/// A peer is registered with its ICE ufrag and password when it is created.
/// An authenticated binding request from a new address binds the address
/// to the peer; later datagrams from that address (DTLS, SRTP, STUN
/// responses) go to the same peer. An address belongs to one peer.
#[derive(Debug)]
pub struct Router<K> {
    by_ufrag: HashMap<String, Credentials<K>>,
    by_addr: HashMap<Remote, K>,
    addrs_of: HashMap<K, VecDeque<Remote>>,
    max_addrs: usize,
    per_peer: usize,
}

impl<K: Clone + Eq + Hash> Router<K> {
    /// A router that keeps at most `max_addrs` address bindings in all and
    /// `per_peer` for each peer (at least 1).
    pub fn new(max_addrs: usize, per_peer: usize) -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            addrs_of: HashMap::new(),
            max_addrs,
            per_peer: per_peer.max(1),
        }
    }

    /// Registers a peer's local ICE credentials.
    pub fn insert(&mut self, ufrag: &str, password: &str, key: K) {
        self.by_ufrag.insert(
            ufrag.to_owned(),
            Credentials {
                key,
                password: password.to_owned(),
            },
        );
    }

    /// After an ICE restart: routes checks with `ufrag` (signed with
    /// `password`) to `key` and forgets its old credentials (checks with
    /// the old username are dropped; the addresses already bound stay, so
    /// media keeps flowing).
    pub fn replace_credentials(&mut self, key: &K, ufrag: &str, password: &str) {
        self.by_ufrag.retain(|_, c| c.key != *key);
        self.insert(ufrag, password, key.clone());
    }

    /// Forgets a peer: its credentials and every address bound to it.
    pub fn remove(&mut self, key: &K) {
        self.by_ufrag.retain(|_, c| c.key != *key);
        if let Some(addrs) = self.addrs_of.remove(key) {
            for a in addrs {
                self.by_addr.remove(&a);
            }
        }
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

    /// Addresses bound to `key`.
    pub fn addresses_of(&self, key: &K) -> usize {
        self.addrs_of.get(key).map_or(0, VecDeque::len)
    }

    /// The peer a UDP datagram from `from` belongs to (`None`: drop it),
    /// binding `from` when the datagram is an authenticated binding request.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<Routed<K>> {
        self.route_on(Transport::Udp, from, datagram)
    }

    /// Like [`Router::route`] for a datagram that came over `transport`
    /// (an ICE-TCP frame from the connection of `from`).
    pub fn route_on(
        &mut self,
        transport: Transport,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Option<Routed<K>> {
        let from = (transport, from);
        match classify(datagram) {
            Class::Other => None,
            Class::Stun => {
                let view = StunView::parse(datagram)?;
                if view.is_binding_request() {
                    return self.route_request(from, datagram, &view);
                }
                self.by_address(from)
            }
            Class::Dtls | Class::Rtp => self.by_address(from),
        }
    }

    fn by_address(&self, from: Remote) -> Option<Routed<K>> {
        self.by_addr.get(&from).map(|key| Routed {
            key: key.clone(),
            authenticated: false,
        })
    }

    fn route_request(
        &mut self,
        from: Remote,
        datagram: &[u8],
        view: &StunView<'_>,
    ) -> Option<Routed<K>> {
        let creds = self.by_ufrag.get(local_ufrag(view.username?))?;
        if !view.verify(datagram, &creds.password) {
            return None;
        }
        let key = creds.key.clone();
        self.bind(from, &key);
        Some(Routed {
            key,
            authenticated: true,
        })
    }

    fn bind(&mut self, from: Remote, key: &K) {
        match self.by_addr.get(&from) {
            Some(k) if k == key => return,
            Some(other) => {
                // The address moved to another session (it knows that
                // session's password): unbind it from the old one.
                let other = other.clone();
                if let Some(list) = self.addrs_of.get_mut(&other) {
                    list.retain(|a| *a != from);
                }
            }
            None if self.by_addr.len() >= self.max_addrs => return,
            None => {}
        }
        let list = self.addrs_of.entry(key.clone()).or_default();
        if list.len() >= self.per_peer
            && let Some(oldest) = list.pop_front()
        {
            self.by_addr.remove(&oldest);
        }
        list.push_back(from);
        self.by_addr.insert(from, key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request from a client: USERNAME, PRIORITY, then
    /// MESSAGE-INTEGRITY with `password` (and a FINGERPRINT-shaped trailer
    /// after it, which the check must leave out).
    fn binding(username: &str, password: Option<&str>) -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0, 0];
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username.as_bytes());
        while m.len() % 4 != 0 {
            m.push(0);
        }
        // A PRIORITY attribute after it, to check padding handling.
        m.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let len = (m.len() - HEADER_LEN) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        if let Some(pwd) = password {
            append_message_integrity(&mut m, pwd);
            m.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 9, 9, 9, 9]);
            let len = (m.len() - HEADER_LEN) as u16;
            m[2..4].copy_from_slice(&len.to_be_bytes());
        }
        m
    }

    /// A binding success response carrying a USERNAME, as libnice 0.1.21
    /// sends them (it copies the request's `client:server` username).
    fn libnice_response(username: &str) -> Vec<u8> {
        let mut m = binding(username, None);
        m[0] = 0x01;
        m[1] = 0x01;
        m
    }

    const PWD_A: &str = "password-of-peer-a-0123";
    const PWD_B: &str = "password-of-peer-b-0123";

    fn router() -> Router<u32> {
        let mut r = Router::new(16, 4);
        r.insert("peerA", PWD_A, 1);
        r.insert("peerB", PWD_B, 2);
        r
    }

    fn key(r: Option<Routed<u32>>) -> Option<u32> {
        r.map(|r| r.key)
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
        let m = binding("abcde:xyz", Some(PWD_A));
        assert_eq!(stun_username(&m), Some("abcde:xyz"));
        assert_eq!(stun_username(&m[..m.len() - 10]), None);
    }

    /// RFC 5769 2.1: the sample request, with its MESSAGE-INTEGRITY made
    /// with the password "VOkJxbRl1RmTxUk/WvJxBt".
    #[test]
    fn rfc5769_sample_request_verifies() {
        let m = hex::decode(concat!(
            "000100582112a442b7e7a701bc34d686fa87dfae",
            "802200105354554e207465737420636c69656e74",
            "00240004",
            "6e0001ff",
            "80290008",
            "932ff9b151263b36",
            "000600096576746a3a68367659202020",
            "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2",
            "80280004e57a3bcf",
        ))
        .unwrap();
        let v = StunView::parse(&m).unwrap();
        assert!(v.is_binding_request());
        assert_eq!(v.username, Some("evtj:h6vY"));
        assert!(v.verify(&m, "VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!v.verify(&m, "VOkJxbRl1RmTxUk/WvJxBu"));
        let mut flipped = m.clone();
        flipped[30] ^= 1;
        assert!(
            !StunView::parse(&flipped)
                .unwrap()
                .verify(&flipped, "VOkJxbRl1RmTxUk/WvJxBt")
        );
    }

    #[test]
    fn routes_authenticated_checks_then_address() {
        let mut r = router();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        // DTLS before any STUN from this address: unknown.
        assert_eq!(r.route(a, &[22, 254, 253]), None);
        assert_eq!(
            r.route(a, &binding("peerA:c1", Some(PWD_A))),
            Some(Routed {
                key: 1,
                authenticated: true
            })
        );
        assert_eq!(key(r.route(b, &binding("peerB:c2", Some(PWD_B)))), Some(2));
        assert_eq!(
            r.route(a, &[22, 254, 253]),
            Some(Routed {
                key: 1,
                authenticated: false
            })
        );
        assert_eq!(key(r.route(b, &[0x80, 96])), Some(2));
        assert_eq!(key(r.route(b, &binding("nobody:c2", Some(PWD_B)))), None);
        r.remove(&1);
        assert_eq!(r.route(a, &[22, 254, 253]), None);
        assert_eq!(key(r.route(b, &[22])), Some(2));
    }

    #[test]
    fn unauthenticated_checks_bind_nothing() {
        let mut r = router();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // No MESSAGE-INTEGRITY, or the wrong password: dropped, not bound.
        assert_eq!(r.route(a, &binding("peerA:c1", None)), None);
        assert_eq!(r.route(a, &binding("peerA:c1", Some(PWD_B))), None);
        assert_eq!(r.addresses(), 0);
        assert_eq!(r.route(a, &[22, 254, 253]), None);
    }

    #[test]
    fn responses_route_by_address_even_with_a_username() {
        let mut r = router();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let c: SocketAddr = "127.0.0.1:5002".parse().unwrap();
        // libnice's success response names the client first.
        let resp = libnice_response("cliufrag:peerA");
        assert_eq!(r.route(a, &resp), None, "not bound yet");
        r.route(a, &binding("peerA:c1", Some(PWD_A)));
        assert_eq!(
            r.route(a, &resp),
            Some(Routed {
                key: 1,
                authenticated: false
            })
        );
        // A response never binds a new address.
        assert_eq!(r.route(c, &libnice_response("peerA:x")), None);
        assert_eq!(r.addresses(), 1);
    }

    #[test]
    fn address_tables_are_bounded() {
        let mut r = Router::new(6, 3);
        r.insert("p", PWD_A, 1u32);
        r.insert("q", PWD_B, 2u32);
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], 6000 + port));
        for port in 0..10u16 {
            assert_eq!(
                key(r.route(addr(port), &binding("p:x", Some(PWD_A)))),
                Some(1)
            );
        }
        // Per peer: the three newest stay, older ones were pushed out.
        assert_eq!(r.addresses_of(&1), 3);
        assert_eq!(key(r.route(addr(9), &[22])), Some(1));
        assert_eq!(r.route(addr(0), &[22]), None);
        for port in 10..20u16 {
            r.route(addr(port), &binding("q:y", Some(PWD_B)));
        }
        assert_eq!(r.addresses_of(&2), 3);
        assert!(r.addresses() <= 6);
        // An address that moves to another session (it knows its password).
        r.route(addr(9), &binding("q:y", Some(PWD_B)));
        assert_eq!(key(r.route(addr(9), &[22])), Some(2));
        assert_eq!(r.addresses_of(&1), 2);
        // After an ICE restart the old credentials route nothing.
        r.replace_credentials(&2, "q2", PWD_A);
        assert_eq!(r.route(addr(30), &binding("q:y", Some(PWD_B))), None);
        assert_eq!(
            key(r.route(addr(30), &binding("q2:y", Some(PWD_A)))),
            Some(2)
        );
    }
}
