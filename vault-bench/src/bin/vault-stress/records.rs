//! The records the appenders write: bytes derived from (appender, sequence number), checked
//! against their own header wherever they are read.

/// Bytes of a record's header: appender (4), sequence number (8), length (4), little-endian.
pub(super) const HEADER: usize = 16;

/// SplitMix64: a fast, well-mixed function of its input.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn seed(appender: u32, seq: u64) -> u64 {
    mix((u64::from(appender) << 48) ^ seq)
}

pub(super) fn record_len(appender: u32, seq: u64, (lo, hi): (usize, usize)) -> usize {
    let span = (hi - lo + 1) as u64;
    let extra = (mix(seed(appender, seq)) % span) as usize;
    lo + extra
}

/// Writes record (`appender`, `seq`) of `len` bytes into `out` (cleared first).
pub(super) fn fill_record(out: &mut Vec<u8>, appender: u32, seq: u64, len: usize) {
    out.clear();
    out.extend_from_slice(&appender.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let mut state = seed(appender, seq);
    while out.len() < len {
        state = mix(state);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&state.to_le_bytes()[..take]);
    }
}

/// Checks a record's bytes against its own header; returns (appender, seq).
pub(super) fn check_record(data: &[u8]) -> Result<(u32, u64), String> {
    if data.len() < HEADER {
        return Err(format!("{} bytes, shorter than the header", data.len()));
    }
    let appender = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(data[4..12].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
    if len != data.len() {
        return Err(format!(
            "header of appender {appender} seq {seq} says {len} bytes, record has {}",
            data.len()
        ));
    }
    let mut want = Vec::with_capacity(len);
    fill_record(&mut want, appender, seq, len);
    match want.iter().zip(data).position(|(a, b)| a != b) {
        None => Ok((appender, seq)),
        Some(i) => Err(format!(
            "appender {appender} seq {seq}: byte {i} is {:#04x}, expected {:#04x}",
            data[i], want[i]
        )),
    }
}

pub(super) fn describe_record(data: &[u8]) -> String {
    match check_record(data) {
        Ok((a, s)) => format!("now appender {a} seq {s}"),
        Err(e) => e,
    }
}
