//! Converting between timer ticks and nanoseconds, for every counter the
//! firmware reads (the generic timer at CNTFRQ_EL0, the PMU cycle counter
//! at the ARM clock).

const NS_PER_S: u128 = 1_000_000_000;

/// Nanoseconds in `ticks` of a `hz` counter, rounded down. A 0 Hz counter
/// (never programmed) is treated as 1 Hz rather than dividing by zero.
pub const fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    let hz = if hz == 0 { 1 } else { hz };
    saturate(ticks as u128 * NS_PER_S / hz as u128)
}

/// Ticks of a `hz` counter in `ns` nanoseconds, rounded up, so that a
/// deadline computed with it is never early.
pub const fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    saturate((ns as u128 * hz as u128).div_ceil(NS_PER_S))
}

const fn saturate(value: u128) -> u64 {
    if value > u64::MAX as u128 {
        u64::MAX
    } else {
        value as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_pi_and_qemu_rates() {
        assert_eq!(ticks_to_ns(19_200_000, 19_200_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(1, 62_500_000), 16);
        assert_eq!(ns_to_ticks(1_000_000, 19_200_000), 19_200);
        assert_eq!(ns_to_ticks(1, 19_200_000), 1, "rounds up");
        assert_eq!(ticks_to_ns(1_200, 1_200_000_000), 1_000);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
    }

    proptest! {
        #[test]
        fn round_trip_never_loses_time(ns in 0u64..1 << 50, hz in 1u64..4_000_000_000) {
            let ticks = ns_to_ticks(ns, hz);
            prop_assert!(ticks_to_ns(ticks, hz) >= ns);
            if ticks > 0 {
                prop_assert!(ticks_to_ns(ticks - 1, hz) < ns);
            }
        }
    }
}
