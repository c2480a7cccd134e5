//! CRC32C for the append path: the same checksum as the `crc32c` crate, faster at every record
//! size from 64 B on (docs/PERFORMANCE.md, "CRC32C"; `vault-bench/examples/crc_probe.rs`).
//!
//! The `crc32c` crate computes three interleaved streams only from 768 bytes on; below that it
//! runs one chain of `crc32` instructions, each waiting for the previous one (3 cycles apiece),
//! so a 256 B record cost most of an unsynced append; above it, it joins its streams
//! with table lookups block by block. Here the frame's prefix word and the payload
//! are one stream of 8-byte words, taken in blocks of up to 1024 words (8 KiB); a block of
//! 10 words or more is split into three lanes whose chains run in parallel, lanes a and b are
//! moved to the block's end with a carry-less multiply (PCLMULQDQ) by a constant per distance,
//! both at once, and the two products are folded into the last word of lane c, so the join
//! costs one `crc32` after the multiplies. The lanes are walked with `chunks_exact`, without
//! bounds checks (indexed reads were measurably slower). Short pieces
//! (salt and LSN) skip the crate's alignment handling. Every CPU without SSE4.2 and PCLMULQDQ
//! goes to the `crc32c` crate. Tests check the result against the crate for every length up to
//! 4 KiB at every alignment, around the block boundaries, and proptests for random ones.
//!
//! Terms: the *raw* register is the CRC state without the final inversion
//! (`crc32c(data) = !raw(!0, data)`); in the bit-reflected representation of CRC32C, bit `i` of
//! a 32-bit value is the coefficient of `x^(31-i)`.
// The tables and constants serve the x86_64 path only.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

/// Words per block: longer streams are checksummed a block at a time. The join costs ~10
/// cycles per block, nothing at this size; the table of shift constants grows with it (4 KiB).
const MAX_WORDS: usize = 1024;
/// Below this many words joining the lanes costs more than it saves (`crc_probe`: a 64 B
/// record, 9 words with the prefix, is faster as one chain).
const MIN_WORDS: usize = 10;

/// The CRC32C polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

/// `x^(64·m − 32) mod P` for `m` in `0..=MAX_WORDS` (entry 0 unused): multiplying a raw register
/// by it with a carry-less multiply and reducing the product with `crc32` (see `x86::lanes`)
/// appends `8·m` zero bytes.
const SHIFT: [u32; MAX_WORDS + 1] = shift_table();

const fn shift_table() -> [u32; MAX_WORDS + 1] {
    let mut table = [0u32; MAX_WORDS + 1];
    // x^0, then multiply by x one bit at a time: in the reflected form that is a right shift,
    // folding the x^32 that falls out back in as P.
    let mut v: u32 = 0x8000_0000;
    let mut power = 0;
    let mut m = 1;
    while m <= MAX_WORDS {
        let target = 64 * m - 32;
        while power < target {
            v = if v & 1 == 1 { (v >> 1) ^ POLY } else { v >> 1 };
            power += 1;
        }
        table[m] = v;
        m += 1;
    }
    table
}

/// `crc32c_append(crc, data)`: extends a finished CRC32C over `data`.
#[must_use]
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_hw() {
            // SAFETY: `has_hw` checked that the CPU has SSE4.2 and PCLMULQDQ.
            return unsafe { x86::append(crc, None, data) };
        }
    }
    crc32c::crc32c_append(crc, data)
}

/// `crc32c(prefix.to_le_bytes() ‖ data)`: the checksum of a frame prefix word and a payload.
#[must_use]
pub(crate) fn crc32c_prefixed(prefix: u64, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_hw() {
            // SAFETY: `has_hw` checked that the CPU has SSE4.2 and PCLMULQDQ.
            return unsafe { x86::append(0, Some(prefix), data) };
        }
    }
    crc32c::crc32c_append(crc32c::crc32c(&prefix.to_le_bytes()), data)
}

