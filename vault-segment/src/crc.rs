//! CRC32C for the append path: the same checksum as the `crc32c` crate, faster for records of
//! about 100 B to 768 B and for the 8- and 16-byte pieces every frame checksums.
//!
//! The `crc32c` crate computes three interleaved streams only from 768 bytes on; below that it
//! runs one chain of `crc32` instructions, each waiting for the previous one (3 cycles apiece),
//! so a 256 B record cost ~45 ns, most of an unsynced append. Here a buffer of 96..768 bytes is
//! split into three lanes whose chains run in parallel, and the lanes are joined with a
//! carry-less multiply (PCLMULQDQ) by a constant per lane length. Short pieces (the frame
//! prefix, salt and LSN) skip the crate's alignment handling. Everything else, and every CPU
//! without SSE4.2 and PCLMULQDQ, goes to the `crc32c` crate. Proptests check the result
//! against the crate.
//!
//! Terms: the *raw* register is the CRC state without the final inversion
//! (`crc32c(data) = !raw(!0, data)`); in the bit-reflected representation of CRC32C, bit `i` of
//! a 32-bit value is the coefficient of `x^(31-i)`.

/// Lanes are at most this many 8-byte words: from 3 × 32 × 8 = 768 bytes on, the crate's own
/// three-lane loop takes over.
const MAX_LANE_WORDS: usize = 32;
/// Below 3 × 4 words (96 bytes) joining the lanes costs more than it saves.
const MIN_LANE_WORDS: usize = 4;

/// The CRC32C polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

/// `x^(64·words − 32) mod P` for `words` in `0..=MAX_LANE_WORDS` (entry 0 unused): multiplying a
/// raw register by it with `x86::shift` appends `8·words` zero bytes.
const SHIFT: [u32; MAX_LANE_WORDS + 1] = shift_table();

const fn shift_table() -> [u32; MAX_LANE_WORDS + 1] {
    let mut table = [0u32; MAX_LANE_WORDS + 1];
    // x^0, then multiply by x one bit at a time: in the reflected form that is a right shift,
    // folding the x^32 that falls out back in as P.
    let mut v: u32 = 0x8000_0000;
    let mut power = 0;
    let mut words = 1;
    while words <= MAX_LANE_WORDS {
        let target = 64 * words - 32;
        while power < target {
            v = if v & 1 == 1 { (v >> 1) ^ POLY } else { v >> 1 };
            power += 1;
        }
        table[words] = v;
        words += 1;
    }
    table
}

/// `crc32c_append(crc, data)`: extends a finished CRC32C over `data`.
#[must_use]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_hw() {
            // SAFETY: `has_hw` checked that the CPU has SSE4.2 and PCLMULQDQ.
            return unsafe { x86::append(crc, data) };
        }
    }
    crc32c::crc32c_append(crc, data)
}

