//! Human units for people reading tables and charts.

/// Bytes in binary units: `512 B`, `4.0 KiB`, `12.5 MiB`, `1.25 GiB`.
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
    // Whole numbers of units (pool sizes, page multiples) read better without a decimal.
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes as MiB with a fixed number of decimals, for columns and axes.
pub fn mib(n: u64) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

/// A duration in nanoseconds: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn duration_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        three_digits(f / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        three_digits(f / 1e6, "ms")
    } else {
        three_digits(f / 1e9, "s")
    }
}

/// Three significant digits: `1.23`, `12.3`, `123`.
fn three_digits(v: f64, unit: &str) -> String {
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else if v < 100.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
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

/// An event rate: `850 ev/s`, `12.3 k ev/s`, `4.56 M ev/s`.
pub fn rate(per_s: f64) -> String {
    if !per_s.is_finite() || per_s < 1_000.0 {
        format!("{:.0} ev/s", per_s.max(0.0))
    } else if per_s < 1e6 {
        format!("{:.1} k ev/s", per_s / 1e3)
    } else {
        format!("{:.2} M ev/s", per_s / 1e6)
    }
}

/// A large count with thin grouping: `1 234 567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(16 << 20), "16 MiB");
        assert_eq!(bytes(3 << 19), "1.50 MiB");
        assert_eq!(bytes(12_900_000), "12.3 MiB");
        assert_eq!(duration_ns(850), "850 ns");
        assert_eq!(duration_ns(12_345), "12.3 µs");
        assert_eq!(duration_ns(4_560_000), "4.56 ms");
        assert_eq!(duration_ns(1_230_000_000), "1.23 s");
        assert_eq!(hertz(62_500_000), "62.5 MHz");
        assert_eq!(hertz(1_000_000_000), "1 GHz");
        assert_eq!(hertz(19_200_000), "19.2 MHz");
        assert_eq!(count(1_234_567), "1 234 567");
        assert_eq!(count(999), "999");
        assert_eq!(rate(2.5e6), "2.50 M ev/s");
    }
}
