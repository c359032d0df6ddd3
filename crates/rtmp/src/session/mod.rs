//! Sans-IO sessions: [`ServerSession`] (what a publisher or player talks
//! to) and [`ClientSession`] (publish or play, for relays and tests).
//!
//! Both follow the same loop: `handle_input(now, bytes)` with what the
//! socket read, `handle_timeout(now)` when `poll_timeout()` passes, then
//! drain `poll_transmit()` (bytes to write) and `poll_event()` until both
//! are empty.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rts_flv::amf0::Value;

use crate::chunk::{Decoder, Encoder, Limits, Message};
use crate::command::{Command, Data};
use crate::message::{Control, types};

mod client;
mod server;

pub use client::{ClientEvent, ClientSession};
pub use server::{ServerEvent, ServerSession};

/// Chunk stream ids this crate sends on.
pub(crate) mod csid {
    pub(crate) const COMMAND: u32 = 3;
    pub(crate) const STREAM: u32 = 5;
    pub(crate) const AUDIO: u32 = 6;
    pub(crate) const VIDEO: u32 = 7;
    pub(crate) const PUBLISH: u32 = 8;
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Message type 8: an FLV audio tag body.
    Audio,
    /// Message type 9: an FLV video tag body.
    Video,
}

impl MediaKind {
    /// The RTMP message type id.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => types::AUDIO,
            MediaKind::Video => types::VIDEO,
        }
    }
}

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Chunk size we send with (default 4096).
    pub chunk_size: u32,
    /// Window Acknowledgement Size we ask the peer to use (default 2.5 MB).
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we send (default 2.5 MB).
    pub peer_bandwidth: u32,
    /// Chunk decoder limits.
    pub limits: Limits,
    /// Most message streams a connection may create (default 8).
    pub max_streams: u32,
    /// Close a connection that sends nothing for this long (default 30 s;
    /// not applied while it only plays).
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            limits: Limits::default(),
            max_streams: 8,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// The parts both sessions share: buffers, codecs, acknowledgements.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) input: BytesMut,
    pub(crate) out: BytesMut,
    pub(crate) decoder: Decoder,
    pub(crate) encoder: Encoder,
    /// The peer's Window Acknowledgement Size (0: none announced).
    peer_window: u32,
    acked: u64,
    pub(crate) handshake_bytes: u64,
    pub(crate) last_input: Option<Instant>,
}

impl Core {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            input: BytesMut::new(),
            out: BytesMut::new(),
            decoder: Decoder::new(limits),
            encoder: Encoder::new(),
            peer_window: 0,
            acked: 0,
            handshake_bytes: 0,
            last_input: None,
        }
    }

    pub(crate) fn take_input(&mut self, now: Instant, data: &[u8]) {
        self.last_input = Some(now);
        self.input.extend_from_slice(data);
    }

    pub(crate) fn send(&mut self, msg: &Message) {
        self.encoder.encode(msg, &mut self.out);
    }

    pub(crate) fn send_control(&mut self, c: &Control) {
        self.send(&c.to_message());
    }

    pub(crate) fn send_command(&mut self, csid: u32, stream_id: u32, cmd: &Command) {
        let m = Message::new(csid, 0, types::COMMAND_AMF0, stream_id, cmd.encode());
        self.send(&m);
    }

    pub(crate) fn send_data(&mut self, stream_id: u32, timestamp: u32, data: Bytes) {
        let m = Message::new(csid::STREAM, timestamp, types::DATA_AMF0, stream_id, data);
        self.send(&m);
    }

    /// Handles the control messages every side handles the same way;
    /// returns true when `msg` was one.
    pub(crate) fn handle_control(&mut self, msg: &Message) -> Result<bool, crate::Error> {
        use crate::message::UserControl;
        let Some(c) = Control::parse(msg)? else {
            return Ok(false);
        };
        match c {
            Control::WindowAckSize(w) => self.peer_window = w,
            Control::UserControl(UserControl::PingRequest(t)) => {
                self.send_control(&Control::UserControl(UserControl::PingResponse(t)));
            }
            // Set Chunk Size and Abort were applied by the decoder; the
            // rest needs no action.
            _ => {}
        }
        Ok(true)
    }

    /// Sends an Acknowledgement when a window's worth arrived (5.4.3).
    pub(crate) fn maybe_ack(&mut self) {
        if self.peer_window == 0 {
            return;
        }
        let total = self
            .decoder
            .bytes_consumed()
            .wrapping_add(self.handshake_bytes);
        if total.saturating_sub(self.acked) >= u64::from(self.peer_window) {
            self.acked = total;
            // The sequence number wraps at 2^32 (5.4.3).
            self.send_control(&Control::Acknowledgement(total as u32));
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }
}

