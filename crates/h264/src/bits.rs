//! Bit-level reading and writing of RBSP data (H.264 7.2 descriptors `u(n)`,
//! `ue(v)`, `se(v)`; Exp-Golomb codes 9.1).

use crate::Error;

/// Reads bits MSB first from an RBSP (emulation prevention already removed).
/// Every read past the end is [`Error::UnexpectedEnd`].
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_mul(8).saturating_sub(self.pos)
    }

    /// Position in bits.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// One bit, `u(1)`.
    pub fn bit(&mut self) -> Result<bool, Error> {
        let byte = *self.data.get(self.pos / 8).ok_or(Error::UnexpectedEnd)?;
        let bit = byte.rotate_left(((self.pos % 8) as u32).wrapping_add(1)) & 1;
        self.pos = self.pos.saturating_add(1);
        Ok(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number, `u(n)`.
    pub fn bits(&mut self, n: u32) -> Result<u32, Error> {
        if n > 32 {
            return Err(Error::Invalid("bit count above 32"));
        }
        if (n as usize) > self.remaining() {
            return Err(Error::UnexpectedEnd);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).map_err(|_| Error::Invalid("bit count above 32"))
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        if n > self.remaining() {
            return Err(Error::UnexpectedEnd);
        }
        self.pos = self.pos.saturating_add(n);
        Ok(())
    }

    /// An unsigned Exp-Golomb code, `ue(v)` (9.1). Codes longer than 32
    /// bits of value are [`Error::Invalid`].
    pub fn ue(&mut self) -> Result<u32, Error> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros = zeros.saturating_add(1);
            if zeros > 31 {
                return Err(Error::Invalid("exp-golomb code longer than 32 bits"));
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.bits(zeros)?;
        // (1 << zeros) - 1 + rest, computed in u64 so 2^32 - 1 + rest is caught.
        let v = (1u64 << zeros)
            .wrapping_sub(1)
            .wrapping_add(u64::from(rest));
        u32::try_from(v).map_err(|_| Error::Invalid("exp-golomb value above 2^32-1"))
    }

    /// A signed Exp-Golomb code, `se(v)` (9.1.1).
    pub fn se(&mut self) -> Result<i32, Error> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 {
            k.wrapping_add(1) / 2
        } else {
            (k / 2).wrapping_neg()
        };
        i32::try_from(v).map_err(|_| Error::Invalid("signed exp-golomb out of range"))
    }

    /// `ue(v)` that must not exceed `max`; `what` names the field in the error.
    pub fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, Error> {
        let v = self.ue()?;
        if v > max {
            Err(Error::Invalid(what))
        } else {
            Ok(v)
        }
    }

    /// Whether RBSP data remains before the trailing bits (7.2
    /// `more_rbsp_data()`).
    pub fn more_rbsp_data(&self) -> bool {
        let Some(last) = self.data.iter().rposition(|&b| b != 0) else {
            return false;
        };
        let Some(&byte) = self.data.get(last) else {
            return false;
        };
        // The stop bit is the lowest set bit of the last non-zero byte.
        let stop = last
            .saturating_mul(8)
            .saturating_add(7)
            .saturating_sub(byte.trailing_zeros() as usize);
        self.pos < stop
    }
}

/// Writes bits MSB first (for building SEI and test streams).
#[derive(Debug, Default, Clone)]
pub struct BitWriter {
    out: Vec<u8>,
    bits: u8,
    cur: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// One bit.
    pub fn bit(&mut self, b: bool) {
        self.cur = (self.cur << 1) | u8::from(b);
        self.bits = self.bits.wrapping_add(1);
        if self.bits == 8 {
            self.out.push(self.cur);
            self.cur = 0;
            self.bits = 0;
        }
    }

    /// The low `n` bits of `v` (n at most 32).
    pub fn bits(&mut self, n: u32, v: u32) {
        for i in (0..n.min(32)).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// `ue(v)`.
    pub fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64u32.wrapping_sub(x.leading_zeros());
        for _ in 1..len {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((x >> i) & 1 == 1);
        }
    }

    /// `se(v)`.
    pub fn se(&mut self, v: i32) {
        let v = i64::from(v);
        let k = if v > 0 {
            v.wrapping_mul(2).wrapping_sub(1)
        } else {
            v.wrapping_mul(-2)
        };
        // invariant: |i32| * 2 fits u32.
        self.ue(u32::try_from(k).unwrap_or(u32::MAX));
    }

    /// Whether the writer is at a byte boundary.
    pub fn byte_aligned(&self) -> bool {
        self.bits == 0
    }

    /// Appends `rbsp_trailing_bits()` (a one then zeros to the byte boundary)
    /// and returns the bytes.
    pub fn finish_rbsp(mut self) -> Vec<u8> {
        self.bit(true);
        while self.bits != 0 {
            self.bit(false);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_table_9_2() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6, se: 010 -> +1, 011 -> -1
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0011, 0b1000_0000]);
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.ue().unwrap(), 6);
        assert_eq!(r.ue(), Err(Error::UnexpectedEnd));
        let mut r = BitReader::new(&[0b0100_1100]);
        assert_eq!(r.se().unwrap(), 1);
        assert_eq!(r.se().unwrap(), -1);
    }

    #[test]
    fn short_and_overlong_input_errors() {
        assert_eq!(BitReader::new(&[]).bit(), Err(Error::UnexpectedEnd));
        assert_eq!(BitReader::new(&[0xff]).bits(9), Err(Error::UnexpectedEnd));
        assert_eq!(
            BitReader::new(&[0, 0, 0, 0, 0]).ue(),
            Err(Error::Invalid("exp-golomb code longer than 32 bits"))
        );
        assert_eq!(BitReader::new(&[0, 0]).ue(), Err(Error::UnexpectedEnd));
        // 32 zeros are refused, 31 zeros + 32 bits give the largest value.
        let mut max = vec![0u8, 0, 0, 1];
        max.extend([0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(BitReader::new(&max).ue().unwrap(), u32::MAX - 1);
    }

    #[test]
    fn writer_round_trips() {
        let mut w = BitWriter::new();
        let values = [0u32, 1, 2, 3, 7, 255, 65_535, u32::MAX - 1];
        for v in values {
            w.ue(v);
        }
        for v in [0i32, 1, -1, 100, -100, i32::MAX, -i32::MAX] {
            w.se(v);
        }
        w.bits(5, 0b10110);
        let data = w.finish_rbsp();
        let mut r = BitReader::new(&data);
        for v in values {
            assert_eq!(r.ue().unwrap(), v);
        }
        for v in [0i32, 1, -1, 100, -100, i32::MAX, -i32::MAX] {
            assert_eq!(r.se().unwrap(), v);
        }
        assert_eq!(r.bits(5).unwrap(), 0b10110);
        assert!(!r.more_rbsp_data());
    }
}
