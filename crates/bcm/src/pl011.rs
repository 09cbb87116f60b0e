//! PL011 UART baud-rate divisors (BCM2835 ARM Peripherals, section 13.4:
//! BAUDDIV = UARTCLK / (16 * baud), integer part in IBRD, fractional part in
//! FBRD as a 6-bit fraction).

/// Divisors for one baud rate, and the baud rate they really give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divisors {
    /// IBRD, 16 bits, at least 1.
    pub integer: u16,
    /// FBRD, 6 bits.
    pub fraction: u8,
    /// The baud rate these divisors produce from the clock.
    pub actual_baud: u32,
    /// `false` when the requested rate was above clock / 16 and was lowered to it.
    pub exact: bool,
}

/// Divisors for `baud` from a UART clock of `clock_hz`, rounded to the nearest
/// 1/64. A rate above `clock_hz / 16` cannot be produced: the fastest possible
/// rate (IBRD 1, FBRD 0) is returned with `exact == false`. A rate so slow that
/// IBRD would overflow 16 bits is clamped the same way.
pub fn divisors(clock_hz: u32, baud: u32) -> Divisors {
    let baud = baud.max(1);
    // BAUDDIV * 64 = clock * 4 / baud, rounded.
    let div64 = (u64::from(clock_hz) * 4 + u64::from(baud) / 2) / u64::from(baud);
    let (div64, exact) = if div64 < 64 {
        (64, false)
    } else if div64 > (0xffff << 6) | 0x3f {
        ((0xffff << 6) | 0x3f, false)
    } else {
        (div64, true)
    };
    let actual_baud = (u64::from(clock_hz) * 4 / div64) as u32;
    Divisors {
        integer: (div64 >> 6) as u16,
        fraction: (div64 & 0x3f) as u8,
        actual_baud,
        exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi3_48mhz_921600() {
        let d = divisors(48_000_000, 921_600);
        assert_eq!((d.integer, d.fraction), (3, 16));
        assert!(d.exact);
        assert_eq!(d.actual_baud, 923_076);
    }

    #[test]
    fn pi3_48mhz_115200() {
        let d = divisors(48_000_000, 115_200);
        assert_eq!((d.integer, d.fraction), (26, 3));
    }

    #[test]
    fn qemu_3mhz_cannot_reach_921600() {
        let d = divisors(3_000_000, 921_600);
        assert_eq!((d.integer, d.fraction), (1, 0));
        assert!(!d.exact);
        assert_eq!(d.actual_baud, 187_500);
    }

    #[test]
    fn tiny_rates_clamp() {
        let d = divisors(48_000_000, 1);
        assert_eq!(d.integer, 0xffff);
        assert!(!d.exact);
    }
}
