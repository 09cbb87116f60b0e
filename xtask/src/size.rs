//! Byte sizes as users type them.

/// Parses `4096`, `4K`, `4KiB`, `16M`, `16MiB`, `1G`, `1GiB` (binary units;
/// `B` or nothing for bytes). Zero is refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 16MiB, 128M, 4096)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use B, KiB, MiB or GiB)"
            ))
        }
    };
    match n.checked_mul(1 << shift) {
        Some(0) => Err(format!("`{text}`: the size must be above 0")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{text}` is too large")),
    }
}

/// A pool size: a size that is a whole number of 4 KiB pages.
pub fn parse_pool_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes % 4096 != 0 {
        return Err(format!("`{text}` must be a multiple of 4 KiB"));
    }
    Ok(bytes)
}

/// Mebibytes with one decimal, for messages.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 64 "), Ok(64));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(parse_size("12XB").unwrap_err().contains("unit"));
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("0").unwrap_err().contains("above 0"));
        assert!(parse_size("99999999999G")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_pool_size("6000").unwrap_err().contains("4 KiB"));
        assert_eq!(parse_pool_size("48MiB"), Ok(48 << 20));
    }
}
