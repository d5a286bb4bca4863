//! Hash blocks proven: all-zero blocks by comparison, the others by their
//! sha256, several at a time; the blocks that failed, kept as ranges.

use sha2::{Digest, Sha256};

/// Whether a buffer is all zeros: OR-folds 512-byte runs (vectorised by
/// the compiler), stopping at the first run with a set bit.
pub fn is_zero(b: &[u8]) -> bool {
    b.chunks(512)
        .all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

/// The sha256 of a block of `n` zero bytes (computed once per size and
/// thread: an incremental has thousands of one-block chunks).
pub fn zero_block_sha(n: usize) -> [u8; 32] {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(usize, [u8; 32])>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        if let Some((_, h)) = c.borrow().iter().find(|(k, _)| *k == n) {
            return *h;
        }
        let h: [u8; 32] = Sha256::digest(vec![0u8; n]).into();
        let mut c = c.borrow_mut();
        if c.len() >= 8 {
            c.remove(0);
        }
        c.push((n, h));
        h
    })
}

/// Blocks gathered before they are hashed together: a bound on the
/// memory that gathering takes, whatever the block size (a hostile
/// sha256file may say 1 byte).
pub const HASH_BATCH: usize = 64;

/// A hash block waiting for its proof: (block index, its bytes, the
/// sha256 the sha256file lists for it).
pub type Pending<'a> = (u64, &'a [u8], [u8; 32]);

/// Hash the gathered blocks several at a time (see [`super::sha256_lanes`]):
/// for each, whether its sha256 is the one wanted.
pub fn blocks_match(todo: &[Pending<'_>]) -> Vec<bool> {
    let pieces: Vec<&[u8]> = todo.iter().map(|t| t.1).collect();
    let mut sums = vec![[0u8; 32]; pieces.len()];
    super::sha256_lanes::digest_many(&pieces, &mut sums);
    todo.iter().zip(&sums).map(|(t, got)| t.2 == *got).collect()
}

/// Merge sorted block indexes into inclusive ranges.
pub fn ranges(mut blocks: Vec<u64>) -> Vec<(u64, u64)> {
    blocks.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for b in blocks {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(b) || *end == b => *end = b,
            _ => out.push((b, b)),
        }
    }
    out
}

/// Block indexes that failed, kept as merged ranges (in the order they
/// come, which is ascending within a chunk), at most [`BadBlocks::MAX`]
/// of them: memory stays bounded however much of a chunk is wrong.
#[derive(Debug, Default)]
pub struct BadBlocks {
    ranges: Vec<(u64, u64)>,
    /// Blocks in ranges beyond the first `MAX`.
    pub more: u64,
}

impl BadBlocks {
    pub const MAX: usize = 256;
    pub fn push(&mut self, b: u64) {
        let full = self.ranges.len() >= Self::MAX;
        match self.ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(b) || *end == b => *end = b,
            _ if full => self.more = self.more.saturating_add(1),
            _ => self.ranges.push((b, b)),
        }
    }
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        ranges_merge(&self.ranges)
    }
}

fn ranges_merge(r: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v = r.to_vec();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_block_among_those_hashed_together_is_the_one_blamed() {
        let data: Vec<Vec<u8>> = (0..7u8).map(|k| vec![k + 1; 4096]).collect();
        let mut todo: Vec<Pending<'_>> = data
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u64, d.as_slice(), Sha256::digest(d).into()))
            .collect();
        assert!(blocks_match(&todo).iter().all(|&ok| ok));
        for wrong in [0, 2, 3, 5, 6] {
            let saved = todo[wrong].2;
            todo[wrong].2[7] ^= 1;
            let got = blocks_match(&todo);
            let bad: Vec<usize> = (0..7).filter(|&i| !got[i]).collect();
            assert_eq!(bad, vec![wrong]);
            todo[wrong].2 = saved;
        }
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 100]));
        let mut v = vec![0u8; 100];
        v[99] = 1;
        assert!(!is_zero(&v));
        v[99] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    #[test]
    fn ranges_merge_consecutive_blocks() {
        assert_eq!(ranges(vec![5, 1, 2, 3, 7]), vec![(1, 3), (5, 5), (7, 7)]);
    }
}
