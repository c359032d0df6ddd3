//! Outgoing RTP packets as header fields plus a borrowed payload.
//!
//! A payload is at most four new bytes (an FU-A indicator and header, an
//! RTX original sequence number) followed by a [`Bytes`] slice of the
//! access unit: packetizing never copies media. [`Packet::encode`] writes
//! the wire form (RFC 3550 5.1) into a caller-owned [`BufMut`];
//! [`Packet::to_rtc`] converts to `rtc-rtp`'s packet type for the WebRTC
//! stack.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::ext::Extensions;

/// Size of the fixed RTP header without CSRCs or extensions (RFC 3550 5.1).
pub const HEADER_LEN: usize = 12;

/// A payload: up to four prefix bytes, then a slice of the media.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    prefix: [u8; 4],
    prefix_len: u8,
    body: Bytes,
}

impl Payload {
    /// A payload that is exactly `body`.
    pub fn from_bytes(body: Bytes) -> Self {
        Self {
            prefix: [0; 4],
            prefix_len: 0,
            body,
        }
    }

    /// `prefix` (at most 4 bytes; longer is cut) followed by `body`.
    pub fn with_prefix(prefix: &[u8], body: Bytes) -> Self {
        let mut p = [0u8; 4];
        let n = prefix.len().min(4);
        for (dst, src) in p.iter_mut().zip(prefix.iter().take(n)) {
            *dst = *src;
        }
        Self {
            prefix: p,
            prefix_len: n as u8,
            body,
        }
    }

    /// Returns this payload with `extra` (at most the remaining prefix
    /// room) put in front, or `None` if the prefix would exceed 4 bytes.
    pub fn prepend(&self, extra: &[u8]) -> Option<Self> {
        let total = extra.len().checked_add(usize::from(self.prefix_len))?;
        if total > 4 {
            return None;
        }
        let mut p = [0u8; 4];
        for (dst, src) in p.iter_mut().zip(extra.iter().chain(self.prefix().iter())) {
            *dst = *src;
        }
        Some(Self {
            prefix: p,
            prefix_len: total as u8,
            body: self.body.clone(),
        })
    }

    /// The new bytes before the media slice.
    pub fn prefix(&self) -> &[u8] {
        self.prefix
            .get(..usize::from(self.prefix_len))
            .unwrap_or(&[])
    }

    /// The media slice (shares the access unit's allocation).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Total payload length.
    pub fn len(&self) -> usize {
        self.body.len().saturating_add(usize::from(self.prefix_len))
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as one contiguous [`Bytes`]: free when there is no
    /// prefix, one copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        if self.prefix_len == 0 {
            return self.body.clone();
        }
        let mut b = BytesMut::with_capacity(self.len());
        b.put_slice(self.prefix());
        b.put_slice(&self.body);
        b.freeze()
    }

    /// The same payload as one contiguous buffer (one copy when it has a
    /// prefix): do it once before fanning a packet out to many receivers,
    /// so that each [`Payload::to_bytes`] after it is a reference count.
    pub fn contiguous(&self) -> Payload {
        if self.prefix_len == 0 {
            return self.clone();
        }
        Payload::from_bytes(self.to_bytes())
    }

    /// The payload as a [`Buf`] chain (prefix, then body) without copying.
    pub fn as_buf(&self) -> impl Buf + '_ {
        self.prefix().chain(&self.body[..])
    }
}

/// One outgoing RTP packet (no CSRCs; extensions are added at encode time
/// because they differ per receiver).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// Marker bit: last packet of an access unit (video).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp in the clock of the payload format.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload.
    pub payload: Payload,
}

impl Packet {
    /// Bytes [`Packet::encode`] writes with these extensions.
    pub fn encoded_len(&self, ext: &Extensions) -> usize {
        HEADER_LEN
            .saturating_add(ext.encoded_len())
            .saturating_add(self.payload.len())
    }

    /// Writes the packet (RFC 3550 5.1, extensions in the RFC 8285 one-byte
    /// form) into `buf`. The caller sizes `buf` (see [`Packet::encoded_len`]);
    /// a `BytesMut` grows on its own.
    pub fn encode(&self, ext: &Extensions, buf: &mut impl BufMut) {
        let x = if ext.is_empty() { 0 } else { 0x10 };
        buf.put_u8(0x80 | x);
        buf.put_u8((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        buf.put_u16(self.sequence_number);
        buf.put_u32(self.timestamp);
        buf.put_u32(self.ssrc);
        ext.encode(buf);
        buf.put_slice(self.payload.prefix());
        buf.put_slice(&self.payload.body);
    }

    /// Converts to `rtc-rtp`'s packet (what the `rtc` WebRTC stack sends).
    /// Copies the payload only when it has prefix bytes (FU-A, RTX).
    pub fn to_rtc(&self) -> rtc_rtp::packet::Packet {
        rtc_rtp::packet::Packet {
            header: rtc_rtp::header::Header {
                version: 2,
                marker: self.marker,
                payload_type: self.payload_type,
                sequence_number: self.sequence_number,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: self.payload.to_bytes(),
        }
    }
}

/// Parses one RTP packet (RFC 3550 5.1) with `rtc-rtp`; the payload shares
/// `data`'s allocation.
pub fn parse(data: &Bytes) -> Result<rtc_rtp::packet::Packet, crate::Error> {
    use rtc_shared::marshal::Unmarshal;
    let mut b = data.clone();
    Ok(rtc_rtp::packet::Packet::unmarshal(&mut b)?)
}

/// Whether `a` comes after `b` in sequence-number order (RFC 3550 A.1
/// wrap-around).
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Extends 16-bit sequence numbers to 64 bits across wrap-arounds.
#[derive(Debug, Clone, Default)]
pub struct SeqUnwrapper {
    last: Option<u64>,
}

impl SeqUnwrapper {
    /// The extended value of `seq`, nearest to the last one returned.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => u64::from(seq).wrapping_add(1 << 16),
            Some(last) => {
                let diff = seq.wrapping_sub(last as u16);
                if diff < 0x8000 {
                    last.wrapping_add(u64::from(diff))
                } else {
                    let back = 0x1_0000u64.wrapping_sub(u64::from(diff));
                    last.saturating_sub(back)
                }
            }
        };
        match self.last {
            Some(l) if l >= ext => {}
            _ => self.last = Some(ext),
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_rtc_marshal() {
        use rtc_shared::marshal::Marshal;
        let p = Packet {
            marker: true,
            payload_type: 96,
            sequence_number: 0xfffe,
            timestamp: 0x1234_5678,
            ssrc: 0xdead_beef,
            payload: Payload::with_prefix(&[0x7c, 0x85], Bytes::from_static(b"abcdef")),
        };
        let mut ours = BytesMut::new();
        p.encode(&Extensions::new(), &mut ours);
        assert_eq!(ours.len(), p.encoded_len(&Extensions::new()));
        let theirs = p.to_rtc().marshal().unwrap();
        assert_eq!(&ours[..], &theirs[..]);
        let back = parse(&ours.freeze()).unwrap();
        assert_eq!(back.header.sequence_number, 0xfffe);
        assert_eq!(&back.payload[..], b"\x7c\x85abcdef");
    }

    #[test]
    fn unwrap_crosses_wrap() {
        let mut u = SeqUnwrapper::default();
        let a = u.unwrap(65534);
        let b = u.unwrap(1);
        assert_eq!(b - a, 3);
        let c = u.unwrap(65535);
        assert_eq!(b - c, 2);
        assert!(seq_newer(1, 65535));
        assert!(!seq_newer(65535, 1));
    }
}