/// `crc32c_append(crc, a ‖ b)` for two little-endian words: the salt and LSN of a frame.
#[must_use]
pub(crate) fn crc32c_append_words(crc: u32, a: u64, b: u64) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_hw() {
            // SAFETY: `has_hw` checked that the CPU has SSE4.2.
            return unsafe { x86::append_words(crc, a, b) };
        }
    }
    let mut bytes = [0u8; 16];
    bytes[0..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..16].copy_from_slice(&b.to_le_bytes());
    crc32c::crc32c_append(crc, &bytes)
}

#[cfg(target_arch = "x86_64")]
fn has_hw() -> bool {
    // Both checks read a cached CPUID result.
    std::arch::is_x86_feature_detected!("sse4.2")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    // The intrinsics are `unsafe fn`s up to Rust 1.86 (this crate's MSRV is older) and safe in
    // a function with the same target features from then on: hence `unsafe` blocks with
    // `unused_unsafe` allowed.
    #![allow(unused_unsafe)]

    use std::arch::x86_64::{
        __m128i, _mm_clmulepi64_si128, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8,
        _mm_cvtsi128_si64, _mm_cvtsi64_si128, _mm_xor_si128,
    };

    use super::{MAX_WORDS, MIN_WORDS, SHIFT};

    /// The little-endian word in an 8-byte chunk.
    #[allow(clippy::inline_always)] // inside the lanes' inner loop, which must stay one body
    #[inline(always)]
    fn le(chunk: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        u64::from_le_bytes(w)
    }

    /// The carry-less product of a raw register and `SHIFT[m]`. Reduced by `crc32` after a
    /// left shift by one (the product of two reflected 32-bit values is a reflected 63-bit
    /// value; the shift makes it a reflected 64-bit one, and `crc32` multiplies it by `x^32`
    /// before reducing, hence the `− 32` in [`SHIFT`]), it is the register after `8·m` more
    /// zero bytes. Products can be XORed before that reduction: it is linear.
    ///
    /// # Safety
    /// The CPU must have SSE4.2 and PCLMULQDQ.
    #[inline]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    unsafe fn times_shift(raw: u64, m: usize) -> __m128i {
        // SAFETY: the caller guarantees PCLMULQDQ; the intrinsics touch no memory.
        unsafe {
            let a = _mm_cvtsi64_si128(raw as i64);
            let k = _mm_cvtsi64_si128(i64::from(SHIFT[m]));
            // Bits 0..63 of the 128-bit product hold all 63 bits of a 32 × 32 product.
            _mm_clmulepi64_si128::<0>(a, k)
        }
    }

    /// `crc32c_append(crc, prefix? ‖ data)`, where `prefix`, if any, is one little-endian word.
    ///
    /// # Safety
    /// The CPU must have SSE4.2 and PCLMULQDQ.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    pub(super) unsafe fn append(crc: u32, prefix: Option<u64>, data: &[u8]) -> u32 {
        let mut r = u64::from(!crc);
        // Whether the prefix is the first word of the block below.
        let mut p = 0;
        if let Some(word) = prefix {
            // SAFETY (this and every intrinsic below): the caller guarantees SSE4.2 and
            // PCLMULQDQ; the intrinsics touch no memory.
            r = unsafe { _mm_crc32_u64(r, word) };
            p = 1;
        }
        let mut rest = data;
        // Blocks of MAX_WORDS words (the first one including the prefix) while more remain.
        while p + rest.len() / 8 > MAX_WORDS {
            let (block, after) = rest.split_at(8 * (MAX_WORDS - p));
            // SAFETY: as above.
            r = unsafe { lanes(r, p, block) };
            rest = after;
            p = 0;
        }
        let whole = rest.len() / 8 * 8;
        let (words, tail) = rest.split_at(whole);
        if p + whole / 8 >= MIN_WORDS {
            // SAFETY: as above.
            r = unsafe { lanes(r, p, words) };
        } else {
            for x in words.chunks_exact(8) {
                // SAFETY: as above.
                r = unsafe { _mm_crc32_u64(r, le(x)) };
            }
        }
        let mut raw = r as u32;
        let mut rest = tail;
        if rest.len() >= 4 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&rest[..4]);
            // SAFETY: as above.
            raw = unsafe { _mm_crc32_u32(raw, u32::from_le_bytes(b)) };
            rest = &rest[4..];
        }
        if rest.len() >= 2 {
            // SAFETY: as above.
            raw = unsafe { _mm_crc32_u16(raw, u16::from_le_bytes([rest[0], rest[1]])) };
            rest = &rest[2..];
        }
        if let Some(&byte) = rest.first() {
            // SAFETY: as above.
            raw = unsafe { _mm_crc32_u8(raw, byte) };
        }
        !raw
    }

    /// The raw register after a block of `p + data.len() / 8` words, `MIN_WORDS..=MAX_WORDS`
    /// of them: `p` (0 or 1) words already fed into `r` (the prefix), then `data`, whose length
    /// is a multiple of 8.
    ///
    /// # Safety
    /// The CPU must have SSE4.2 and PCLMULQDQ.
    #[inline]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    unsafe fn lanes(mut r: u64, p: usize, data: &[u8]) -> u64 {
        let w = p + data.len() / 8;
        debug_assert!(data.len().is_multiple_of(8) && (MIN_WORDS..=MAX_WORDS).contains(&w));
        // Lanes a and b get `k` words each, lane c the other `w − 2k` (k + 1 to k + 3, so it
        // has at least one word after the common loop: its last, into which the other lanes
        // are folded). The prefix, if any, was lane a's first word.
        let k = (w - 1) / 3;
        let c_len = w - 2 * k;
        let b = 8 * (k - p);
        let (mut r1, mut r2) = (0u64, 0u64);
        let (lane_a, rest) = data.split_at(b);
        let (lane_b, lane_c) = rest.split_at(8 * k);
        let (lane_b_head, lane_b_rest) = lane_b.split_at(b);
        let (lane_c_head, lane_c_rest) = lane_c.split_at(b);
        let (lane_c_rest, lane_c_last) = lane_c_rest.split_at(lane_c_rest.len() - 8);
        for ((x, y), z) in lane_a
            .chunks_exact(8)
            .zip(lane_b_head.chunks_exact(8))
            .zip(lane_c_head.chunks_exact(8))
        {
            // SAFETY: the caller guarantees SSE4.2; the intrinsics touch no memory.
            unsafe {
                r = _mm_crc32_u64(r, le(x));
                r1 = _mm_crc32_u64(r1, le(y));
                r2 = _mm_crc32_u64(r2, le(z));
            }
        }
        // The iteration lane a did not need (its first word was the prefix), if any.
        for y in lane_b_rest.chunks_exact(8) {
            // SAFETY: as above.
            r1 = unsafe { _mm_crc32_u64(r1, le(y)) };
        }
        // Lane c's words after the common loop but its last.
        for z in lane_c_rest.chunks_exact(8) {
            // SAFETY: as above.
            r2 = unsafe { _mm_crc32_u64(r2, le(z)) };
        }
        // Lanes b and c started from 0. CRC is linear, so the register after the block is lane
        // a's moved over the `k + c_len` words after it, plus lane b's moved over `c_len`, plus
        // lane c's; and moving is a multiply whose reduction `crc32` does when the products are
        // XORed into lane c's last word.
        // SAFETY: the caller guarantees SSE4.2 and PCLMULQDQ; the intrinsics touch no memory.
        unsafe {
            let folded = _mm_xor_si128(times_shift(r, k + c_len), times_shift(r1, c_len));
            let folded = (_mm_cvtsi128_si64(folded) as u64) << 1;
            _mm_crc32_u64(r2, le(lane_c_last) ^ folded)
        }
    }

    /// # Safety
    /// The CPU must have SSE4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn append_words(crc: u32, a: u64, b: u64) -> u32 {
        // SAFETY: the caller guarantees SSE4.2; the intrinsic touches no memory.
        let r = unsafe { _mm_crc32_u64(_mm_crc32_u64(u64::from(!crc), a), b) };
        !(r as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::{crc32c_append, crc32c_append_words, crc32c_prefixed};
    use proptest::prelude::*;

    fn reference_prefixed(prefix: u64, data: &[u8]) -> u32 {
        crc32c::crc32c_append(crc32c::crc32c(&prefix.to_le_bytes()), data)
    }

    proptest! {
        #[test]
        fn append_equals_the_crc32c_crate(
            crc: u32,
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            skip in 0usize..16,
        ) {
            // Unaligned starts too.
            let data = &data[skip.min(data.len())..];
            prop_assert_eq!(crc32c_append(crc, data), crc32c::crc32c_append(crc, data));
        }

        #[test]
        fn prefixed_equals_the_crc32c_crate(
            prefix: u64,
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            skip in 0usize..16,
        ) {
            let data = &data[skip.min(data.len())..];
            prop_assert_eq!(crc32c_prefixed(prefix, data), reference_prefixed(prefix, data));
        }

        #[test]
        fn append_words_equals_the_crc32c_crate(crc: u32, a: u64, b: u64) {
            let mut bytes = [0u8; 16];
            bytes[0..8].copy_from_slice(&a.to_le_bytes());
            bytes[8..16].copy_from_slice(&b.to_le_bytes());
            prop_assert_eq!(crc32c_append_words(crc, a, b), crc32c::crc32c_append(crc, &bytes));
        }
    }

    /// Every length 0..=4096 at every alignment 0..16, with and without the prefix word: every
    /// lane split, the switch to the crate, and every tail length.
    #[test]
    fn every_length_and_alignment_matches_the_crate() {
        let buf: Vec<u8> = (0..4096 + 16u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let prefix = 0x0123_4567_89ab_cdef_u64;
        for align in 0..16 {
            for len in 0..=4096 {
                let data = &buf[align..align + len];
                assert_eq!(
                    crc32c_append(0x5eed_1234, data),
                    crc32c::crc32c_append(0x5eed_1234, data),
                    "append, length {len}, alignment {align}"
                );
                assert_eq!(
                    crc32c_prefixed(prefix, data),
                    reference_prefixed(prefix, data),
                    "prefixed, length {len}, alignment {align}"
                );
            }
        }
    }

    /// Lengths around the block boundaries (blocks of `MAX_WORDS` words, the first one
    /// including the prefix word), at every alignment.
    #[test]
    fn lengths_around_block_boundaries_match_the_crate() {
        let block = 8 * super::MAX_WORDS;
        let buf: Vec<u8> = (0..3 * block as u32 + 64)
            .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
            .collect();
        for blocks in 1..=2 {
            for delta in -24i64..=24 {
                let len = usize::try_from(blocks * block as i64 + delta).unwrap();
                for align in 0..16 {
                    let data = &buf[align..align + len];
                    assert_eq!(
                        crc32c_append(3, data),
                        crc32c::crc32c_append(3, data),
                        "append, length {len}, alignment {align}"
                    );
                    assert_eq!(
                        crc32c_prefixed(9, data),
                        reference_prefixed(9, data),
                        "prefixed, length {len}, alignment {align}"
                    );
                }
            }
        }
    }

    /// A single flipped bit anywhere changes the checksum (catches a lane that is read but not
    /// folded in, which equal-data tests could miss).
    #[test]
    fn every_bit_of_a_256_byte_record_counts() {
        let data: Vec<u8> = (0..256u32).map(|i| (i * 31 % 251) as u8).collect();
        let base = crc32c_prefixed(7, &data);
        assert_eq!(base, reference_prefixed(7, &data));
        for bit in 0..data.len() * 8 {
            let mut d = data.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            let c = crc32c_prefixed(7, &d);
            assert_ne!(c, base, "bit {bit}");
            assert_eq!(c, reference_prefixed(7, &d), "bit {bit}");
        }
    }
}
