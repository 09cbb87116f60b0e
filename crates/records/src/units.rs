//! Human units shared by every view of the records: the report's tables and
//! charts on the host and the platform block (which the firmware can print
//! too, so this is `no_std`).

use alloc::format;
use alloc::string::String;

/// Bytes in binary units: `512 B`, `4 KiB`, `12.5 MiB`, `1.25 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // Whole numbers of units (pool sizes, page multiples) read better without
    // a decimal. (Decided on the integer: `f64::fract` is not in `core`.)
    if n.is_multiple_of(1 << (10 * (unit + 1))) {
        format!("{value:.0} {}", UNITS[unit])
    } else if value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A frequency: `62.5 MHz`, `1 GHz` (for virtual clocks), `19.2 MHz`.
pub fn hertz(hz: u64) -> String {
    let f = hz as f64;
    let (v, unit) = if hz >= 1_000_000_000 {
        (f / 1e9, "GHz")
    } else if hz >= 1_000_000 {
        (f / 1e6, "MHz")
    } else if hz >= 1_000 {
        (f / 1e3, "kHz")
    } else {
        (f, "Hz")
    };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {unit}")
}

/// A duration: `850 ns`, `12.5 µs`, `10 ms`, `1.25 s` (three significant
/// digits at most, trailing zeros dropped).
pub fn duration(ns: u64) -> String {
    let f = ns as f64;
    let (v, unit) = if ns >= 1_000_000_000 {
        (f / 1e9, "s")
    } else if ns >= 1_000_000 {
        (f / 1e6, "ms")
    } else if ns >= 1_000 {
        (f / 1e3, "µs")
    } else {
        return format!("{ns} ns");
    };
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s.as_str()
    };
    format!("{s} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850 ns");
        assert_eq!(duration(12_500), "12.5 µs");
        assert_eq!(duration(10_000_000), "10 ms");
        assert_eq!(duration(1_250_000_000), "1.25 s");
        assert_eq!(duration(123_456_789), "123 ms");
        assert_eq!(duration(100_000), "100 µs");
    }

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(4097), "4.00 KiB");
        assert_eq!(bytes(16 << 20), "16 MiB");
        assert_eq!(bytes(3 << 19), "1.50 MiB");
        assert_eq!(bytes(12_900_000), "12.3 MiB");
        assert_eq!(bytes(908 << 20), "908 MiB");
        assert_eq!(bytes(5 << 40), "5 TiB");
        assert_eq!(bytes(5 << 50), "5120 TiB");
    }

    #[test]
    fn hertz_read_naturally() {
        assert_eq!(hertz(62_500_000), "62.5 MHz");
        assert_eq!(hertz(1_000_000_000), "1 GHz");
        assert_eq!(hertz(19_200_000), "19.2 MHz");
        assert_eq!(hertz(3_000_000), "3 MHz");
        assert_eq!(hertz(48_000), "48 kHz");
        assert_eq!(hertz(0), "0 Hz");
    }
}
