//! XDR (RFC 4506), by hand: the few types the read-only subset needs.
//!
//! Every length read from the wire is checked against what remains and
//! against the caller's bound before anything is allocated or sliced.

use super::NfsError;

/// Builds the XDR body of a call.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder::default()
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u32(u32::from(v))
    }
    /// Fixed-length opaque (no length word), padded to 4 bytes.
    pub fn fixed(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        let pad = (4 - data.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self
    }
    /// Variable-length opaque or string: length word, bytes, padding.
    /// Callers pass data bounded far below 4 GiB (names, handles).
    pub fn opaque(&mut self, data: &[u8]) -> &mut Self {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.fixed(data)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Reads XDR from a reply body; every read is bounds-checked.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    fn short(&self, what: &'static str) -> NfsError {
        NfsError::Garbled {
            what,
            reason: format!("the reply ends at byte {} of {}", self.pos, self.buf.len()),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], NfsError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.short(what))?;
        self.pos = end;
        Ok(s)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, NfsError> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, NfsError> {
        let hi = u64::from(self.u32(what)?);
        let lo = u64::from(self.u32(what)?);
        Ok((hi << 32) | lo)
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, NfsError> {
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(NfsError::Garbled {
                what,
                reason: format!("{v} is not a boolean"),
            }),
        }
    }

    /// Fixed-length opaque of `n` bytes (plus padding).
    pub fn fixed(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], NfsError> {
        let data = self.take(n, what)?;
        let pad = (4 - n % 4) % 4;
        self.take(pad, what)?;
        Ok(data)
    }

    /// Variable-length opaque of at most `max` bytes.
    pub fn opaque(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], NfsError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(NfsError::Garbled {
                what,
                reason: format!("a length of {len} bytes, more than the {max} allowed"),
            });
        }
        self.fixed(len, what)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let mut e = Encoder::new();
        e.u32(7).u64(0x1_0000_0002).bool(true).opaque(b"abcde");
        assert_eq!(e.len(), 4 + 8 + 4 + 4 + 8);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u32("a").unwrap(), 7);
        assert_eq!(d.u64("b").unwrap(), 0x1_0000_0002);
        assert!(d.bool("c").unwrap());
        assert_eq!(d.opaque(64, "d").unwrap(), b"abcde");
        assert_eq!(d.remaining(), 0);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // A length word of 4 GiB - 1 with nothing behind it.
        let bytes = [0xff, 0xff, 0xff, 0xff];
        assert!(Decoder::new(&bytes).opaque(usize::MAX, "x").is_err());
        assert!(Decoder::new(&bytes).opaque(64, "x").is_err());
        // A length within the bound but past the end of the reply.
        let bytes = [0, 0, 0, 8, 1, 2, 3, 4];
        assert!(Decoder::new(&bytes).opaque(64, "x").is_err());
        // Missing padding.
        let bytes = [0, 0, 0, 1, 9];
        assert!(Decoder::new(&bytes).opaque(64, "x").is_err());
        // Not a boolean.
        assert!(Decoder::new(&[0, 0, 0, 2]).bool("x").is_err());
        // Short reads.
        assert!(Decoder::new(&[0, 0, 0]).u32("x").is_err());
        assert!(Decoder::new(&[0, 0, 0, 0, 0]).u64("x").is_err());
    }
}
