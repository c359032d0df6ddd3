//! Message types (Adobe RTMP 1.0 section 5.4 and 7.1) and the protocol
//! control messages: Set Chunk Size, Abort, Acknowledgement, Window
//! Acknowledgement Size, Set Peer Bandwidth and User Control events.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;
use crate::chunk::{CONTROL_CSID, Message, read_u32};

/// Message type ids.
pub mod types {
    /// Set Chunk Size (5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (6.2, 7.1.7).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio (7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video (7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data, AMF3 (7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 (7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command, AMF3 (7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data, AMF0 (7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0 (7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command, AMF0 (7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate (7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Set Peer Bandwidth limit types (5.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitType {
    /// 0: limit to the window size.
    Hard,
    /// 1: limit to the smaller of this window and the current one.
    Soft,
    /// 2: hard if the previous was hard, else ignore.
    Dynamic,
}

/// User Control events (7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserControl {
    /// 0: the stream became functional.
    StreamBegin(u32),
    /// 1: playback of the stream ended.
    StreamEof(u32),
    /// 2: no more data on the stream.
    StreamDry(u32),
    /// 3: the client's buffer length in milliseconds.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// 4: the stream is recorded.
    StreamIsRecorded(u32),
    /// 6: ping, with the sender's timestamp.
    PingRequest(u32),
    /// 7: pong, echoing the ping's timestamp.
    PingResponse(u32),
    /// Any other event type, with its data.
    Other {
        /// Event type.
        event: u16,
        /// Event data.
        data: Bytes,
    },
}

/// A protocol control or User Control message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Set Chunk Size.
    SetChunkSize(u32),
    /// Abort the message in progress on a chunk stream.
    Abort(u32),
    /// Acknowledgement: bytes received so far (sequence number).
    Acknowledgement(u32),
    /// Window Acknowledgement Size.
    WindowAckSize(u32),
    /// Set Peer Bandwidth.
    SetPeerBandwidth {
        /// Window size.
        size: u32,
        /// How to apply it.
        limit: LimitType,
    },
    /// A User Control event.
    UserControl(UserControl),
}

impl Control {
    /// Parses a control message; `Ok(None)` for other message types.
    pub fn parse(msg: &Message) -> Result<Option<Self>, Error> {
        let p = &msg.payload[..];
        Ok(Some(match msg.type_id {
            types::SET_CHUNK_SIZE => Self::SetChunkSize(read_u32(p, "set chunk size")?),
            types::ABORT => Self::Abort(read_u32(p, "abort")?),
            types::ACKNOWLEDGEMENT => Self::Acknowledgement(read_u32(p, "acknowledgement")?),
            types::WINDOW_ACK_SIZE => Self::WindowAckSize(read_u32(p, "window ack size")?),
            types::SET_PEER_BANDWIDTH => {
                let size = read_u32(p, "set peer bandwidth")?;
                let limit = match p.get(4) {
                    Some(0) => LimitType::Hard,
                    Some(1) => LimitType::Soft,
                    Some(2) => LimitType::Dynamic,
                    _ => {
                        return Err(Error::Malformed {
                            what: "set peer bandwidth",
                            why: "missing or unknown limit type",
                        });
                    }
                };
                Self::SetPeerBandwidth { size, limit }
            }
            types::USER_CONTROL => {
                let (event, data) = match p.get(..2) {
                    Some(&[a, b]) => (u16::from_be_bytes([a, b]), msg.payload.slice(2..)),
                    _ => {
                        return Err(Error::Malformed {
                            what: "user control",
                            why: "shorter than 2 bytes",
                        });
                    }
                };
                let what = "user control";
                Self::UserControl(match event {
                    0 => UserControl::StreamBegin(read_u32(&data, what)?),
                    1 => UserControl::StreamEof(read_u32(&data, what)?),
                    2 => UserControl::StreamDry(read_u32(&data, what)?),
                    3 => UserControl::SetBufferLength {
                        stream_id: read_u32(&data, what)?,
                        millis: read_u32(data.get(4..).unwrap_or_default(), what)?,
                    },
                    4 => UserControl::StreamIsRecorded(read_u32(&data, what)?),
                    6 => UserControl::PingRequest(read_u32(&data, what)?),
                    7 => UserControl::PingResponse(read_u32(&data, what)?),
                    event => UserControl::Other { event, data },
                })
            }
            _ => return Ok(None),
        }))
    }