/// The onMetaData script-tag body (`"onMetaData", value`) for a metadata
/// value: what an FLV file or an RTMP player wants.
pub fn metadata_body(metadata: &Value) -> Bytes {
    Data {
        name: "onMetaData".to_owned(),
        values: vec![metadata.clone()],
    }
    .encode()
}

/// The messages inside an Aggregate message (7.1.6): FLV tags whose
/// timestamps are made relative to the aggregate's own.
pub(crate) fn split_aggregate(msg: &Message) -> Result<Vec<Message>, crate::Error> {
    let malformed = |why| crate::Error::Malformed {
        what: "aggregate message",
        why,
    };
    let p = &msg.payload;
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut first_ts: Option<u32> = None;
    while at < p.len() {
        let h = p
            .get(at..at.saturating_add(11))
            .ok_or(malformed("truncated tag header"))?;
        let be = |r: &[u8]| r.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
        let type_id = h.first().copied().unwrap_or(0);
        let size = be(h.get(1..4).unwrap_or_default()) as usize;
        let ts = be(h.get(4..7).unwrap_or_default()) | (be(h.get(7..8).unwrap_or_default()) << 24);
        let start = at.saturating_add(11);
        let end = start.checked_add(size).ok_or(malformed("size overflow"))?;
        if end.saturating_add(4) > p.len() {
            return Err(malformed("tag runs past the end"));
        }
        let base = *first_ts.get_or_insert(ts);
        out.push(Message::new(
            msg.csid,
            msg.timestamp.wrapping_add(ts.wrapping_sub(base)),
            type_id,
            msg.stream_id,
            p.slice(start..end),
        ));
        at = end.saturating_add(4);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::command::code;
    use crate::handshake::RANDOM_LEN;

    fn pump(s: &mut ServerSession, c: &mut ClientSession, now: Instant) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(b) = c.poll_transmit() {
                s.handle_input(now, &b);
                moved = true;
            }
            while let Some(b) = s.poll_transmit() {
                c.handle_input(now, &b);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    fn events<T>(next: impl FnMut() -> Option<T>) -> Vec<T> {
        std::iter::from_fn(next).collect()
    }

    fn connected(name: &str, publish: bool) -> (ServerSession, ClientSession, Instant, u32) {
        let now = Instant::now();
        let mut s = ServerSession::new(Config::default(), &[1; RANDOM_LEN]);
        let mut c = ClientSession::new(
            Config::default(),
            "rtmp://127.0.0.1/live",
            "live",
            &[2; RANDOM_LEN],
        );
        if publish {
            c.publish(name);
        } else {
            c.play(name);
        }
        pump(&mut s, &mut c, now);
        let ev = events(|| s.poll_event());
        assert!(
            matches!(&ev[..], [ServerEvent::ConnectRequested { app, tc_url: Some(t), .. }] if app == "live" && t == "rtmp://127.0.0.1/live"),
            "{ev:?}"
        );
        s.accept_connect().unwrap();
        pump(&mut s, &mut c, now);
        let ev = events(|| s.poll_event());
        let sid = match &ev[..] {
            [
                ServerEvent::PublishRequested {
                    stream_id,
                    app,
                    stream,
                    query,
                },
            ] if publish => {
                assert_eq!(
                    (app.as_str(), stream.as_str(), query.as_str()),
                    ("live", "demo", "auth_key=1-0-0-abc")
                );
                *stream_id
            }
            [
                ServerEvent::PlayRequested {
                    stream_id, stream, ..
                },
            ] if !publish => {
                assert_eq!(stream, "demo");
                *stream_id
            }
            other => panic!("{other:?}"),
        };
        (s, c, now, sid)
    }

    #[test]
    fn publish_then_media_then_unpublish() {
        let (mut s, mut c, now, sid) = connected("demo?auth_key=1-0-0-abc", true);
        s.accept_publish(sid).unwrap();
        pump(&mut s, &mut c, now);
        let ev = events(|| c.poll_event());
        assert_eq!(
            ev,
            [
                ClientEvent::Connected,
                ClientEvent::PublishStarted { stream_id: sid }
            ]
        );
        let meta = Value::ecma_array([("width", Value::from(640.0))]);
        assert!(c.send_metadata(&meta));
        let frame = Bytes::from(vec![0x17; 10_000]);
        c.send_media(MediaKind::Video, 40, frame.clone());
        c.send_media(MediaKind::Audio, 41, Bytes::from_static(&[0xaf, 1, 2]));
        c.close(Some("demo"));
        pump(&mut s, &mut c, now);
        let ev = events(|| s.poll_event());
        assert_eq!(
            ev,
            [
                ServerEvent::Metadata {
                    stream_id: sid,
                    timestamp: 0,
                    metadata: meta.clone(),
                    payload: metadata_body(&meta)
                },
                ServerEvent::Media {
                    stream_id: sid,
                    kind: MediaKind::Video,
                    timestamp: 40,
                    payload: frame
                },
                ServerEvent::Media {
                    stream_id: sid,
                    kind: MediaKind::Audio,
                    timestamp: 41,
                    payload: Bytes::from_static(&[0xaf, 1, 2])
                },
                ServerEvent::Unpublished {
                    stream_id: sid,
                    stream: "demo".into()
                },
            ]
        );
    }

    #[test]
    fn play_receives_what_the_server_sends() {
        let (mut s, mut c, now, sid) = connected("demo", false);
        s.accept_play(sid).unwrap();
        let meta = Value::ecma_array([("width", Value::from(640.0))]);
        assert!(s.send_metadata(sid, metadata_body(&meta)));
        assert!(s.send_media(sid, MediaKind::Video, 0, Bytes::from_static(b"\x17\x00")));
        assert!(s.send_unpublish_notify(sid));
        pump(&mut s, &mut c, now);
        let ev = events(|| c.poll_event());
        assert_eq!(ev[0], ClientEvent::Connected);
        assert!(matches!(&ev[1], ClientEvent::Status { code, .. } if code == code::PLAY_RESET));
        assert_eq!(ev[2], ClientEvent::PlayStarted { stream_id: sid });
        assert_eq!(ev[3], ClientEvent::Metadata { metadata: meta });
        assert!(matches!(
            &ev[4],
            ClientEvent::Media {
                kind: MediaKind::Video,
                ..
            }
        ));
        assert!(
            matches!(&ev[5], ClientEvent::Status { code, .. } if code == code::PLAY_UNPUBLISH_NOTIFY)
        );
    }

    #[test]
    fn rejections_reach_the_client_with_their_description() {
        let (mut s, mut c, now, sid) = connected("demo?auth_key=1-0-0-abc", true);
        s.reject_publish(sid, code::PUBLISH_UNAUTHORIZED, "invalid md5hash=abc")
            .unwrap();
        pump(&mut s, &mut c, now);
        let ev = events(|| c.poll_event());
        assert!(
            ev.contains(&ClientEvent::Error(Error::Rejected {
                code: code::PUBLISH_UNAUTHORIZED.into(),
                description: "invalid md5hash=abc".into()
            })),
            "{ev:?}"
        );

        let now = Instant::now();
        let mut s = ServerSession::new(Config::default(), &[1; RANDOM_LEN]);
        let mut c =
            ClientSession::new(Config::default(), "rtmp://h/live", "live", &[2; RANDOM_LEN]);
        pump(&mut s, &mut c, now);
        let _ = events(|| s.poll_event());
        s.reject_connect("expired timestamp=1: sign a new URL")
            .unwrap();
        pump(&mut s, &mut c, now);
        assert!(s.is_closed());
        assert_eq!(events(|| s.poll_event()), [ServerEvent::Closed]);
        let ev = events(|| c.poll_event());
        assert!(
            ev.contains(&ClientEvent::Error(Error::Rejected {
                code: code::CONNECT_REJECTED.into(),
                description: "expired timestamp=1: sign a new URL".into()
            })),
            "{ev:?}"
        );
    }

    #[test]
    fn unknown_command_gets_error_not_disconnect() {
        let (mut s, mut c, now, sid) = connected("demo?auth_key=1-0-0-abc", true);
        s.accept_publish(sid).unwrap();
        pump(&mut s, &mut c, now);
        let _ = events(|| c.poll_event());
        c.core
            .send_command(csid::COMMAND, 0, &Command::new("fooBar", 9.0, Value::Null));
        pump(&mut s, &mut c, now);
        assert!(!s.is_closed());
        assert!(events(|| s.poll_event()).is_empty());
        // The client sees `_error` for transaction 9 (and ignores it).
        assert!(!c.is_closed());
    }

    #[test]
    fn server_acknowledges_each_window_as_a_receiver() {
        use crate::message::Control;
        let mut s = ServerSession::new(Config::default(), &[1; RANDOM_LEN]);
        let now = Instant::now();
        let mut wire = BytesMut::from(&[3u8][..]);
        wire.extend_from_slice(&[0; 1536 * 2]);
        let mut enc = crate::Encoder::new();
        enc.encode(&Control::WindowAckSize(1000).to_message(), &mut wire);
        for ts in 0..5 {
            let m = Message::new(6, ts, types::VIDEO, 1, Bytes::from(vec![0u8; 600]));
            enc.encode(&m, &mut wire);
        }
        let total = wire.len() as u64;
        s.handle_input(now, &wire);
        let mut out = BytesMut::new();
        while let Some(b) = s.poll_transmit() {
            out.extend_from_slice(&b);
        }
        let _ = out.split_to(1 + 2 * 1536);
        let mut dec = crate::Decoder::default();
        let mut acks = Vec::new();
        while let Some(m) = dec.decode(&mut out).unwrap() {
            if let Some(Control::Acknowledgement(n)) = Control::parse(&m).unwrap() {
                acks.push(n);
            }
        }
        // 3073 handshake bytes plus ~3.1 kB of chunks: three windows.
        assert_eq!(acks.len(), 3, "{acks:?}");
        assert!(acks.windows(2).all(|w| w[1] - w[0] >= 1000));
        assert!(u64::from(*acks.last().unwrap()) <= total);
    }

    #[test]
    fn idle_timeout_closes() {
        let mut s = ServerSession::new(Config::default(), &[1; RANDOM_LEN]);
        let t0 = Instant::now();
        s.handle_input(t0, &[3]);
        let deadline = s.poll_timeout().unwrap();
        s.handle_timeout(deadline);
        assert_eq!(
            events(|| s.poll_event()),
            [
                ServerEvent::Error(Error::IdleTimeout(Config::default().idle_timeout)),
                ServerEvent::Closed
            ]
        );
    }

    #[test]
    fn malformed_input_ends_the_session_with_an_error() {
        let mut c1 = vec![3u8];
        c1.extend_from_slice(&[0; 1536 * 2]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("bad version", vec![6; 1537]),
            (
                "fmt 1 without header",
                [&c1[..], &[0x43, 0, 0, 0, 0, 0, 1, 20]].concat(),
            ),
            (
                "chunk size 0",
                [&c1[..], &[2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0]].concat(),
            ),
            (
                "oversized",
                [&c1[..], &[3, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]].concat(),
            ),
            (
                "not a command",
                [&c1[..], &[3, 0, 0, 0, 0, 0, 2, 20, 0, 0, 0, 0, 0x05, 0x05]].concat(),
            ),
        ];
        // A command whose AMF0 nests 5000 objects deep, and one cut short
        // inside a string.
        let mut bomb = vec![0x02, 0, 7];
        bomb.extend_from_slice(b"connect");
        bomb.extend_from_slice(&[0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        for _ in 0..5000 {
            bomb.extend_from_slice(&[0x03, 0, 1, b'a']);
        }
        let truncated = [0x02, 0, 7, b'c', b'o', b'n'].to_vec();
        let mut cases = cases;
        for (what, body) in [("amf nesting bomb", bomb), ("truncated amf", truncated)] {
            let mut enc = crate::Encoder::new();
            let mut wire = BytesMut::from(&c1[..]);
            enc.encode(
                &Message::new(3, 0, types::COMMAND_AMF0, 0, Bytes::from(body)),
                &mut wire,
            );
            cases.push((what, wire.to_vec()));
        }
        for (what, input) in cases {
            let mut s = ServerSession::new(
                Config {
                    limits: Limits {
                        max_message_len: 1 << 20,
                        ..Limits::default()
                    },
                    ..Config::default()
                },
                &[1; RANDOM_LEN],
            );
            s.handle_input(Instant::now(), &input);
            let ev = events(|| s.poll_event());
            assert!(
                matches!(&ev[..], [ServerEvent::Error(_), ServerEvent::Closed]),
                "{what}: {ev:?}"
            );
            assert!(s.is_closed());
        }
    }
}
