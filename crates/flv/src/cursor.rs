//! A bounds-checked reader over a byte slice.

use crate::Error;

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, what }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(Error::UnexpectedEnd(self.what))?;
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?
            .try_into()
            .map_err(|_| Error::UnexpectedEnd(self.what))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        let [b] = self.array()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Signed 24-bit big-endian (composition time).
    pub(crate) fn i24(&mut self) -> Result<i32, Error> {
        let [a, b, c] = self.array()?;
        Ok(i32::from_be_bytes([a, b, c, 0]) >> 8)
    }
}
