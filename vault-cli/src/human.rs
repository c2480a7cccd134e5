//! Numbers for people: byte sizes, durations and rates.

use std::time::Duration;

/// `1536` → `1.5 KiB`; exact below 1 KiB.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration in nanoseconds with a unit that keeps three or so digits: `850 ns`, `12.3 µs`,
/// `4.56 ms`, `1.234 s`.
pub(crate) fn nanos(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.3} s", v / 1e9)
    }
}

/// [`nanos`] of a `Duration`.
pub(crate) fn duration(d: Duration) -> String {
    nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `count` per second over `d`, rounded.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub(crate) fn per_second(count: u64, d: Duration) -> u64 {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return 0;
    }
    (count as f64 / s).round() as u64
}

/// MiB per second over `d`.
pub(crate) fn mib_per_second(bytes: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / s
}

/// `1234567` → `1,234,567`, for counts that readers compare by eye.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 segment`, `3 segments`, `2 flushes`.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    match (n, noun.ends_with('s') || noun.ends_with("sh")) {
        (1, _) => format!("{n} {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_counts_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(16 << 20), "16.0 MiB");
        assert_eq!(nanos(850), "850 ns");
        assert_eq!(nanos(12_345), "12.3 µs");
        assert_eq!(nanos(4_560_000), "4.56 ms");
        assert_eq!(nanos(1_234_000_000), "1.234 s");
        assert_eq!(count(7), "7");
        assert_eq!(count(200_000), "200,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "segment"), "1 segment");
        assert_eq!(plural(3, "flush"), "3 flushes");
        assert_eq!(plural(0, "rotation"), "0 rotations");
        assert_eq!(per_second(10, Duration::from_millis(500)), 20);
    }
}
