//! RTP header extensions (RFC 8285): the block written on outgoing packets
//! and the typed values WebRTC uses.
//!
//! | extension | URI | size |
//! |---|---|---|
//! | [`AbsSendTime`] | `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time` | 3 |
//! | [`TransportSequence`] | `http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01` | 2 |
//! | [`PlayoutDelay`] | `http://www.webrtc.org/experiments/rtp-hdrext/playout-delay` | 3 |
//! | [`AbsCaptureTime`] | `http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time` | 8 or 16 |
//!
//! Reading: parse the packet with [`crate::packet::parse`] (which handles
//! both the one-byte and two-byte forms) and pass
//! `header.get_extension(id)` to the type's `read`.

use bytes::BufMut;

use crate::Error;

/// A one-byte-header extension block (RFC 8285 4.2) built for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    buf: [u8; 64],
    len: u8,
}

impl Default for Extensions {
    fn default() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Extensions {
    /// No extensions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds element `id` (1..=14) with 1..=16 bytes of `data`.
    pub fn push(&mut self, id: u8, data: &[u8]) -> Result<&mut Self, Error> {
        if !(1..=14).contains(&id) || data.is_empty() || data.len() > 16 {
            return Err(Error::Extension {
                name: "one-byte element",
                expected: "id 1..=14 and 1..=16 bytes",
                got: data.len(),
            });
        }
        let start = usize::from(self.len);
        let end = start.saturating_add(1).saturating_add(data.len());
        let slot = self.buf.get_mut(start..end).ok_or(Error::TooLarge {
            what: "header extension block",
            len: end,
            max: 64,
        })?;
        if let Some((h, rest)) = slot.split_first_mut() {
            *h = (id << 4) | ((data.len() as u8).saturating_sub(1) & 0x0f);
            rest.copy_from_slice(data);
        }
        self.len = end as u8;
        Ok(self)
    }

    /// Bytes [`Extensions::encode`] writes (profile, length, elements, padding).
    pub fn encoded_len(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            4usize.saturating_add(usize::from(self.len).next_multiple_of(4))
        }
    }

    /// Writes the block.
    pub fn encode(&self, buf: &mut impl BufMut) {
        if self.len == 0 {
            return;
        }
        let padded = usize::from(self.len).next_multiple_of(4);
        buf.put_u16(0xbede);
        buf.put_u16((padded / 4) as u16);
        buf.put_slice(self.buf.get(..usize::from(self.len)).unwrap_or(&[]));
        buf.put_bytes(0, padded.saturating_sub(usize::from(self.len)));
    }
}

fn exact<const N: usize>(
    name: &'static str,
    expected: &'static str,
    b: &[u8],
) -> Result<[u8; N], Error> {
    b.try_into().map_err(|_| Error::Extension {
        name,
        expected,
        got: b.len(),
    })
}

/// abs-send-time: send time as 6.18 fixed-point seconds (24 bits of NTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsSendTime(pub u32);

impl AbsSendTime {
    /// The extension URI for `a=extmap`.
    pub const URI: &'static str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

    /// From a 64-bit NTP timestamp (RFC 3550 4).
    pub fn from_ntp(ntp: u64) -> Self {
        Self(((ntp >> 14) & 0x00ff_ffff) as u32)
    }

    /// The 3 wire bytes.
    pub fn write(&self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }

    /// Parses the 3 wire bytes.
    pub fn read(b: &[u8]) -> Result<Self, Error> {
        let [x, y, z] = exact::<3>("abs-send-time", "3", b)?;
        Ok(Self(u32::from_be_bytes([0, x, y, z])))
    }
}

/// Transport-wide sequence number (transport-cc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportSequence(pub u16);

impl TransportSequence {
    /// The extension URI for `a=extmap`.
    pub const URI: &'static str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

    /// The 2 wire bytes.
    pub fn write(&self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// Parses the 2 wire bytes.
    pub fn read(b: &[u8]) -> Result<Self, Error> {
        Ok(Self(u16::from_be_bytes(exact::<2>(
            "transport-wide-cc",
            "2",
            b,
        )?)))
    }
}

/// playout-delay: minimum and maximum receiver delay in 10 ms units
/// (12 bits each). `PlayoutDelay { min: 0, max: 0 }` asks for no delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutDelay {
    /// Minimum delay, 10 ms units (0..=4095).
    pub min: u16,
    /// Maximum delay, 10 ms units (0..=4095).
    pub max: u16,
}

impl PlayoutDelay {
    /// The extension URI for `a=extmap`.
    pub const URI: &'static str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

    /// The 3 wire bytes (values above 4095 are clamped).
    pub fn write(&self) -> [u8; 3] {
        let min = self.min.min(0x0fff);
        let max = self.max.min(0x0fff);
        [
            (min >> 4) as u8,
            (((min & 0x0f) << 4) | (max >> 8)) as u8,
            (max & 0xff) as u8,
        ]
    }

