//! Human units for people reading tables and charts (bytes and hertz are
//! the records' own, which the platform block shares).

pub use records::units::{bytes, hertz};

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
        assert_eq!(duration_ns(850), "850 ns");
        assert_eq!(duration_ns(12_345), "12.3 µs");
        assert_eq!(duration_ns(4_560_000), "4.56 ms");
        assert_eq!(duration_ns(1_230_000_000), "1.23 s");
        assert_eq!(count(1_234_567), "1 234 567");
        assert_eq!(count(999), "999");
        assert_eq!(rate(2.5e6), "2.50 M ev/s");
    }
}
