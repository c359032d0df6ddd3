//! RFC 4571 framing, for ICE-TCP (RFC 6544 3): each datagram on a TCP
//! connection is preceded by its length, a 16-bit big-endian number.
//!
//! Sans-IO: the caller reads bytes into [`Deframer::buffer`] and takes
//! whole datagrams out with [`Deframer::next_frame`]; [`frame`] makes the
//! bytes to write for one datagram.

use bytes::{Buf, BufMut, BytesMut};

/// A frame longer than the limit given to [`Deframer::new`]: the
/// connection is not ours, or it is hostile; close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("RFC 4571 frame of {len} bytes (more than {max}); not an ICE-TCP peer")]
pub struct FrameTooLarge {
    /// The announced length.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// Splits a TCP byte stream into the datagrams it carries, holding at most
/// one frame (plus what one read brings) in memory.
#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    max: usize,
}

impl Deframer {
    /// Takes frames of up to `max` bytes.
    pub fn new(max: usize) -> Deframer {
        Deframer {
            buf: BytesMut::with_capacity(max.saturating_add(2)),
            max,
        }
    }

    /// The buffer to read into (append only).
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next whole datagram, `None` until one has arrived, or
    /// [`FrameTooLarge`].
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameTooLarge> {
        let Some(&[hi, lo]) = self.buf.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > self.max {
            return Err(FrameTooLarge { len, max: self.max });
        }
        if self.buf.len() < len.saturating_add(2) {
            return Ok(None);
        }
        self.buf.advance(2);
        Ok(Some(self.buf.split_to(len)))
    }
}

/// One datagram, framed; `None` when it is longer than 65,535 bytes.
pub fn frame(datagram: &[u8]) -> Option<BytesMut> {
    let len = u16::try_from(datagram.len()).ok()?;
    let mut out = BytesMut::with_capacity(datagram.len().saturating_add(2));
    out.put_u16(len);
    out.put_slice(datagram);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_packed_in_one() {
        let mut d = Deframer::new(2048);
        let a = frame(b"hello").unwrap();
        let b = frame(&[7u8; 1200]).unwrap();
        let mut wire = a.to_vec();
        wire.extend_from_slice(&b);
        // One byte at a time: nothing comes out before a frame is whole.
        let mut out = Vec::new();
        for byte in &wire {
            d.buffer().put_u8(*byte);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][..], b"hello");
        assert_eq!(&out[1][..], &[7u8; 1200][..]);
        // Both in one read.
        d.buffer().put_slice(&wire);
        assert_eq!(&d.next_frame().unwrap().unwrap()[..], b"hello");
        assert_eq!(d.next_frame().unwrap().unwrap().len(), 1200);
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn an_oversized_frame_is_an_error() {
        let mut d = Deframer::new(2048);
        d.buffer().put_u16(4000);
        assert_eq!(
            d.next_frame(),
            Err(FrameTooLarge {
                len: 4000,
                max: 2048
            })
        );
        // An empty frame is a frame.
        let mut d = Deframer::new(2048);
        d.buffer().put_u16(0);
        assert_eq!(d.next_frame().unwrap().map(|f| f.len()), Some(0));
        assert!(frame(&vec![0u8; 70_000]).is_none());
    }
}
