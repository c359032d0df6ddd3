//! RTMP: handshake, chunk stream codec, messages, commands and sans-IO
//! server and client sessions.
//!
//! Follows Adobe's *Real-Time Messaging Protocol (RTMP) specification* 1.0
//! (2012): the handshake of section 5.2 plus the digest variant Flash-era
//! peers use ([`handshake`]), chunking of 5.3 ([`chunk`]), the protocol
//! control messages of 5.4 and User Control events of 6.2/7.1.7
//! ([`message`]), the command and data messages of 7.1/7.2 in AMF0
//! ([`command`], with AMF0 from `rts_flv::amf0`), and Enhanced RTMP's
//! `fourCcList` in connect. [`session`] ties them together.
//!
//! # The I/O loop
//!
//! Nothing here touches a socket or a clock: the caller reads bytes, passes
//! them in with the current time, writes what comes out, and acts on
//! events.
//!
//! ```
//! use std::time::Instant;
//! use rts_rtmp::session::{ClientEvent, ClientSession, Config, ServerEvent, ServerSession};
//!
//! let mut server = ServerSession::new(Config::default(), &[1; 1528]);
//! let mut client = ClientSession::new(Config::default(), "rtmp://127.0.0.1/live", "live", &[2; 1528]);
//! client.publish("demo?auth_key=1700000000-0-0-abc");
//! let now = Instant::now();
//! let mut published = false;
//! for _ in 0..20 {
//!     // In a real program these are socket writes and reads.
//!     while let Some(bytes) = client.poll_transmit() {
//!         server.handle_input(now, &bytes);
//!     }
//!     while let Some(bytes) = server.poll_transmit() {
//!         client.handle_input(now, &bytes);
//!     }
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::ConnectRequested { .. } => server.accept_connect()?,
//!             ServerEvent::PublishRequested { stream_id, stream, query, .. } => {
//!                 assert_eq!((stream.as_str(), query.as_str()), ("demo", "auth_key=1700000000-0-0-abc"));
//!                 server.accept_publish(stream_id)?;
//!             }
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = client.poll_event() {
//!         published |= matches!(event, ClientEvent::PublishStarted { .. });
//!     }
//! }
//! assert!(published);
//! # Ok::<(), rts_rtmp::Error>(())
//! ```
//!
//! `examples/rtmp-record.rs` at the workspace root is a complete server
//! over std threads.
//!
//! # Errors and panics
//! Anything a peer sends that breaks the protocol (a bad version, a chunk
//! header with no previous header, chunk size 0, a message larger than
//! [`Limits`] allow, too many chunk streams, malformed AMF0 or AMF0 nested
//! deeper than [`command::AMF_LIMITS`]) is an [`Error`]: a session reports
//! it as an `Error` event followed by `Closed` and stops. Unknown commands
//! are answered with `_error` and the session goes on. Calling an
//! `accept_*`/`reject_*` method with nothing pending is
//! [`Error::InvalidState`]. No input makes this crate panic: lengths from
//! the wire are checked before anything is reserved, and arithmetic on
//! wire values is checked or wrapping where the protocol wraps.
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

pub mod chunk;
pub mod command;
mod error;
pub mod handshake;
pub mod message;
pub mod session;

pub use chunk::{Decoder, Encoder, Limits, Message};
pub use error::Error;
