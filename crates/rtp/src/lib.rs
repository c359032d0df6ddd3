//! RTP payload formats (H.264, Opus), retransmission history and RTCP helpers.
//!
//! The packetization layer between media frames and the WebRTC transport:
//! used once per stream on the way out (not once per viewer), and for WHIP
//! ingest on the way in. Sans-IO: frames, packets, time and randomness in;
//! packets, events and timeouts out. Packet types on the wire come from the
//! webrtc-rs `rtc` family (`rtc-rtp`, `rtc-rtcp` 0.21, the versions `rtc`
//! 0.21.1 uses), so packets go straight to the WebRTC peer.
//!
//! | module | spec |
//! |---|---|
//! | [`h264`] | RFC 6184 (5.6 single NAL unit, 5.7.1 STAP-A, 5.8 FU-A, 8.1 SDP parameters), packetization-mode 1 |
//! | [`opus`] | RFC 7587 (4.1 clock, 4.2 one frame per packet) |
//! | [`packet`] | RFC 3550 5.1 header; outgoing packets as header + borrowed payload |
//! | [`timeline`] | continuity of sequence numbers and timestamps across source restarts |
//! | [`jitter`] | bounded reorder buffer with a maximum wait |
//! | [`receiver`] | receive sessions: reorder buffer + H.264 / Opus depacketizer |
//! | [`history`] | send history, NACK answered with RTX (RFC 4588 4) or a plain resend |
//! | [`nack`] | receiver-side generic NACK generation (RFC 4585 6.2.1) |
//! | [`rtcp`] | SR/RR (RFC 3550 6.4, intervals 6.2/A.7), SDES CNAME, PLI, FIR (RFC 5104 4.3.1), REMB, transport-wide CC |
//! | [`ext`] | header extensions (RFC 8285): abs-send-time, transport-wide seq, playout-delay, abs-capture-time |
//!
//! # The loop
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::{Bytes, BytesMut};
//! use rts_rtp::{h264, history, jitter, ext::Extensions};
//!
//! // Sender: one packetizer per stream; the history answers NACKs.
//! let mut pk = h264::Packetizer::new(h264::Config { ssrc: 1, ..Default::default() })?;
//! pk.set_parameter_sets(vec![Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e])],
//!                       vec![Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80])]);
//! let mut hist = history::SendHistory::new(history::Config { ssrc: 1, ..Default::default() });
//! let now = Instant::now();
//! let idr = Bytes::from([&[0, 0, 7, 209, 0x65][..], &[0xab; 2000]].concat()); // AVCC, 2001-byte NAL
//! let mut packets = Vec::new();
//! pk.packetize(&idr, h264::Format::Avcc { length_size: 4 }, 0, &mut packets)?;
//! assert_eq!(packets.len(), 3); // STAP-A(SPS, PPS) + 2 x FU-A
//! let mut wire = BytesMut::new();
//! let mut datagrams = Vec::new();
//! for p in &packets {
//!     hist.record(now, p);
//!     p.encode(&Extensions::new(), &mut wire); // caller-owned buffer
//!     datagrams.push(wire.split().freeze());
//! }
//!
//! // Receiver: reorder, then depacketize.
//! let mut jb = jitter::ReorderBuffer::new(512, Duration::from_millis(50));
//! let mut depack = h264::Depacketizer::new(h264::Depacketizer::DEFAULT_MAX_ACCESS_UNIT);
//! for d in datagrams.iter().rev() {
//!     let p = rts_rtp::packet::parse(d)?;
//!     jb.push(now, p.header.sequence_number, p);
//! }
//! while let Some(out) = jb.pop(now) {
//!     match out {
//!         jitter::Output::Packet(p) => depack.push(p.header.marker, p.header.timestamp, &p.payload),
//!         jitter::Output::Lost(_) => depack.lost(),
//!     }
//! }
//! match depack.poll_event() {
//!     Some(h264::Event::AccessUnit(au)) => assert!(au.keyframe && au.nals.len() == 3),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), rts_rtp::Error>(())
//! ```
//!
//! # Errors and panics
//! Malformed input (a bad NAL length, a truncated STAP-A, an RTCP packet
//! `rtc-rtcp` rejects) is an [`Error`] or, in the depacketizer, a dropped
//! access unit counted in its stats; caller mistakes (an MTU too small) are
//! [`Error::MtuTooSmall`]. Nothing here panics on any input from the
//! network or a file: lengths are checked, arithmetic is checked or
//! saturating, and every buffer (reorder buffer, history, NACK list,
//! access-unit size) is bounded. No clock or RNG is read: the caller passes
//! `now`, wall-clock time and randomness.
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

mod error;
pub mod ext;
pub mod h264;
pub mod history;
pub mod jitter;
pub mod nack;
pub mod opus;
pub mod packet;
pub mod receiver;
pub mod rtcp;
pub mod timeline;

pub use error::Error;
pub use packet::{Packet, Payload};
pub use rtc_rtcp;
pub use rtc_rtp;
