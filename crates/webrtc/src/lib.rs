//! WebRTC peer, sans-IO: on the server side the answer to a browser's (or
//! OBS's, or FFmpeg's) offer, ICE-lite, DTLS-SRTP, RTCP feedback, and one
//! UDP socket for every peer; on the client side ([`Peer::offer`], used by
//! `rts-probe`) a WHEP player or WHIP publisher.
//!
//! Built on the webrtc-rs sans-IO `rtc` stack (0.21); this crate owns the
//! parts that stack leaves silent (see `docs/decisions/webrtc-stack.md`):
//!
//! - **DTLS role**: we answer `a=setup:passive` and act as DTLS server
//!   (RFC 5763 5, RFC 8842 5) with an ECDSA P-256 certificate
//!   ([`Certificate`]) and ECDSA suites only; SHA-256 fingerprint
//!   (RFC 8122 5). SRTP profiles AEAD_AES_128_GCM (RFC 7714) and
//!   AES_CM_128_HMAC_SHA1_80 (RFC 3711, RFC 5764 4.1.2).
//! - **ICE-lite** (RFC 8445 2.5): host candidates from [`Config::candidates`]
//!   (127.0.0.1 works), peer-reflexive checks accepted; the
//!   [`demux::Router`] routes a new address by the STUN USERNAME of a
//!   binding request that authenticates with the session's password.
//! - **Keyframe requests**: the stack drops inbound RTCP at the end of its
//!   interceptor chain; a tap interceptor surfaces PLI (RFC 4585 6.3.1) and
//!   FIR (RFC 5104 4.3.1) as [`Event::KeyframeRequested`], and generic
//!   NACKs (RFC 4585 6.2.1), which the peer answers from rts-rtp's
//!   `SendHistory` (the stack's own NACK responder is not used).
//! - **Codecs** ([`sdp`]): H.264 packetization-mode=1 constrained baseline
//!   (RFC 6184 8.1; 42e01f or 42001f, whichever the offer has), RTX with
//!   `apt` (RFC 4588 8.6), rtcp-fb nack, nack pli, ccm fir, transport-cc;
//!   Opus 48000/2 with useinbandfec=1 (RFC 7587 7); only the transport-cc
//!   header extension. An offer with no usable codec is
//!   [`Error::NoUsableCodec`]. BUNDLE (RFC 9143) and rtcp-mux (RFC 5761).
//! - **Media**: we send only RTP the caller packetized (rts-rtp); the peer
//!   rewrites payload type and SSRC to the negotiated ones and encrypts, so
//!   one packetized stream feeds every viewer.
//! - **Client side** ([`Peer::offer`] then [`Peer::accept_answer`]): the
//!   same codecs and interceptors; full ICE, controlling (RFC 8445 6.1.1),
//!   checks to the answer's candidates; `a=setup:actpass`, so a passive
//!   answer makes us the DTLS client (RFC 8842 5). [`Role`] still names
//!   what the remote does: `Role::Publisher` plays (recvonly; packets come
//!   out as [`Event::Rtp`], NACKs are generated for lost video),
//!   `Role::Viewer` publishes ([`Peer::send_rtp`]). Then the same
//!   `handle_receive` / `handle_timeout` / `poll_*` loop as below, on a
//!   socket of its own (no [`Router`] needed).
//! - **ICE restart** (RFC 8445 9, RFC 8839 4.4.1.1.1): [`Peer::restart_ice`]
//!   on the server (the remote's new ufrag/pwd, as a WHIP/WHEP PATCH
//!   carries them, RFC 9725 4.3), [`Peer::restart_ice_offer`] and
//!   [`Peer::restart_ice_answer`] on the client. Checks start again with
//!   new credentials on both sides (random ones from the stack when
//!   [`Config::ice_ufrag`] is empty); DTLS and SRTP continue;
//!   [`Router::replace_credentials`] re-keys the demultiplexer
//!   (docs/decisions/webrtc-ice-restart.md).
//! - **Batched sends** ([`udp`], the crate's one I/O helper): a viewer's
//!   datagrams of one frame in one UDP GSO `sendmsg` through quinn-udp,
//!   with a per-datagram fallback (docs/decisions/webrtc-send-batching.md).
//! - **ICE-TCP** (RFC 6544, passive only): [`Config::tcp_candidates`]
//!   adds `tcptype passive` host candidates; the caller accepts the TCP
//!   connections, splits them into datagrams with [`framing`] (RFC 4571)
//!   and feeds them with [`Transport::Tcp`]; [`Transmit::transport`] says
//!   which way a reply goes.
//! - **Liveness**: a peer that sends nothing (STUN, DTLS, RTP, RTCP) for
//!   [`Config::idle_timeout`] is disconnected; FFmpeg's WHIP client does not
//!   answer consent-freshness checks (RFC 7675), so we do not depend on them.
//!
//! - **The host** ([`host::Host`]): every peer of one UDP socket, sans-IO,
//!   shaped like quinn-proto's `Endpoint`: the demultiplexer ([`Router`]:
//!   an address is bound to a session only by a STUN check whose
//!   MESSAGE-INTEGRITY verifies, RFC 8489 14.5), the WHIP/WHEP resource
//!   state (ICE restarts per session), the fan-out to viewers, the join,
//!   PLI and keyframe policy, limits (sessions, pending sessions per IP,
//!   addresses per session, a connect deadline) and panic containment.
//! - **Loss**: two faults of the stack under loss are worked around here
//!   (a DTLS flight that is never retransmitted, a nomination that is never
//!   answered); see the `handshake` module and
//!   docs/decisions/webrtc-loss.md.
//!
//! # The I/O loop
//!
//! Offers are answered outside the host ([`Peer::accept`] is the slow
//! part), then the peer is handed in; the loop feeds datagrams and timers
//! and sends what comes out:
//!
//! ```no_run
//! use std::net::{IpAddr, UdpSocket};
//! use std::time::{Duration, Instant};
//! use rts_webrtc::host::{Host, HostConfig, HostEvent, SessionKind};
//! use rts_webrtc::{Certificate, Config, Peer, Role};
//!
//! # fn offer_from_http() -> (String, IpAddr) { (String::new(), IpAddr::from([127, 0, 0, 1])) }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = UdpSocket::bind("127.0.0.1:8000")?;
//! let local = socket.local_addr()?;
//! let certificate = Certificate::generate()?;
//! let mut host: Host<u64, &str> = Host::new(HostConfig::default());
//!
//! // A WHEP POST: answer the offer, then hand the peer to the host.
//! let (offer, remote_ip) = offer_from_http();
//! let config = Config {
//!     local_addr: local,
//!     candidates: vec![local],
//!     certificate: certificate.clone(),
//!     ice_ufrag: String::new(), // random, new ones at each ICE restart
//!     ice_pwd: String::new(),
//!     video_ssrc: 0x1234_5678, // random per session
//!     audio_ssrc: 0x9abc_def0,
//!     idle_timeout: Duration::from_secs(15),
//!     stats_interval: Duration::from_secs(1),
//!     tcp_candidates: Vec::new(),
//! };
//! let (peer, _answer_sdp) = Peer::accept(Instant::now(), &offer, Role::Viewer, &config)?;
//! host.insert(Instant::now(), 1, SessionKind::Play("live/demo"), peer, remote_ip)?;
//!
//! let mut buf = [0u8; 2048];
//! loop {
//!     while let Some(t) = host.poll_transmit() {
//!         socket.send_to(&t.contents, t.destination)?;
//!     }
//!     while let Some(event) = host.poll_event() {
//!         match event {
//!             HostEvent::KeyframeNeeded { .. } => { /* ask the encoder for an IDR */ }
//!             HostEvent::Closed { id, reason, .. } => eprintln!("session {id}: {reason}"),
//!             _ => {}
//!         }
//!     }
//!     // Media: host.send_video(Instant::now(), &"live/demo", &packets, keyframe);
//!     let wait = host
//!         .poll_timeout()
//!         .map(|t| t.saturating_duration_since(Instant::now()))
//!         .unwrap_or(Duration::from_millis(50));
//!     socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((n, from)) => host.handle_datagram(Instant::now(), from, &buf[..n]),
//!         Err(_) => host.handle_timeout(Instant::now()),
//!     }
//! }
//! # }
//! ```
//!
//! A single [`Peer`] can also be driven by hand with the same
//! `handle_receive` / `handle_timeout` / `poll_*` calls (the client side
//! does: [`Peer::offer`]).
//!
//! # Errors and panics
//!
//! Offers are checked before the stack sees them ([`sdp::summarize`]:
//! bounded size, a usable codec, a direction that fits the [`Role`]);
//! errors say what was wrong and what to offer instead. Datagrams from the
//! network never panic: the demultiplexer is bounds-checked (and fuzzed);
//! what the stack rejects comes back as [`Error::Stack`] and the peer goes
//! on. A panic inside the stack for one session ends that session only
//! ([`host::Host`] catches it and counts it). Time is passed in; the stack draws its own randomness for DTLS and
//! SRTP keys (and ICE credentials when the caller leaves them empty); SSRCs
//! come from the caller.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

pub mod demux;
mod error;
pub mod fanout;
pub mod framing;
mod handshake;
pub mod host;
pub mod peer;
pub mod sdp;
mod sync;
pub mod udp;

pub use demux::Router;
pub use error::{Error, StackError};
pub use fanout::ViewerQueue;
pub use peer::{
    Certificate, Config, ENDED_BY_REMOTE, Event, IceCredentials, KeyframeRequest, Peer, Role,
    RtpPacket, Stats, Transmit, Transport,
};
pub use sdp::{Codec, MediaKind};
