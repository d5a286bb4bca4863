//! A bz2 chunk decoded as Cinder's restore decodes it: Python's
//! `bz2.decompress`, which reads stream after stream:
//!
//! - the first stream must be whole and valid (else it raises);
//! - after it, each further stream that is whole is part of the chunk (its
//!   bytes follow the first's: a chunk with a second stream is longer than
//!   the metadata says);
//! - a further stream cut off before its end raises `ValueError` ("Compressed
//!   data ended before the end-of-stream marker was reached"): the restore
//!   fails;
//! - a further stream libbz2 calls damaged (not a bzip2 header, a bad
//!   block, a bad CRC) ends the chunk there, silently: it and whatever
//!   follows are ignored.
//!
//! libbz2 hands out a block's bytes before it checks the block's CRC, so a
//! further stream is first decoded to its end with its bytes thrown away,
//! to learn its fate; only a whole one is then read again (the file is
//! seekable) and its bytes given out. Memory stays flat; a chunk Cinder
//! wrote (one stream) is read once.

use bzip2::{Decompress, Error, Status};
use std::io::{self, BufRead, Read, Seek, SeekFrom};

/// The fate of a stream after the first.
enum Fate {
    /// Whole: read it again and give its bytes out.
    Whole,
    /// Damaged: Python stops there and ignores the rest.
    Damaged,
    /// Cut off before its end: Python raises.
    Cut,
}

fn stuck() -> io::Error {
    io::Error::other("libbz2 took no input and gave no output")
}

/// Reads the concatenated bytes Python's `bz2.decompress` would return.
pub struct PyBz2<R> {
    inner: R,
    d: Decompress,
    /// Which stream is being read (0: the first).
    stream: u32,
    done: bool,
}

impl<R: BufRead + Seek> PyBz2<R> {
    pub fn new(inner: R) -> Self {
        PyBz2 {
            inner,
            d: Decompress::new(false),
            stream: 0,
            done: false,
        }
    }

    /// Decode the next stream to its end, bytes thrown away.
    fn fate(&mut self) -> io::Result<Fate> {
        let mut d = Decompress::new(false);
        let mut scratch = vec![0u8; 1 << 16];
        loop {
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let (before_in, before_out) = (d.total_in(), d.total_out());
            let r = d.decompress(input, &mut scratch);
            let used = (d.total_in() - before_in) as usize;
            self.inner.consume(used);
            match r {
                Ok(Status::StreamEnd) => return Ok(Fate::Whole),
                Ok(Status::MemNeeded) => return Err(io::Error::other("libbz2 ran out of memory")),
                Ok(_) if used == 0 && d.total_out() == before_out => {
                    return if eof { Ok(Fate::Cut) } else { Err(stuck()) };
                }
                Ok(_) => {}
                Err(Error::Data | Error::DataMagic) => return Ok(Fate::Damaged),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }

    /// After a stream's end: what Python does with the rest.
    fn next_stream(&mut self) -> io::Result<()> {
        if self.inner.fill_buf()?.is_empty() {
            self.done = true;
            return Ok(());
        }
        let at = self.inner.stream_position()?;
        self.stream += 1;
        match self.fate()? {
            Fate::Whole => {
                self.inner.seek(SeekFrom::Start(at))?;
                self.d = Decompress::new(false);
                Ok(())
            }
            Fate::Damaged => {
                self.done = true;
                Ok(())
            }
            Fate::Cut => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "bzip2 stream {} of the chunk (at byte {at} of the file) is cut off before its \
                     end: Python's bz2.decompress, which Cinder's restore uses, raises \"Compressed \
                     data ended before the end-of-stream marker was reached\"",
                    self.stream + 1
                ),
            )),
        }
    }
}

impl<R: BufRead + Seek> Read for PyBz2<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let (before_in, before_out) = (self.d.total_in(), self.d.total_out());
            let r = self.d.decompress(input, buf);
            let used = (self.d.total_in() - before_in) as usize;
            let out = (self.d.total_out() - before_out) as usize;
            self.inner.consume(used);
            match r {
                Ok(Status::StreamEnd) => {
                    // A later stream is known whole (see `fate`); the
                    // first one is checked here.
                    self.next_stream()?;
                    if out > 0 {
                        return Ok(out);
                    }
                }
                Ok(Status::MemNeeded) => return Err(io::Error::other("libbz2 ran out of memory")),
                Ok(_) if out > 0 => return Ok(out),
                // An empty file: Python's loop never starts (no bytes).
                Ok(_) if eof && self.stream == 0 && self.d.total_in() == 0 => return Ok(0),
                Ok(_) if eof && used == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the bzip2 stream is cut off before its end",
                    ));
                }
                Ok(_) if used == 0 => return Err(stuck()),
                Ok(_) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bzip2: {e}"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bzip2::read::BzEncoder::new(data, bzip2::Compression::best())
            .read_to_end(&mut out)
            .expect("compress");
        out
    }

    fn py(data: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        PyBz2::new(io::Cursor::new(data))
            .read_to_end(&mut out)
            .map(|_| out)
            .map_err(|e| e.to_string())
    }

    // Each case is what CPython 3's bz2.decompress returns for it.
    #[test]
    fn streams_after_the_first_as_python_reads_them() {
        let (a, b) = (vec![b'A'; 1000], vec![b'B'; 500]);
        let (sa, sb) = (bz(&a), bz(&b));
        assert_eq!(py(sa.clone()), Ok(a.clone()));
        let whole = [sa.clone(), sb.clone()].concat();
        assert_eq!(py(whole), Ok([a.clone(), b.clone()].concat()));
        let cut = [sa.clone(), sb[..20].to_vec()].concat();
        assert!(py(cut).unwrap_err().contains("cut off"));
        for junk in [
            &b"garbage"[..],
            b"\n",
            b"\0\0\0",
            b"BZh0",
            b"BZh91AY&SYxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(py([sa.clone(), junk.to_vec()].concat()), Ok(a.clone()));
        }
        for cut in [&b"B"[..], b"BZ", b"BZh9", b"BZh91AY&SY"] {
            assert!(py([sa.clone(), cut.to_vec()].concat()).is_err());
        }
        // A damaged second stream is ignored, whole: even the bytes libbz2
        // gives out before it finds the bad CRC.
        let mut bad = sb.clone();
        let n = bad.len();
        bad[n - 7] ^= 0x55;
        assert_eq!(py([sa.clone(), bad.clone()].concat()), Ok(a.clone()));
        // … and so is whatever follows it.
        assert_eq!(py([sa.clone(), bad, sb.clone()].concat()), Ok(a.clone()));
        // The first stream must be whole and valid.
        assert!(py(sa[..sa.len() - 3].to_vec()).is_err());
        assert!(py(b"garbage".to_vec()).is_err());
        assert_eq!(py(Vec::new()), Ok(Vec::new()));
    }
}
