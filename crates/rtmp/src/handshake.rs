//! The RTMP handshake (Adobe RTMP 1.0 section 5.2), server and client side,
//! plain and with the digest ("complex") scheme Flash-era clients and
//! servers use.
//!
//! Both sides are sans-IO: feed received bytes with `handle_input`, send
//! what it appends to `out`. Bytes after the handshake stay in the input
//! buffer: they are the beginning of the chunk stream. Randomness is passed
//! in (1528 bytes, used for S1/C1 and the S2/C2 filler).
//!
//! The digest scheme (not in the published spec; as implemented by Flash
//! Player, FMS, librtmp and ffmpeg): C1/S1 carry a 4-byte non-zero version
//! and, in one of two 764-byte blocks, an HMAC-SHA256 digest of the rest of
//! the packet keyed with the first 30 (client) or 36 (server) bytes of the
//! well-known "Genuine Adobe Flash Player/Media Server 001" keys. S2/C2 end
//! with an HMAC of their first 1504 bytes keyed with an HMAC of the peer's
//! digest.

use bytes::{Buf, BufMut, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Error;

/// The only RTMP version this crate speaks (C0/S0).
pub const VERSION: u8 = 3;
/// Size of C1, S1, C2 and S2.
pub const PACKET_LEN: usize = 1536;
/// Random bytes a side needs: C1/S1 minus the time and version fields.
pub const RANDOM_LEN: usize = 1528;

const DIGEST_LEN: usize = 32;
const BLOCK_LEN: usize = 764;
/// Version field this server sends in S1 with the digest scheme (FMS 3.5).
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];
/// Version field this client sends in C1 (Flash Player 9.0.124.2).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7c, 0x02];

const KEY_TAIL: [u8; 32] = [
    0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
    0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];
const FP_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const FMS_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

fn full_key<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut k = [0u8; N];
    for (dst, src) in k.iter_mut().zip(text.iter().chain(KEY_TAIL.iter())) {
        *dst = *src;
    }
    k
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // invariant: HMAC accepts keys of any length.
    #[allow(clippy::unwrap_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in a 1536-byte C1/S1: schema 0 has the key block
/// first (digest block at 772), schema 1 the digest block first (at 8).
fn digest_offset(packet: &[u8; PACKET_LEN], schema: u8) -> usize {
    let base: usize = if schema == 0 { 8 + BLOCK_LEN } else { 8 };
    let sum: usize = packet
        .iter()
        .skip(base)
        .take(4)
        .map(|b| usize::from(*b))
        .sum();
    // At most 4 * 255 % 728 + 776 + 4 + 32 <= 1536: always in bounds.
    base.wrapping_add(4)
        .wrapping_add(sum.checked_rem(BLOCK_LEN - DIGEST_LEN - 4).unwrap_or(0))
}

fn packet_digest(packet: &[u8; PACKET_LEN], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    let (before, rest) = packet.split_at(offset);
    let after = rest.get(DIGEST_LEN..).unwrap_or_default();
    hmac(key, &[before, after])
}

/// Finds a valid digest in C1/S1 (trying both schemas) and returns it.
fn find_digest(packet: &[u8; PACKET_LEN], key: &[u8]) -> Option<[u8; DIGEST_LEN]> {
    [1u8, 0].into_iter().find_map(|schema| {
        let off = digest_offset(packet, schema);
        let want = packet_digest(packet, off, key);
        let got = packet.get(off..off.wrapping_add(DIGEST_LEN))?;
        (got == want.as_slice()).then_some(want)
    })
}

/// Writes time, version and random bytes, then (if `key` is given) the
/// schema-1 digest.
fn make_first(
    time: u32,
    version: [u8; 4],
    random: &[u8; RANDOM_LEN],
    key: Option<&[u8]>,
) -> (Box<[u8; PACKET_LEN]>, Option<[u8; DIGEST_LEN]>) {
    let mut p = Box::new([0u8; PACKET_LEN]);
    let (head, tail) = p.split_at_mut(8);
    head.copy_from_slice(&[&time.to_be_bytes()[..], &version[..]].concat());
    tail.copy_from_slice(random);
    let digest = key.map(|key| {
        let off = digest_offset(&p, 1);
        let d = packet_digest(&p, off, key);
        if let Some(dst) = p.get_mut(off..off.wrapping_add(DIGEST_LEN)) {
            dst.copy_from_slice(&d);
        }
        d
    });
    (p, digest)
}

