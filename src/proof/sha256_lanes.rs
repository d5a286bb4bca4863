//! SHA-256 of several equal-length messages at once.
//!
//! With the x86 SHA extensions one message is bound by the latency of
//! `sha256rnds2` (each round needs the one before), which leaves the unit
//! idle most of the time; independent messages interleaved with it fill
//! those cycles. The hash blocks of a chunk are many equal-length
//! messages, so verify and restore hash them four at a time: 1.8x the
//! rate of one at a time on the machine this was measured on (`cargo bench
//! --bench sha`); six or eight run out of registers.
//!
//! Without the extensions, or where lengths differ, this is `sha2`, one
//! message at a time. Tests compare both with `sha2` at every padding
//! boundary.

use sha2::{Digest, Sha256};

/// Hash every message of `msgs` into `out` (same length), several at a
/// time where their lengths agree.
pub fn digest_many(msgs: &[&[u8]], out: &mut [[u8; 32]]) {
    debug_assert_eq!(msgs.len(), out.len());
    let n = msgs.len().min(out.len());
    let (msgs, out) = (&msgs[..n], &mut out[..n]);
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        let mut i = 0;
        while i < n {
            // The widest group of equal lengths from here, at most LANES.
            let len = msgs[i].len();
            let k = msgs[i..(i + LANES).min(n)]
                .iter()
                .take_while(|m| m.len() == len)
                .count();
            let m = &msgs[i..i + k];
            let o = &mut out[i..i + k];
            // SAFETY: the CPU has the features; the lengths agree.
            unsafe {
                match k {
                    4 => o.copy_from_slice(&x86::lanes::<4>([m[0], m[1], m[2], m[3]])),
                    3 => o.copy_from_slice(&x86::lanes::<3>([m[0], m[1], m[2]])),
                    2 => o.copy_from_slice(&x86::lanes::<2>([m[0], m[1]])),
                    _ => o[0] = Sha256::digest(m[0]).into(),
                }
            }
            i += k.max(1);
        }
        return;
    }
    for (m, o) in msgs.iter().zip(out.iter_mut()) {
        *o = Sha256::digest(m).into();
    }
}