    /// Parses the 3 wire bytes.
    pub fn read(b: &[u8]) -> Result<Self, Error> {
        let [x, y, z] = exact::<3>("playout-delay", "3", b)?;
        Ok(Self {
            min: (u16::from(x) << 4) | u16::from(y >> 4),
            max: (u16::from(y & 0x0f) << 8) | u16::from(z),
        })
    }
}

/// abs-capture-time: NTP capture time (UQ32.32) and optionally the
/// estimated offset of the capture clock (Q32.32, signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsCaptureTime {
    /// Capture time, 64-bit NTP.
    pub capture_ntp: u64,
    /// Estimated capture clock offset.
    pub clock_offset: Option<i64>,
}

impl AbsCaptureTime {
    /// The extension URI for `a=extmap`.
    pub const URI: &'static str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

    /// The wire bytes (8 or 16); a two-byte-header block is needed for 16.
    pub fn write(&self) -> ([u8; 16], usize) {
        let mut b = [0u8; 16];
        let (t, o) = b.split_at_mut(8);
        t.copy_from_slice(&self.capture_ntp.to_be_bytes());
        match self.clock_offset {
            Some(off) => {
                o.copy_from_slice(&off.to_be_bytes());
                (b, 16)
            }
            None => (b, 8),
        }
    }

    /// Parses 8 or 16 wire bytes.
    pub fn read(b: &[u8]) -> Result<Self, Error> {
        match b.len() {
            8 => Ok(Self {
                capture_ntp: u64::from_be_bytes(exact::<8>("abs-capture-time", "8 or 16", b)?),
                clock_offset: None,
            }),
            16 => {
                let (t, o) = b.split_at(8);
                Ok(Self {
                    capture_ntp: u64::from_be_bytes(exact::<8>("abs-capture-time", "8 or 16", t)?),
                    clock_offset: Some(i64::from_be_bytes(exact::<8>(
                        "abs-capture-time",
                        "8 or 16",
                        o,
                    )?)),
                })
            }
            n => Err(Error::Extension {
                name: "abs-capture-time",
                expected: "8 or 16",
                got: n,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, Payload, parse};
    use bytes::{Bytes, BytesMut};

    #[test]
    fn write_then_read_through_rtc_parser() {
        let mut e = Extensions::new();
        let ast = AbsSendTime::from_ntp(0x0001_2345_8000_0000);
        let (act, act_len) = AbsCaptureTime {
            capture_ntp: 0xe000_0001_8000_0000,
            clock_offset: Some(-5),
        }
        .write();
        e.push(1, &ast.write()).unwrap();
        e.push(3, &TransportSequence(0xabcd).write()).unwrap();
        e.push(6, &PlayoutDelay { min: 0, max: 4095 }.write())
            .unwrap();
        e.push(7, &act[..act_len]).unwrap();
        assert!(e.push(15, &[1]).is_err());
        let p = Packet {
            payload: Payload::from_bytes(Bytes::from_static(b"x")),
            ..Default::default()
        };
        let mut b = BytesMut::new();
        p.encode(&e, &mut b);
        assert_eq!(b.len(), p.encoded_len(&e));
        let r = parse(&b.freeze()).unwrap();
        let h = &r.header;
        assert_eq!(
            AbsSendTime::read(&h.get_extension(1).unwrap()).unwrap(),
            ast
        );
        // 6.18 fixed point: 0x12345.8 s -> seconds mod 64 = 5, fraction .5.
        assert_eq!(ast.0, (5 << 18) | (1 << 17));
        assert_eq!(
            TransportSequence::read(&h.get_extension(3).unwrap())
                .unwrap()
                .0,
            0xabcd
        );
        assert_eq!(
            PlayoutDelay::read(&h.get_extension(6).unwrap()).unwrap(),
            PlayoutDelay { min: 0, max: 4095 }
        );
        let c = AbsCaptureTime::read(&h.get_extension(7).unwrap()).unwrap();
        assert_eq!(c.clock_offset, Some(-5));
        assert_eq!(&r.payload[..], b"x");
        assert!(AbsSendTime::read(&[1, 2]).is_err());
        assert!(AbsCaptureTime::read(&[0; 9]).is_err());
    }

    #[test]
    fn playout_delay_bits() {
        // min 0x123, max 0x456 -> 12 | 34 56... packed as 0x12 0x34 0x56.
        let d = PlayoutDelay {
            min: 0x123,
            max: 0x456,
        };
        assert_eq!(d.write(), [0x12, 0x34, 0x56]);
        assert_eq!(PlayoutDelay::read(&[0x12, 0x34, 0x56]).unwrap(), d);
    }
}