/// The answer to a first packet: an echo (plain), or random filler with an
/// HMAC keyed by the peer's digest (digest scheme).
fn make_second(
    peer: &[u8; PACKET_LEN],
    peer_digest: Option<[u8; DIGEST_LEN]>,
    full_key: &[u8],
    random: &[u8; RANDOM_LEN],
    time: u32,
) -> Box<[u8; PACKET_LEN]> {
    let mut p = Box::new(*peer);
    if let Some(pd) = peer_digest {
        let key = hmac(full_key, &[&pd]);
        let body_len = PACKET_LEN - DIGEST_LEN;
        let (body, sig) = p.split_at_mut(body_len);
        for (dst, src) in body.iter_mut().zip(random.iter().cycle()) {
            *dst = *src;
        }
        sig.copy_from_slice(&hmac(&key, &[body]));
    } else if let Some(t) = p.get_mut(4..8) {
        // Plain echo: time2 is when we read it (spec 5.2.4).
        t.copy_from_slice(&time.to_be_bytes());
    }
    p
}

fn take_packet(input: &mut BytesMut) -> Box<[u8; PACKET_LEN]> {
    let mut p = Box::new([0u8; PACKET_LEN]);
    input.copy_to_slice(&mut p[..]);
    p
}

fn check_version(v: u8) -> Result<(), Error> {
    if v == VERSION {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion(v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// The server side: reads C0+C1, answers S0+S1+S2 at once, then reads C2.
#[derive(Debug)]
pub struct Server {
    state: ServerState,
    random: Box<[u8; RANDOM_LEN]>,
    time: u32,
    digest: bool,
}

impl Server {
    /// A server handshake. `time` is the S1 time field (milliseconds since
    /// an epoch of your choice; 0 is fine), `random` fills S1 and S2.
    pub fn new(time: u32, random: &[u8; RANDOM_LEN]) -> Self {
        Self {
            state: ServerState::AwaitC0C1,
            random: Box::new(*random),
            time,
            digest: false,
        }
    }

    /// Consumes handshake bytes from `input`, appends S0/S1/S2 to `out`, and
    /// returns `Ok(true)` once C2 was read (then `input` holds the start of
    /// the chunk stream). `Ok(false)` means more input is needed.
    pub fn handle_input(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, Error> {
        loop {
            match self.state {
                ServerState::AwaitC0C1 => {
                    let Some(&v) = input.first() else {
                        return Ok(false);
                    };
                    check_version(v)?;
                    if input.len() < 1 + PACKET_LEN {
                        return Ok(false);
                    }
                    input.advance(1);
                    let c1 = take_packet(input);
                    // A client that sets a version in C1 uses the digest
                    // scheme; answer in kind when its digest checks out.
                    let c1_digest = if c1.get(4..8) != Some(&[0u8; 4][..]) {
                        find_digest(&c1, FP_TEXT)
                    } else {
                        None
                    };
                    self.digest = c1_digest.is_some();
                    let fms: [u8; 68] = full_key(FMS_TEXT);
                    let (s1, _) = if self.digest {
                        make_first(self.time, SERVER_VERSION, &self.random, Some(&fms[..36]))
                    } else {
                        make_first(self.time, [0; 4], &self.random, None)
                    };
                    let s2 = make_second(&c1, c1_digest, &fms, &self.random, self.time);
                    out.reserve(1 + 2 * PACKET_LEN);
                    out.put_u8(VERSION);
                    out.put_slice(&s1[..]);
                    out.put_slice(&s2[..]);
                    self.state = ServerState::AwaitC2;
                }
                ServerState::AwaitC2 => {
                    if input.len() < PACKET_LEN {
                        return Ok(false);
                    }
                    // C2 is not verified: many clients send a plain echo or
                    // garbage, and real servers accept it.
                    input.advance(PACKET_LEN);
                    self.state = ServerState::Done;
                }
                ServerState::Done => return Ok(true),
            }
        }
    }

    /// Whether the client used the digest scheme (known after C1).
    pub fn is_digest(&self) -> bool {
        self.digest
    }

    /// Whether C2 was read.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }
}

/// Which handshake the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The spec's handshake: zero version field, echoed packets.
    Plain,
    /// The digest ("complex") handshake of Flash Player.
    Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitS0S1S2,
    Done,
}

/// The client side: writes C0+C1 on [`Client::start`], reads S0+S1+S2,
/// answers C2.
#[derive(Debug)]
pub struct Client {
    state: ClientState,
    kind: Kind,
    random: Box<[u8; RANDOM_LEN]>,
    time: u32,
    server_verified: bool,
}

impl Client {
    /// A client handshake of the given kind.
    pub fn new(kind: Kind, time: u32, random: &[u8; RANDOM_LEN]) -> Self {
        Self {
            state: ClientState::Start,
            kind,
            random: Box::new(*random),
            time,
            server_verified: false,
        }
    }

    /// Appends C0+C1 to `out` (once; later calls append nothing).
    pub fn start(&mut self, out: &mut BytesMut) {
        if self.state != ClientState::Start {
            return;
        }
        let c1 = self.c1();
        out.reserve(1 + PACKET_LEN);
        out.put_u8(VERSION);
        out.put_slice(&c1[..]);
        self.state = ClientState::AwaitS0S1S2;
    }

    fn c1(&self) -> Box<[u8; PACKET_LEN]> {
        match self.kind {
            Kind::Plain => make_first(self.time, [0; 4], &self.random, None).0,
            Kind::Digest => {
                make_first(self.time, CLIENT_VERSION, &self.random, Some(&FP_TEXT[..])).0
            }
        }
    }

    /// Consumes S0+S1+S2 from `input`, appends C2 to `out`; `Ok(true)` when
    /// done (calls [`Client::start`] first if needed).
    pub fn handle_input(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, Error> {
        match self.state {
            ClientState::Start => {
                self.start(out);
                self.handle_input(input, out)
            }
            ClientState::AwaitS0S1S2 => {
                let Some(&v) = input.first() else {
                    return Ok(false);
                };
                check_version(v)?;
                if input.len() < 1 + 2 * PACKET_LEN {
                    return Ok(false);
                }
                input.advance(1);
                let s1 = take_packet(input);
                let s2 = take_packet(input);
                let fp: [u8; 62] = full_key(FP_TEXT);
                let s1_digest = match self.kind {
                    Kind::Digest => find_digest(&s1, FMS_TEXT),
                    Kind::Plain => None,
                };
                if s1_digest.is_some() {
                    // S2 must carry an HMAC of our C1 digest.
                    let c1 = self.c1();
                    let fms: [u8; 68] = full_key(FMS_TEXT);
                    let ours = find_digest(&c1, FP_TEXT);
                    if let Some(d) = ours {
                        let key = hmac(&fms, &[&d]);
                        let (body, sig) = s2.split_at(PACKET_LEN - DIGEST_LEN);
                        self.server_verified = hmac(&key, &[body]).as_slice() == sig;
                    }
                } else {
                    self.server_verified = s2.get(8..) == self.random.get(..);
                }
                let c2 = make_second(&s1, s1_digest, &fp, &self.random, self.time);
                out.put_slice(&c2[..]);
                self.state = ClientState::Done;
                Ok(true)
            }
            ClientState::Done => Ok(true),
        }
    }

    /// Whether S2 proved the server read our C1 (the echo matched, or the
    /// digest-scheme signature was valid).
    pub fn server_verified(&self) -> bool {
        self.server_verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; RANDOM_LEN] {
        let mut r = [0u8; RANDOM_LEN];
        let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
        for b in r.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        r
    }

    fn run(kind: Kind, split: usize) -> (Server, Client) {
        let mut server = Server::new(7, &random(1));
        let mut client = Client::new(kind, 9, &random(2));
        let (mut c2s, mut s2c) = (BytesMut::new(), BytesMut::new());
        client.start(&mut c2s);
        // Deliver in pieces of `split` bytes.
        let mut to_server = BytesMut::new();
        let mut to_client = BytesMut::new();
        let mut server_done = false;
        let mut client_done = false;
        for _ in 0..10_000 {
            let n = split.min(c2s.len());
            to_server.extend_from_slice(&c2s.split_to(n));
            server_done = server.handle_input(&mut to_server, &mut s2c).unwrap();
            let n = split.min(s2c.len());
            to_client.extend_from_slice(&s2c.split_to(n));
            client_done = client.handle_input(&mut to_client, &mut c2s).unwrap();
            if server_done && client_done && c2s.is_empty() && s2c.is_empty() {
                break;
            }
        }
        assert!(server_done && client_done);
        assert!(to_server.is_empty() && to_client.is_empty());
        (server, client)
    }

    #[test]
    fn plain_handshake_completes_in_any_split() {
        for split in [1, 7, 1536, 5000] {
            let (server, client) = run(Kind::Plain, split);
            assert!(!server.is_digest());
            assert!(client.server_verified());
        }
    }

    #[test]
    fn digest_handshake_verifies_both_ways() {
        let (server, client) = run(Kind::Digest, 1000);
        assert!(server.is_digest());
        assert!(client.server_verified());
    }

    #[test]
    fn leftover_bytes_stay_in_input() {
        let mut server = Server::new(0, &random(3));
        let mut client = Client::new(Kind::Plain, 0, &random(4));
        let mut c = BytesMut::new();
        client.start(&mut c);
        let mut s = BytesMut::new();
        assert!(!server.handle_input(&mut c, &mut s).unwrap());
        assert!(client.handle_input(&mut s, &mut c).unwrap());
        c.extend_from_slice(b"chunk");
        assert!(server.handle_input(&mut c, &mut s).unwrap());
        assert_eq!(&c[..], b"chunk");
    }

    #[test]
    fn rejects_other_versions() {
        for v in [0u8, 6, 0xff] {
            let mut server = Server::new(0, &random(5));
            let mut input = BytesMut::from(&[v][..]);
            let err = server
                .handle_input(&mut input, &mut BytesMut::new())
                .unwrap_err();
            assert_eq!(err, Error::UnsupportedVersion(v));
            assert!(err.to_string().contains("version"));
            let mut client = Client::new(Kind::Plain, 0, &random(6));
            let mut out = BytesMut::new();
            client.start(&mut out);
            let mut input = BytesMut::from(&[v][..]);
            assert_eq!(
                client.handle_input(&mut input, &mut out).unwrap_err(),
                Error::UnsupportedVersion(v)
            );
        }
    }

    #[test]
    fn digest_c1_from_flash_layout_is_found_in_schema_0() {
        // A client that puts the digest block second (schema 0), as some
        // Flash Player versions do.
        let mut c1 = [0u8; PACKET_LEN];
        c1[..8].copy_from_slice(&[0, 0, 0, 0, 10, 0, 45, 2]);
        c1[8..].copy_from_slice(&random(8));
        let off = digest_offset(&c1, 0);
        let d = packet_digest(&c1, off, FP_TEXT);
        c1[off..off + 32].copy_from_slice(&d);
        assert_eq!(find_digest(&c1, FP_TEXT), Some(d));
        let mut server = Server::new(0, &random(9));
        let mut input = BytesMut::new();
        input.put_u8(3);
        input.put_slice(&c1);
        let mut out = BytesMut::new();
        server.handle_input(&mut input, &mut out).unwrap();
        assert!(server.is_digest());
        // S2 is signed with a key derived from the client's digest.
        let fms: [u8; 68] = full_key(FMS_TEXT);
        let key = hmac(&fms, &[&d]);
        let s2 = &out[1 + PACKET_LEN..];
        assert_eq!(hmac(&key, &[&s2[..1504]]), s2[1504..]);
    }
}