    /// The message carrying this control, on chunk stream 2, message
    /// stream 0, timestamp 0.
    pub fn to_message(&self) -> Message {
        let mut b = BytesMut::with_capacity(10);
        let type_id = match self {
            Self::SetChunkSize(v) => {
                b.put_u32(*v & 0x7fff_ffff);
                types::SET_CHUNK_SIZE
            }
            Self::Abort(v) => {
                b.put_u32(*v);
                types::ABORT
            }
            Self::Acknowledgement(v) => {
                b.put_u32(*v);
                types::ACKNOWLEDGEMENT
            }
            Self::WindowAckSize(v) => {
                b.put_u32(*v);
                types::WINDOW_ACK_SIZE
            }
            Self::SetPeerBandwidth { size, limit } => {
                b.put_u32(*size);
                b.put_u8(match limit {
                    LimitType::Hard => 0,
                    LimitType::Soft => 1,
                    LimitType::Dynamic => 2,
                });
                types::SET_PEER_BANDWIDTH
            }
            Self::UserControl(e) => {
                let (event, a, b2) = match e {
                    UserControl::StreamBegin(s) => (0u16, *s, None),
                    UserControl::StreamEof(s) => (1, *s, None),
                    UserControl::StreamDry(s) => (2, *s, None),
                    UserControl::SetBufferLength { stream_id, millis } => {
                        (3, *stream_id, Some(*millis))
                    }
                    UserControl::StreamIsRecorded(s) => (4, *s, None),
                    UserControl::PingRequest(t) => (6, *t, None),
                    UserControl::PingResponse(t) => (7, *t, None),
                    UserControl::Other { event, data } => {
                        b.put_u16(*event);
                        b.put_slice(data);
                        return Message::new(CONTROL_CSID, 0, types::USER_CONTROL, 0, b.freeze());
                    }
                };
                b.put_u16(event);
                b.put_u32(a);
                if let Some(v) = b2 {
                    b.put_u32(v);
                }
                types::USER_CONTROL
            }
        };
        Message::new(CONTROL_CSID, 0, type_id, 0, b.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_round_trip() {
        let all = [
            Control::SetChunkSize(4096),
            Control::Abort(6),
            Control::Acknowledgement(2_500_000),
            Control::WindowAckSize(5_000_000),
            Control::SetPeerBandwidth {
                size: 5_000_000,
                limit: LimitType::Dynamic,
            },
            Control::UserControl(UserControl::StreamBegin(1)),
            Control::UserControl(UserControl::StreamEof(1)),
            Control::UserControl(UserControl::StreamDry(1)),
            Control::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                millis: 3000,
            }),
            Control::UserControl(UserControl::StreamIsRecorded(1)),
            Control::UserControl(UserControl::PingRequest(77)),
            Control::UserControl(UserControl::PingResponse(77)),
            Control::UserControl(UserControl::Other {
                event: 31,
                data: Bytes::from_static(b"xy"),
            }),
        ];
        for c in all {
            assert_eq!(Control::parse(&c.to_message()).unwrap(), Some(c));
        }
    }

    #[test]
    fn spec_bytes() {
        // 7.1.7: User Control StreamBegin 1 is event 0 then the stream id.
        let m = Control::UserControl(UserControl::StreamBegin(1)).to_message();
        assert_eq!(&m.payload[..], &[0, 0, 0, 0, 0, 1]);
        assert_eq!((m.csid, m.type_id, m.stream_id), (2, 4, 0));
        let short = Message::new(2, 0, types::WINDOW_ACK_SIZE, 0, Bytes::from_static(&[1, 2]));
        assert!(Control::parse(&short).is_err());
    }
}
