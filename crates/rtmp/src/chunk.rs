//! The chunk stream (Adobe RTMP 1.0 section 5.3): messages split into
//! chunks of at most the negotiated chunk size, interleaved over chunk
//! streams, with compressed headers.
//!
//! [`Decoder`] and [`Encoder`] follow the framing-codec shape of this
//! project: `decode(&mut BytesMut) -> Result<Option<Message>, Error>` and
//! `encode(&Message, &mut BytesMut)`. Both apply Set Chunk Size messages
//! they pass through, and the decoder applies Abort, because the chunk
//! stream cannot be read correctly otherwise.
//!
//! Extended timestamps on format-3 chunks: the spec (5.3.1.3) puts the
//! 4-byte field on every chunk whose stream last used it; some peers omit it
//! on continuation chunks. The decoder accepts both: on a format-3 chunk it
//! consumes the field only when it repeats the stored value. The encoder
//! always writes it, as the spec says.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;
use crate::message::types;

/// The chunk size both sides start with (5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The largest chunk size (31 bits, 5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// The chunk stream for protocol control messages (5.3.1.1, 5.4).
pub const CONTROL_CSID: u32 = 2;
const EXT_TS: u32 = 0x00ff_ffff;

/// One RTMP message (section 6.1), with the chunk stream it travels on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream id, 2 to 65599. On decode: where the message arrived.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (see [`crate::message::types`]).
    pub type_id: u8,
    /// Message stream id (0 for control and connection-level commands).
    pub stream_id: u32,
    /// The message body, one allocation.
    pub payload: Bytes,
}

impl Message {
    /// A message; see the field docs.
    pub fn new(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: Bytes) -> Self {
        Self {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload,
        }
    }
}

/// Decoder limits, checked before anything is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body accepted (default 16 MiB; a 4K keyframe is a
    /// few MiB).
    pub max_message_len: u32,
    /// Most chunk streams tracked at once (default 64; real clients use 2
    /// to 8).
    pub max_chunk_streams: usize,
    /// Most bytes held in partially received messages (default 64 MiB).
    pub max_buffered: usize,
}

impl Limits {
    /// Small limits for a connection not yet authorised (before its
    /// publish or play is accepted): commands only, a few chunk streams.
    pub const PRE_AUTH: Limits = Limits {
        max_message_len: 64 << 10,
        max_chunk_streams: 8,
        max_buffered: 256 << 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: 16 << 20,
            max_chunk_streams: 64,
            max_buffered: 64 << 20,
        }
    }
}

#[derive(Debug)]
struct RecvStream {
    csid: u32,
    timestamp: u32,
    /// What a format-3 header starting a new message adds (the last
    /// timestamp field, as ffmpeg and librtmp do).
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// The last format 0-2 header carried an extended timestamp.
    ext: bool,
    ext_value: u32,
    partial: Option<BytesMut>,
}

/// Reads messages from a chunk stream.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    chunk_size: u32,
    streams: Vec<RecvStream>,
    last: usize,
    buffered: usize,
    consumed: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// Reads `N` big-endian bytes at `at` as a number.
fn be(buf: &[u8], at: usize, n: usize) -> u32 {
    buf.iter()
        .skip(at)
        .take(n)
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
}

