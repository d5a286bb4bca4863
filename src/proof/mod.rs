//! Proof of a chunk's bytes: read once, decompressed, checked for length
//! and md5, and every hash block against the sha256file (zeros by
//! comparison, the rest by sha256 several at a time). Beneath `check`,
//! `verify` and `restore`, which all prove blocks alike.

pub mod blocks;
mod bz2;
pub mod chunk;
pub mod sha256_lanes;
pub mod stream;

pub use blocks::{BadBlocks, HASH_BATCH, Pending, blocks_match, is_zero, ranges, zero_block_sha};
pub use chunk::{ChunkProof, Proven, prove_chunk};
pub use stream::{ChunkEnd, ChunkSink, StreamError, Streamed, stream_chunk, stream_findings};
