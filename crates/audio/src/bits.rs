//! MSB-first bit reader and writer (the order ISO/IEC 14496-3 uses).

use crate::Error;

/// Reads bits most significant first; every read is bounds-checked.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.total_bits());
    }

    pub(crate) fn total_bits(&self) -> usize {
        self.data.len().saturating_mul(8)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.total_bits().saturating_sub(self.pos)
    }

    /// Reads `n` bits (n <= 32).
    pub(crate) fn read(&mut self, n: u32) -> Result<u32, Error> {
        debug_assert!(n <= 32);
        if (n as usize) > self.remaining() {
            return Err(Error::UnexpectedEnd);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .copied()
                .ok_or(Error::UnexpectedEnd)?;
            let bit = (byte >> (7u32.wrapping_sub((self.pos % 8) as u32))) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos = self.pos.saturating_add(1);
        }
        Ok(v as u32)
    }

    pub(crate) fn read_bool(&mut self) -> Result<bool, Error> {
        Ok(self.read(1)? == 1)
    }

    /// Skips to the next byte boundary (relative to the start of `data`).
    pub(crate) fn align(&mut self) {
        let rem = self.pos % 8;
        if rem != 0 {
            self.seek(self.pos.saturating_add(8usize.wrapping_sub(rem)));
        }
    }

    /// The raw bits from `start` to the current position.
    pub(crate) fn bits_since(&self, start: usize) -> Bits {
        let mut r = BitReader {
            data: self.data,
            pos: start,
        };
        let mut out = Bits::default();
        while r.pos < self.pos {
            let n = self.pos.saturating_sub(r.pos).min(8) as u32;
            // invariant: r.pos < self.pos <= total_bits, so the read is in range.
            let v = r.read(n).unwrap_or(0);
            out.push(v, n);
        }
        out
    }

    /// All bits left, consumed.
    pub(crate) fn take_rest(&mut self) -> Bits {
        let start = self.pos;
        self.pos = self.total_bits();
        self.bits_since(start)
    }
}

/// A run of raw bits kept verbatim so that a builder reproduces its input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when every bit is zero (padding).
    pub fn is_zero(&self) -> bool {
        self.bytes.iter().all(|b| *b == 0)
    }

    fn push(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            let bit = ((v >> i) & 1) as u8;
            let idx = self.len / 8;
            if idx == self.bytes.len() {
                self.bytes.push(0);
            }
            if let Some(b) = self.bytes.get_mut(idx) {
                *b |= bit << 7u32.wrapping_sub((self.len % 8) as u32);
            }
            self.len = self.len.saturating_add(1);
        }
    }

    pub(crate) fn write_to(&self, w: &mut BitWriter) {
        let mut left = self.len;
        for b in &self.bytes {
            let n = left.min(8);
            w.write(u32::from(*b) >> 8usize.wrapping_sub(n), n as u32);
            left = left.saturating_sub(n);
        }
    }
}

/// Writes bits most significant first.
#[derive(Default)]
pub(crate) struct BitWriter {
    bits: Bits,
}

impl BitWriter {
    pub(crate) fn write(&mut self, v: u32, n: u32) {
        self.bits.push(v, n);
    }

    pub(crate) fn write_bool(&mut self, v: bool) {
        self.write(u32::from(v), 1);
    }

    pub(crate) fn align(&mut self) {
        while !self.bits.len.is_multiple_of(8) {
            self.write(0, 1);
        }
    }

    /// The bytes, zero-padded to a byte boundary.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bits.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_round_trip() {
        let data = [0xAB, 0xCD, 0xEF];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read(4).unwrap(), 0xA);
        assert_eq!(r.read(12).unwrap(), 0xBCD);
        assert!(r.read(9).is_err());
        let rest = r.take_rest();
        assert_eq!(rest.len(), 8);
        let mut w = BitWriter::default();
        w.write(0xABC, 12);
        w.write(0xD, 4);
        rest.write_to(&mut w);
        assert_eq!(w.finish(), data);
    }
}