impl Decoder {
    /// A decoder with the default chunk size (128) and the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            last: 0,
            buffered: 0,
            consumed: 0,
        }
    }

    /// Replaces the limits (checked for each message that starts after).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Total bytes consumed from the input so far (for Acknowledgement,
    /// 5.4.3; the caller adds the handshake's bytes if it counts them).
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes held in partially received messages.
    pub fn bytes_buffered(&self) -> usize {
        self.buffered
    }

    fn find(&mut self, csid: u32) -> Option<usize> {
        if self.streams.get(self.last).is_some_and(|s| s.csid == csid) {
            return Some(self.last);
        }
        let i = self.streams.iter().position(|s| s.csid == csid)?;
        self.last = i;
        Some(i)
    }

    /// Decodes the next complete message from `src`, consuming the chunks
    /// it read. `Ok(None)`: more bytes are needed (everything that could be
    /// used was consumed). Errors are final: the stream cannot be resynced.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        loop {
            let Some(&b0) = src.first() else {
                return Ok(None);
            };
            let fmt = b0 >> 6;
            let (basic_len, csid) = match b0 & 0x3f {
                0 => match src.get(1) {
                    Some(&b) => (2usize, u32::from(b).wrapping_add(64)),
                    None => return Ok(None),
                },
                1 => match src.get(1..3) {
                    Some(&[lo, hi]) => {
                        (3, u32::from(u16::from_le_bytes([lo, hi])).wrapping_add(64))
                    }
                    _ => return Ok(None),
                },
                n => (1, u32::from(n)),
            };
            let mh_len: usize = match fmt {
                0 => 11,
                1 => 7,
                2 => 3,
                _ => 0,
            };
            let idx = self.find(csid);
            let prev = idx.and_then(|i| self.streams.get(i));
            if fmt != 0 && prev.is_none() {
                return Err(Error::NoPreviousHeader { csid, fmt });
            }
            let mut hdr_len = basic_len.wrapping_add(mh_len);
            let Some(hdr) = src.get(basic_len..hdr_len) else {
                return Ok(None);
            };
            let ts_field = if fmt <= 2 { be(hdr, 0, 3) } else { 0 };
            let (len, type_id) = if fmt <= 1 {
                (be(hdr, 3, 3), hdr.get(6).copied().unwrap_or(0))
            } else {
                prev.map_or((0, 0), |p| (p.len, p.type_id))
            };
            let stream_id = if fmt == 0 {
                u32::from_le_bytes([
                    hdr.get(7).copied().unwrap_or(0),
                    hdr.get(8).copied().unwrap_or(0),
                    hdr.get(9).copied().unwrap_or(0),
                    hdr.get(10).copied().unwrap_or(0),
                ])
            } else {
                prev.map_or(0, |p| p.stream_id)
            };
            let continuing = prev.is_some_and(|p| p.partial.is_some());
            // Extended timestamp field.
            let (ext, ext_value) = if fmt <= 2 {
                if ts_field == EXT_TS {
                    let Some(e) = src.get(hdr_len..hdr_len.wrapping_add(4)) else {
                        return Ok(None);
                    };
                    hdr_len = hdr_len.wrapping_add(4);
                    (true, be(e, 0, 4))
                } else {
                    (false, 0)
                }
            } else {
                let (pext, pval) = prev.map_or((false, 0), |p| (p.ext, p.ext_value));
                if pext {
                    match src.get(hdr_len..hdr_len.wrapping_add(4)) {
                        None => return Ok(None),
                        Some(e) if be(e, 0, 4) == pval => hdr_len = hdr_len.wrapping_add(4),
                        Some(_) => {}
                    }
                }
                (pext, pval)
            };
            let field = if ext { ext_value } else { ts_field };
            // A new header while a message is partial: the peer gave up on
            // it without an Abort; start over.
            let starting = fmt != 3 || !continuing;
            if len > self.limits.max_message_len {
                return Err(Error::MessageTooLarge {
                    len,
                    max: self.limits.max_message_len,
                });
            }
            let received = if starting {
                0
            } else {
                prev.and_then(|p| p.partial.as_ref())
                    .map_or(0, BytesMut::len)
            };
            let remaining = (len as usize).saturating_sub(received);
            let n = remaining.min(self.chunk_size as usize);
            if src.len() < hdr_len.saturating_add(n) {
                return Ok(None);
            }
            // The whole chunk is here: commit.
            let idx = match idx {
                Some(i) => i,
                None => {
                    if self.streams.len() >= self.limits.max_chunk_streams {
                        return Err(Error::TooManyChunkStreams(self.limits.max_chunk_streams));
                    }
                    self.streams.push(RecvStream {
                        csid,
                        timestamp: 0,
                        delta: 0,
                        len: 0,
                        type_id: 0,
                        stream_id: 0,
                        ext: false,
                        ext_value: 0,
                        partial: None,
                    });
                    self.last = self.streams.len().saturating_sub(1);
                    self.last
                }
            };
            let Some(st) = self.streams.get_mut(idx) else {
                return Ok(None); // invariant: idx came from find/push
            };
            if starting {
                if let Some(old) = st.partial.take() {
                    self.buffered = self.buffered.saturating_sub(old.capacity());
                }
                match fmt {
                    0 => {
                        st.timestamp = field;
                        st.delta = field;
                    }
                    1 | 2 => {
                        st.timestamp = st.timestamp.wrapping_add(field);
                        st.delta = field;
                    }
                    _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
                }
                st.len = len;
                st.type_id = type_id;
                st.stream_id = stream_id;
                if fmt <= 2 {
                    st.ext = ext;
                    st.ext_value = ext_value;
                }
            }
            if starting
                && n < len as usize
                && let Some(total) = compact_in_place(
                    src,
                    hdr_len,
                    len as usize,
                    csid,
                    ext.then_some(ext_value),
                    self.chunk_size as usize,
                )
            {
                // Every chunk of the message was already here with nothing
                // interleaved: its pieces now sit together after the first
                // header, and the message is split out without a buffer of
                // its own.
                src.advance(hdr_len);
                let payload = src.split_to(len as usize).freeze();
                src.advance(total.saturating_sub(hdr_len).saturating_sub(len as usize));
                self.consumed = self.consumed.wrapping_add(total as u64);
                let msg = Message {
                    csid,
                    timestamp: st.timestamp,
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    payload,
                };
                self.apply_control(&msg)?;
                return Ok(Some(msg));
            }
            src.advance(hdr_len);
            self.consumed = self.consumed.wrapping_add(hdr_len.saturating_add(n) as u64);
            let payload = if starting && n == len as usize {
                // Single-chunk message: no copy at all.
                src.split_to(n).freeze()
            } else {
                let mut partial = match st.partial.take() {
                    Some(p) => p,
                    None => {
                        let want = len as usize;
                        let total = self.buffered.checked_add(want);
                        if total.is_none_or(|t| t > self.limits.max_buffered) {
                            return Err(Error::BufferLimit(self.limits.max_buffered));
                        }
                        self.buffered = self.buffered.saturating_add(want);
                        BytesMut::with_capacity(want)
                    }
                };
                partial.extend_from_slice(src.get(..n).unwrap_or_default());
                src.advance(n);
                if partial.len() < len as usize {
                    st.partial = Some(partial);
                    continue;
                }
                self.buffered = self.buffered.saturating_sub(partial.capacity());
                partial.freeze()
            };
            let msg = Message {
                csid,
                timestamp: st.timestamp,
                type_id: st.type_id,
                stream_id: st.stream_id,
                payload,
            };
            self.apply_control(&msg)?;
            return Ok(Some(msg));
        }
    }

    fn apply_control(&mut self, msg: &Message) -> Result<(), Error> {
        match msg.type_id {
            types::SET_CHUNK_SIZE => {
                let size = read_u32(&msg.payload, "set chunk size")?;
                if size == 0 || size > MAX_CHUNK_SIZE {
                    return Err(Error::InvalidChunkSize(size));
                }
                self.chunk_size = size;
            }
            types::ABORT => {
                let csid = read_u32(&msg.payload, "abort")?;
                if let Some(i) = self.find(csid)
                    && let Some(st) = self.streams.get_mut(i)
                    && let Some(p) = st.partial.take()
                {
                    self.buffered = self.buffered.saturating_sub(p.capacity());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The format-3 basic header of `csid` (5.3.1.1).
fn fmt3_header(csid: u32) -> ([u8; 3], usize) {
    if csid < 64 {
        ([0xc0 | csid as u8, 0, 0], 1)
    } else if csid < 320 {
        ([0xc0, csid.wrapping_sub(64) as u8, 0], 2)
    } else {
        let v = csid.wrapping_sub(64);
        ([0xc1, v as u8, (v >> 8) as u8], 3)
    }
}

/// When all chunks of a message that starts with a header of `hdr_len`
/// bytes at the front of `src` are present, consecutive and on `csid`,
/// moves their pieces together right after the first header and returns
/// how many bytes of `src` the chunks took. `None` (and `src` untouched)
/// otherwise.
fn compact_in_place(
    src: &mut BytesMut,
    hdr_len: usize,
    len: usize,
    csid: u32,
    ext: Option<u32>,
    chunk_size: usize,
) -> Option<usize> {
    let (basic, basic_len) = fmt3_header(csid);
    let basic = basic.get(..basic_len)?;
    let ext_bytes = ext.map(u32::to_be_bytes);
    // First pass: check the layout without touching anything.
    let first = chunk_size.min(len);
    let mut r = hdr_len.checked_add(first)?;
    let mut left = len.checked_sub(first)?;
    while left > 0 {
        if src.get(r..r.checked_add(basic_len)?)? != basic {
            return None;
        }
        r = r.checked_add(basic_len)?;
        if let Some(e) = &ext_bytes
            && src.get(r..r.checked_add(4)?)? == e
        {
            r = r.checked_add(4)?;
        }
        let piece = chunk_size.min(left);
        r = r.checked_add(piece)?;
        if r > src.len() {
            return None;
        }
        left = left.checked_sub(piece)?;
    }
    // Second pass: move the pieces down over the continuation headers.
    let total = r;
    let mut w = hdr_len.checked_add(first)?;
    let mut r = w;
    let mut left = len.checked_sub(first)?;
    while left > 0 {
        r = r.checked_add(basic_len)?;
        if let Some(e) = &ext_bytes
            && src.get(r..r.checked_add(4)?)? == e
        {
            r = r.checked_add(4)?;
        }
        let piece = chunk_size.min(left);
        let end = r.checked_add(piece)?;
        src.copy_within(r..end, w);
        w = w.checked_add(piece)?;
        r = end;
        left = left.checked_sub(piece)?;
    }
    Some(total)
}

pub(crate) fn read_u32(payload: &[u8], what: &'static str) -> Result<u32, Error> {
    match payload.get(..4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(Error::Malformed {
            what,
            why: "shorter than 4 bytes",
        }),
    }
}

#[derive(Debug, Clone, Copy)]
struct SendStream {
    csid: u32,
    timestamp: u32,
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    last_fmt0: bool,
}

/// Writes messages as chunks.
#[derive(Debug)]
pub struct Encoder {
    chunk_size: u32,
    streams: Vec<SendStream>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

fn put_basic(dst: &mut BytesMut, fmt: u8, csid: u32) {
    let f = fmt << 6;
    if csid < 64 {
        dst.put_u8(f | csid as u8);
    } else if csid < 320 {
        dst.put_u8(f);
        dst.put_u8(csid.wrapping_sub(64) as u8);
    } else {
        let v = csid.wrapping_sub(64);
        dst.put_u8(f | 1);
        dst.put_u8(v as u8);
        dst.put_u8((v >> 8) as u8);
    }
}

fn put_u24(dst: &mut BytesMut, v: u32) {
    dst.put_slice(&v.to_be_bytes()[1..]);
}

impl Encoder {
    /// An encoder with the default chunk size (128).
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes [`Encoder::encode`] would append for `msg` (upper bound: the
    /// largest header is assumed).
    pub fn max_encoded_len(&self, msg: &Message) -> usize {
        let len = msg.payload.len();
        let chunks = len.div_ceil(self.chunk_size as usize).max(1);
        len.saturating_add(18)
            .saturating_add(chunks.saturating_sub(1).saturating_mul(7))
    }

    /// Appends `msg` as chunks. A Set Chunk Size message takes effect for
    /// the messages after it. `msg.csid` must be 2 to 65599 (other values
    /// are clamped into that range) and the payload shorter than 16 MiB
    /// (the 24-bit length field; longer payloads are truncated to fit).
    pub fn encode(&mut self, msg: &Message, dst: &mut BytesMut) {
        let csid = msg.csid.clamp(2, 65599);
        let payload = msg.payload.get(..0xff_ffff).unwrap_or(&msg.payload[..]);
        let len = payload.len() as u32;
        let idx = self.streams.iter().position(|s| s.csid == csid);
        let prev = idx.and_then(|i| self.streams.get(i)).copied();
        let delta = prev.map(|p| msg.timestamp.wrapping_sub(p.timestamp));
        let fmt: u8 = match prev {
            None => 0,
            Some(p) if p.stream_id != msg.stream_id || msg.timestamp < p.timestamp => 0,
            Some(p) if p.len != len || p.type_id != msg.type_id => 1,
            Some(p) if !p.last_fmt0 && delta == Some(p.delta) => 3,
            Some(_) => 2,
        };
        let field = if fmt == 0 {
            msg.timestamp
        } else {
            delta.unwrap_or(0)
        };
        let ext = field >= EXT_TS;
        dst.reserve(self.max_encoded_len(msg));
        put_basic(dst, fmt, csid);
        if fmt <= 2 {
            put_u24(dst, if ext { EXT_TS } else { field });
        }
        if fmt <= 1 {
            put_u24(dst, len);
            dst.put_u8(msg.type_id);
        }
        if fmt == 0 {
            dst.put_u32_le(msg.stream_id);
        }
        if ext {
            dst.put_u32(field);
        }
        let cs = self.chunk_size as usize;
        let mut chunks = payload.chunks(cs);
        if let Some(first) = chunks.next() {
            dst.put_slice(first);
        }
        for c in chunks {
            put_basic(dst, 3, csid);
            if ext {
                dst.put_u32(field);
            }
            dst.put_slice(c);
        }
        let st = SendStream {
            csid,
            timestamp: msg.timestamp,
            delta: field,
            len,
            type_id: msg.type_id,
            stream_id: msg.stream_id,
            last_fmt0: fmt == 0,
        };
        match idx.and_then(|i| self.streams.get_mut(i)) {
            Some(s) => *s = st,
            None => self.streams.push(st),
        }
        if msg.type_id == types::SET_CHUNK_SIZE
            && let Ok(size) = read_u32(&msg.payload, "set chunk size")
            && (1..=MAX_CHUNK_SIZE).contains(&size)
        {
            self.chunk_size = size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(dec: &mut Decoder, buf: &mut BytesMut) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = dec.decode(buf).unwrap() {
            out.push(m);
        }
        out
    }

    fn msg(csid: u32, ts: u32, type_id: u8, sid: u32, payload: &[u8]) -> Message {
        Message::new(csid, ts, type_id, sid, Bytes::copy_from_slice(payload))
    }

    #[test]
    fn spec_example_5_3_2_1_audio_without_message_stream_id_changes() {
        // Adobe RTMP 1.0 5.3.2.1: four 32-byte audio messages on one chunk
        // stream, ts 1000 then +20 each; headers type 0, 2, 3, 3.
        let mut wire = BytesMut::new();
        wire.put_slice(&[
            0x03, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x20, 0x08, 0x01, 0, 0, 0,
        ]);
        wire.put_slice(&[0xaa; 32]);
        wire.put_slice(&[0x83, 0x00, 0x00, 0x14]);
        wire.put_slice(&[0xbb; 32]);
        wire.put_slice(&[0xc3]);
        wire.put_slice(&[0xcc; 32]);
        wire.put_slice(&[0xc3]);
        wire.put_slice(&[0xdd; 32]);
        let mut dec = Decoder::default();
        let msgs = decode_all(&mut dec, &mut wire);
        let ts: Vec<u32> = msgs.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [1000, 1020, 1040, 1060]);
        assert!(msgs.iter().all(|m| m.type_id == 8 && m.stream_id == 1));
        // Our encoder makes the same bytes for the same messages.
        let mut enc = Encoder::new();
        let mut again = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut again);
        }
        let mut dec2 = Decoder::default();
        assert_eq!(decode_all(&mut dec2, &mut again), msgs);
    }

    #[test]
    fn spec_example_5_3_2_2_message_split_in_chunks() {
        // 5.3.2.2: a 307-byte video message at chunk size 128: type 0 then
        // two type 3 chunks.
        let body: Vec<u8> = (0..307u32).map(|i| i as u8).collect();
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        enc.encode(&msg(4, 1000, 9, 1, &body), &mut wire);
        assert_eq!(wire.len(), 12 + 128 + 1 + 128 + 1 + 51);
        assert_eq!(wire[12 + 128], 0xc4);
        let mut dec = Decoder::default();
        let m = dec.decode(&mut wire).unwrap().unwrap();
        assert_eq!(&m.payload[..], &body[..]);
        assert_eq!(dec.bytes_consumed(), 12 + 128 + 1 + 128 + 1 + 51);
    }

    #[test]
    fn whole_and_byte_by_byte_input_agree() {
        // Whole input takes the in-place path, byte by byte the partial
        // buffer path; interleaved chunk streams fall back too.
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        let a: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        enc.encode(&msg(300, 0x0100_0000, 9, 1, &a), &mut wire);
        enc.encode(&msg(4, 5, 8, 1, &a[..300]), &mut wire);
        let mut other = BytesMut::new();
        Encoder::new().encode(&msg(5, 7, 9, 1, &a[..200]), &mut other);
        // Interleave: first chunk of csid 5, then the rest.
        wire.extend_from_slice(&other[..12 + 128]);
        enc.encode(&msg(6, 9, 9, 1, &a[..500]), &mut wire);
        wire.extend_from_slice(&other[12 + 128..]);
        let whole = decode_all(&mut Decoder::default(), &mut wire.clone());
        let mut dec = Decoder::default();
        let mut one = Vec::new();
        let mut buf = BytesMut::new();
        for b in wire.iter() {
            buf.extend_from_slice(&[*b]);
            one.extend(decode_all(&mut dec, &mut buf));
        }
        assert_eq!(whole.len(), 4);
        assert_eq!(whole, one);
        assert_eq!(&whole[0].payload[..], &a[..]);
        assert_eq!(whole[0].timestamp, 0x0100_0000);
        assert_eq!(&whole[3].payload[..], &a[..200]);
    }

    #[test]
    fn basic_header_sizes() {
        for (csid, n) in [
            (2u32, 1usize),
            (63, 1),
            (64, 2),
            (319, 2),
            (320, 3),
            (65599, 3),
        ] {
            let mut wire = BytesMut::new();
            Encoder::new().encode(&msg(csid, 5, 20, 0, b"x"), &mut wire);
            assert_eq!(wire.len(), n + 11 + 1, "csid {csid}");
            let m = Decoder::default().decode(&mut wire).unwrap().unwrap();
            assert_eq!(m.csid, csid);
        }
    }

    #[test]
    fn extended_timestamp_with_and_without_continuation_field() {
        let body = vec![7u8; 300];
        let ts = 0x0100_0000;
        // Spec form (written by our encoder): field on every chunk.
        let mut wire = BytesMut::new();
        Encoder::new().encode(&msg(6, ts, 9, 1, &body), &mut wire);
        assert_eq!(wire.len(), 12 + 4 + 128 + 2 * (1 + 4) + 172);
        let m = Decoder::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!((m.timestamp, m.payload.len()), (ts, 300));
        // Without the field on continuation chunks.
        let mut wire = BytesMut::new();
        wire.put_slice(&[0x06, 0xff, 0xff, 0xff, 0x00, 0x01, 0x2c, 0x09, 1, 0, 0, 0]);
        wire.put_u32(ts);
        wire.put_slice(&body[..128]);
        wire.put_u8(0xc6);
        wire.put_slice(&body[128..256]);
        wire.put_u8(0xc6);
        wire.put_slice(&body[256..]);
        let m = Decoder::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!((m.timestamp, &m.payload[..]), (ts, &body[..]));
    }

    #[test]
    fn set_chunk_size_and_abort_apply() {
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        enc.encode(&msg(2, 0, 1, 0, &4096u32.to_be_bytes()), &mut wire);
        assert_eq!(enc.chunk_size(), 4096);
        enc.encode(&msg(6, 0, 9, 1, &[1; 3000]), &mut wire);
        let mut dec = Decoder::default();
        let msgs = decode_all(&mut dec, &mut wire);
        assert_eq!(dec.chunk_size(), 4096);
        assert_eq!(msgs[1].payload.len(), 3000);

        // Abort: a partial message on csid 6 is dropped.
        let mut wire = BytesMut::new();
        let mut enc = Encoder::new();
        enc.encode(&msg(6, 0, 9, 1, &[1; 200]), &mut wire);
        wire.truncate(12 + 128);
        enc.encode(&msg(2, 0, 2, 0, &6u32.to_be_bytes()), &mut wire);
        let mut dec = Decoder::default();
        let msgs = decode_all(&mut dec, &mut wire);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].type_id, 2);
        assert_eq!(dec.bytes_buffered(), 0);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let mut dec = Decoder::default();
        let mut wire = BytesMut::from(&[0x42, 0, 0, 1][..]);
        assert_eq!(
            dec.decode(&mut wire).unwrap_err(),
            Error::NoPreviousHeader { csid: 2, fmt: 1 }
        );
        let mut wire = BytesMut::new();
        Encoder::new().encode(&msg(2, 0, 1, 0, &0u32.to_be_bytes()), &mut wire);
        assert_eq!(
            Decoder::default().decode(&mut wire).unwrap_err(),
            Error::InvalidChunkSize(0)
        );
        let mut wire = BytesMut::from(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0][..]);
        let limits = Limits {
            max_message_len: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            Decoder::new(limits).decode(&mut wire),
            Err(Error::MessageTooLarge {
                len: 0xff_ffff,
                max: 1000
            })
        ));
        let limits = Limits {
            max_chunk_streams: 2,
            ..Limits::default()
        };
        let mut dec = Decoder::new(limits);
        let mut wire = BytesMut::new();
        for csid in 3..6 {
            Encoder::new().encode(&msg(csid, 0, 9, 1, &[0; 200]), &mut wire);
        }
        let err = loop {
            match dec.decode(&mut wire) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::TooManyChunkStreams(2));
        let limits = Limits {
            max_buffered: 300,
            ..Limits::default()
        };
        let mut dec = Decoder::new(limits);
        let mut wire = BytesMut::new();
        for csid in 3..6 {
            // Only the first chunk of each: three partial messages.
            let mut one = BytesMut::new();
            Encoder::new().encode(&msg(csid, 0, 9, 1, &[0; 200]), &mut one);
            wire.extend_from_slice(&one[..12 + 128]);
        }
        assert_eq!(dec.decode(&mut wire).unwrap_err(), Error::BufferLimit(300));
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            prop_oneof![Just(3u32), Just(4), Just(6), 2u32..400, Just(65599)],
            prop_oneof![0u32..5000, Just(0xff_fffe), Just(0xff_ffff), any::<u32>()],
            prop_oneof![Just(8u8), Just(9), Just(20), Just(18)],
            0u32..3,
            prop::collection::vec(any::<u8>(), 0..700),
        )
            .prop_map(|(csid, ts, ty, sid, p)| Message::new(csid, ts, ty, sid, p.into()))
    }

    proptest! {
        #[test]
        fn round_trip_in_random_splits(
            msgs in prop::collection::vec(arb_message(), 1..30),
            chunk_size in prop_oneof![Just(1u32), Just(128), 1u32..600, Just(4096), Just(65536)],
            splits in prop::collection::vec(1usize..400, 1..50),
        ) {
            let mut enc = Encoder::new();
            let mut wire = BytesMut::new();
            let scs = msg(2, 0, 1, 0, &chunk_size.to_be_bytes());
            enc.encode(&scs, &mut wire);
            // Timestamps go up per chunk stream so headers compress.
            let mut sent = vec![scs];
            let mut clock = std::collections::HashMap::new();
            for mut m in msgs {
                let t: &mut u32 = clock.entry(m.csid).or_insert(0);
                if m.timestamp < 5000 {
                    *t = t.wrapping_add(m.timestamp % 50);
                    m.timestamp = *t;
                }
                enc.encode(&m, &mut wire);
                sent.push(m);
            }
            let total = wire.len() as u64;
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            let mut input = BytesMut::new();
            let mut i = 0;
            while !wire.is_empty() {
                let n = splits[i % splits.len()].min(wire.len());
                i += 1;
                input.extend_from_slice(&wire.split_to(n));
                while let Some(m) = dec.decode(&mut input).unwrap() {
                    got.push(m);
                }
            }
            prop_assert!(input.is_empty());
            prop_assert_eq!(dec.bytes_consumed(), total);
            prop_assert_eq!(dec.bytes_buffered(), 0);
            for (g, s) in got.iter().zip(sent.iter()) {
                prop_assert_eq!(g, &Message { csid: s.csid.clamp(2, 65599), ..s.clone() });
            }
            prop_assert_eq!(got.len(), sent.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut dec = Decoder::default();
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