/// Messages hashed at once.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 4; // the match in digest_many has an arm per width

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // lanes walk several arrays in lockstep
mod x86 {
    use std::arch::x86_64::*;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    }

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    /// One lane's state in the register layout the SHA instructions use.
    #[derive(Clone, Copy)]
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load_state(s: &[u32; 8]) -> Lane {
        // SAFETY: unaligned loads of 16 bytes from a 32-byte array.
        let (dcba, efgh) = unsafe {
            (
                _mm_loadu_si128(s.as_ptr().cast()),
                _mm_loadu_si128(s.as_ptr().add(4).cast()),
            )
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        Lane {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
        }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn digest_of(l: Lane) -> [u8; 32] {
        let feba = _mm_shuffle_epi32(l.abef, 0x1B);
        let dchg = _mm_shuffle_epi32(l.cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let mut s = [0u32; 8];
        // SAFETY: unaligned stores of 16 bytes into a 32-byte array.
        unsafe {
            _mm_storeu_si128(s.as_mut_ptr().cast(), dcba);
            _mm_storeu_si128(s.as_mut_ptr().add(4).cast(), hgef);
        }
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(s) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(v0, v1);
        let t2 = _mm_alignr_epi8(v3, v2, 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), v3)
    }

    /// Compress the `count` 64-byte blocks of each message into its lane,
    /// the lanes interleaved.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn compress<const N: usize>(lanes: &mut [Lane; N], m: [&[[u8; 64]]; N], count: usize) {
        let mut st = *lanes;
        for b in 0..count {
            let blk: [&[u8; 64]; N] = std::array::from_fn(|n| &m[n][b]);
            block(&mut st, blk);
        }
        *lanes = st;
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn block<const N: usize>(l: &mut [Lane; N], blk: [&[u8; 64]; N]) {
        let mask = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let load = |blk: &[u8; 64], i: usize| {
            // SAFETY: i < 4, so the 16 bytes read are inside the block.
            _mm_shuffle_epi8(
                unsafe { _mm_loadu_si128(blk.as_ptr().add(16 * i).cast()) },
                mask,
            )
        };
        let saved = *l;
        let mut w: [[__m128i; 4]; N] = std::array::from_fn(|n| {
            [
                load(blk[n], 0),
                load(blk[n], 1),
                load(blk[n], 2),
                load(blk[n], 3),
            ]
        });
        for i in 0..16 {
            let j = i % 4;
            let k = _mm_set_epi32(
                K[4 * i + 3] as i32,
                K[4 * i + 2] as i32,
                K[4 * i + 1] as i32,
                K[4 * i] as i32,
            );
            let mut t = [k; N];
            for n in 0..N {
                if i >= 4 {
                    let v = &mut w[n];
                    v[j] = schedule(v[j], v[(j + 1) % 4], v[(j + 2) % 4], v[(j + 3) % 4]);
                }
                t[n] = _mm_add_epi32(w[n][j], k);
            }
            for n in 0..N {
                l[n].cdgh = _mm_sha256rnds2_epu32(l[n].cdgh, l[n].abef, t[n]);
            }
            for n in 0..N {
                l[n].abef =
                    _mm_sha256rnds2_epu32(l[n].abef, l[n].cdgh, _mm_shuffle_epi32(t[n], 0x0E));
            }
        }
        for n in 0..N {
            l[n].abef = _mm_add_epi32(l[n].abef, saved[n].abef);
            l[n].cdgh = _mm_add_epi32(l[n].cdgh, saved[n].cdgh);
        }
    }

    /// The final block(s) of a message: its tail, 0x80, zeros, the bit length.
    fn tail(msg: &[u8]) -> ([u8; 128], usize) {
        let rest = msg.len() % 64;
        let mut t = [0u8; 128];
        t[..rest].copy_from_slice(&msg[msg.len() - rest..]);
        t[rest] = 0x80;
        let n = if rest < 56 { 64 } else { 128 };
        let bits = (msg.len() as u64).wrapping_mul(8);
        t[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        (t, n)
    }

    /// # Safety
    /// The CPU must have the SHA extensions, SSSE3 and SSE4.1
    /// ([`available`]). The messages must be of equal length (checked).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn lanes<const N: usize>(m: [&[u8]; N]) -> [[u8; 32]; N] {
        let len = m[0].len();
        // Not a memory-safety matter (every access is checked), but a lane
        // of another length would hash wrong: refuse, whatever the build.
        assert!(m.iter().all(|x| x.len() == len), "lanes of unequal length");
        let mut l = [load_state(&H0); N];
        let whole: [&[[u8; 64]]; N] = std::array::from_fn(|n| m[n].as_chunks::<64>().0);
        compress(&mut l, whole, len / 64);
        let tails: [([u8; 128], usize); N] = std::array::from_fn(|n| tail(m[n]));
        let last = tails[0].1;
        let ends: [&[[u8; 64]]; N] =
            std::array::from_fn(|n| tails[n].0[..last].as_chunks::<64>().0);
        compress(&mut l, ends, last / 64);
        std::array::from_fn(|n| digest_of(l[n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn lanes_hash_as_sha2_does_at_every_padding_boundary() {
        let lens = [
            0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096, 32768, 32769,
        ];
        for n in lens {
            // Every group width: 9 = 4 + 4 + 1, 7 = 4 + 3, 6 = 4 + 2.
            for count in [1, 2, 3, 6, 7, 9] {
                let msgs: Vec<Vec<u8>> = (0..count)
                    .map(|k| bytes(n, 1 + k + 16 * n as u64))
                    .collect();
                let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
                let mut out = vec![[0u8; 32]; refs.len()];
                digest_many(&refs, &mut out);
                for (k, (m, o)) in refs.iter().zip(&out).enumerate() {
                    let want = <[u8; 32]>::from(Sha256::digest(m));
                    assert_eq!(*o, want, "len {n}, message {k} of {count}");
                }
            }
        }
    }

    #[test]
    fn unequal_lengths_and_odd_counts_still_hash_each_message() {
        let msgs: Vec<Vec<u8>> = [10, 64, 64, 99, 32768]
            .iter()
            .map(|&n| bytes(n, n as u64))
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut out = vec![[0u8; 32]; refs.len()];
        digest_many(&refs, &mut out);
        for (m, o) in refs.iter().zip(&out) {
            assert_eq!(*o, <[u8; 32]>::from(Sha256::digest(m)));
        }
    }

    #[test]
    fn a_lane_differs_when_its_message_does() {
        let a = bytes(32768, 3);
        let mut b = a.clone();
        b[20000] ^= 1;
        let mut out = [[0u8; 32]; 4];
        digest_many(&[&a, &b, &a, &a], &mut out);
        assert_ne!(out[0], out[1]);
        assert_eq!(out[0], out[2]);
        assert_eq!(out[1], <[u8; 32]>::from(Sha256::digest(&b)));
    }
}