/// `crc32c_append(crc, a ‖ b)` for two little-endian words: the salt and LSN of a frame.
#[must_use]
pub fn crc32c_append_words(crc: u32, a: u64, b: u64) -> u32 {
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
        _mm_clmulepi64_si128, _mm_crc32_u64, _mm_crc32_u8, _mm_cvtsi128_si64, _mm_cvtsi64_si128,
    };

    use super::{MAX_LANE_WORDS, MIN_LANE_WORDS, SHIFT};

    fn word(data: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&data[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// The raw register `raw` after `8·words` more zero bytes: `raw · SHIFT[words] · x^32 mod P`.
    ///
    /// The carry-less product of two reflected 32-bit values is a reflected 63-bit value; one
    /// left shift makes it a reflected 64-bit one, which `crc32` reduces after multiplying by
    /// `x^32` (hence the `− 32` in [`SHIFT`]).
    ///
    /// # Safety
    /// The CPU must have SSE4.2 and PCLMULQDQ.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    unsafe fn shift(raw: u32, words: usize) -> u32 {
        // SAFETY: the caller guarantees SSE4.2 and PCLMULQDQ; the intrinsics touch no memory.
        unsafe {
            let a = _mm_cvtsi64_si128(i64::from(raw));
            let k = _mm_cvtsi64_si128(i64::from(SHIFT[words]));
            // Bits 0..63 of the 128-bit product hold all 63 bits of a 32 × 32 product.
            #[allow(clippy::cast_sign_loss)]
            let product = _mm_cvtsi128_si64(_mm_clmulepi64_si128::<0>(a, k)) as u64;
            #[allow(clippy::cast_possible_truncation)]
            let r = _mm_crc32_u64(0, product << 1) as u32;
            r
        }
    }

    /// # Safety
    /// The CPU must have SSE4.2 and PCLMULQDQ.
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    pub(super) unsafe fn append(crc: u32, data: &[u8]) -> u32 {
        let n = data.len();
        if n >= 3 * 8 * MAX_LANE_WORDS {
            // The crate runs three lanes itself from here on.
            return crc32c::crc32c_append(crc, data);
        }
        let mut raw = !crc;
        let mut at = 0;
        let words = n / 8;
        if words >= 3 * MIN_LANE_WORDS {
            // At most 95 words, so a lane has at most 31 and SHIFT has its constant.
            let lane = words / 3;
            let (a, b, c) = (0, 8 * lane, 16 * lane);
            let (mut r0, mut r1, mut r2) = (u64::from(raw), 0u64, 0u64);
            for i in 0..lane {
                // SAFETY: the caller guarantees SSE4.2; the intrinsic touches no memory.
                unsafe {
                    r0 = _mm_crc32_u64(r0, word(data, a + 8 * i));
                    r1 = _mm_crc32_u64(r1, word(data, b + 8 * i));
                    r2 = _mm_crc32_u64(r2, word(data, c + 8 * i));
                }
            }
            // Lanes b and c started from 0: CRC is linear, so shifting a over b's length and
            // adding b's register gives the register after a ‖ b (and likewise for c).
            #[allow(clippy::cast_possible_truncation)]
            // SAFETY: the caller guarantees SSE4.2 and PCLMULQDQ.
            unsafe {
                raw = shift(r0 as u32, lane) ^ r1 as u32;
                raw = shift(raw, lane) ^ r2 as u32;
            }
            at = 24 * lane;
        }
        let mut r = u64::from(raw);
        while n - at >= 8 {
            // SAFETY: the caller guarantees SSE4.2; the intrinsic touches no memory.
            r = unsafe { _mm_crc32_u64(r, word(data, at)) };
            at += 8;
        }
        #[allow(clippy::cast_possible_truncation)]
        let mut raw = r as u32;
        for &byte in &data[at..] {
            // SAFETY: as above.
            raw = unsafe { _mm_crc32_u8(raw, byte) };
        }
        !raw
    }

    /// # Safety
    /// The CPU must have SSE4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn append_words(crc: u32, a: u64, b: u64) -> u32 {
        // SAFETY: the caller guarantees SSE4.2; the intrinsic touches no memory.
        let r = unsafe { _mm_crc32_u64(_mm_crc32_u64(u64::from(!crc), a), b) };
        #[allow(clippy::cast_possible_truncation)]
        let r = !(r as u32);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::{crc32c_append, crc32c_append_words};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn append_equals_the_crc32c_crate(
            crc: u32,
            data in proptest::collection::vec(any::<u8>(), 0..2_500),
            skip in 0usize..8,
        ) {
            // Unaligned starts too.
            let data = &data[skip.min(data.len())..];
            prop_assert_eq!(crc32c_append(crc, data), crc32c::crc32c_append(crc, data));
        }

        #[test]
        fn append_words_equals_the_crc32c_crate(crc: u32, a: u64, b: u64) {
            let mut bytes = [0u8; 16];
            bytes[0..8].copy_from_slice(&a.to_le_bytes());
            bytes[8..16].copy_from_slice(&b.to_le_bytes());
            prop_assert_eq!(crc32c_append_words(crc, a, b), crc32c::crc32c_append(crc, &bytes));
        }
    }

    #[test]
    fn every_lane_length_matches_at_the_edges() {
        let data: Vec<u8> = (0..1_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                crc32c_append(7, &data[..len]),
                crc32c::crc32c_append(7, &data[..len]),
                "length {len}"
            );
        }
    }
}
