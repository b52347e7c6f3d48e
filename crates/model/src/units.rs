//! Durations and sizes in words, the one formatter every part of hangscope uses: findings
//! (diagnose), the text and HTML reports (render) and the tool's own messages say the same
//! fact the same way.

/// "850 ms", "7.9 s", "3 min 20 s", "2 h 5 min", "1 d 3 h"; "?" for a negative value.
/// Below a minute to a tenth of a second; above, whole units, cut down (a wait of 119.6 s is
/// "1 min 59 s": it has not reached two minutes).
pub fn duration_ms(ms: f64) -> String {
    if ms.is_nan() || ms < 0.0 {
        return "?".into();
    }
    if ms < 1000.0 {
        return format!("{} ms", ms.round() as u64);
    }
    let s = ms / 1000.0;
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let s = s as u64;
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    if s < 86400 {
        return format!("{} h {} min", s / 3600, (s % 3600) / 60);
    }
    format!("{} d {} h", s / 86400, (s % 86400) / 3600)
}

/// A `Duration` in the words of [`duration_ms`]: a limit or a wait the tool itself chose.
pub fn duration(d: std::time::Duration) -> String {
    duration_ms(d.as_secs_f64() * 1000.0)
}

/// For a table column: "0.9s", "7.9s", "3m20s", "2h05m".
pub fn duration_short(ms: u64) -> String {
    match ms {
        0..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// Microseconds as ss prints round-trip times: "0.088 ms", "12.4 ms", "1.2 s".
pub fn micros(us: u64) -> String {
    if us < 10_000 {
        format!("{:.3} ms", us as f64 / 1000.0)
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        duration_ms((us / 1000) as f64)
    }
}

/// A length a program chose (a sleep, a timeout), as it would be written: "100 ms", "2 s",
/// "1.5 s"; longer ones as `duration_ms`.
pub fn period_ms(ms: f64) -> String {
    if (1000.0..60_000.0).contains(&ms) {
        let s = ms / 1000.0;
        if (s - s.round()).abs() < 0.05 {
            return format!("{s:.0} s");
        }
    }
    duration_ms(ms)
}

/// `n` bytes scaled to its binary unit: the value (to a tenth) and the unit, or `None` below a
/// KiB.
fn scaled(n: u64) -> Option<(f64, &'static str)> {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return None;
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    Some((v, UNITS[u]))
}

/// For a sentence: "1 byte", "33 bytes", "4.0 KiB", "2.5 MiB".
pub fn bytes_words(n: u64) -> String {
    match scaled(n) {
        Some((v, unit)) => format!("{v:.1} {unit}"),
        None if n == 1 => "1 byte".into(),
        None => format!("{n} bytes"),
    }
}

/// Whether [`bytes_words`] of `n` takes a plural verb: "32 bytes are", but "1 byte is" and
/// "2.5 MiB is".
pub fn bytes_words_plural(n: u64) -> bool {
    n != 1 && scaled(n).is_none()
}

/// For a table, with lsof's habit of exact bytes below a KiB: "33 B", "7.5 MiB".
pub fn bytes_short(n: u64) -> String {
    match scaled(n) {
        Some((v, unit)) => format!("{v:.1} {unit}"),
        None => format!("{n} B"),
    }
}

/// A waiting loop in the notation of the document's `periodic` field and of the findings:
/// "clock_nanosleep 100 ms, ~10/s", "poll timeout 2 s, ~0.5/s", "futex, ~12/s".
pub fn looping(l: &crate::Looping, rate_per_s: f64) -> String {
    let rate = if rate_per_s >= 1.0 {
        format!("{rate_per_s:.0}")
    } else {
        format!("{rate_per_s:.1}")
    };
    match l.period_ms {
        Some(ms) if l.timeout => format!("{} timeout {}, ~{rate}/s", l.syscall, period_ms(ms)),
        Some(ms) => format!("{} {}, ~{rate}/s", l.syscall, period_ms(ms)),
        None => format!("{}, ~{rate}/s", l.syscall),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Looping, SyscallState, WaitObject};

    #[test]
    fn durations() {
        assert_eq!(duration_ms(850.0), "850 ms");
        assert_eq!(duration_ms(675.0), "675 ms");
        assert_eq!(duration_ms(7878.0), "7.9 s");
        assert_eq!(duration_ms(200_000.0), "3 min 20 s");
        assert_eq!(duration_ms(119_600.0), "1 min 59 s");
        assert_eq!(duration_ms(7_500_000.0), "2 h 5 min");
        assert_eq!(duration_ms(90_000_000.0), "1 d 1 h");
        assert_eq!(duration_ms(-1.0), "?");
    }

    #[test]
    fn short_durations_and_micros() {
        assert_eq!(duration(std::time::Duration::from_millis(1500)), "1.5 s");
        assert_eq!(duration_short(870), "0.9s");
        assert_eq!(duration_short(7878), "7.9s");
        assert_eq!(duration_short(200_000), "3m20s");
        assert_eq!(duration_short(7_500_000), "2h05m");
        assert_eq!(micros(88), "0.088 ms");
        assert_eq!(micros(12_400), "12.4 ms");
        assert_eq!(micros(1_200_000), "1.2 s");
    }

    #[test]
    fn periods() {
        assert_eq!(period_ms(100.0), "100 ms");
        assert_eq!(period_ms(2000.0), "2 s");
        assert_eq!(period_ms(1500.0), "1.5 s");
        assert_eq!(period_ms(120_000.0), "2 min 0 s");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes_words(1), "1 byte");
        assert_eq!(bytes_words(32), "32 bytes");
        assert_eq!(bytes_words(2_621_440), "2.5 MiB");
        assert!(bytes_words_plural(32) && !bytes_words_plural(1) && !bytes_words_plural(2_621_440));
        assert_eq!(bytes_short(33), "33 B");
        assert_eq!(bytes_short(7_907_320), "7.5 MiB");
        assert_eq!(bytes_short(5 << 40), "5.0 TiB");
        assert_eq!(bytes_short(5000 << 40), "5000.0 TiB");
    }

    #[test]
    fn a_loop_is_said_from_its_fields() {
        let sleep = SyscallState {
            name: "clock_nanosleep".into(),
            waits_on: vec![WaitObject::Sleep { ns: 100_000_000 }],
            ..SyscallState::default()
        };
        assert_eq!(
            looping(&Looping::of(&sleep), 9.8),
            "clock_nanosleep 100 ms, ~10/s"
        );
        let poll = SyscallState {
            name: "poll".into(),
            timeout_ms: Some(2000),
            ..SyscallState::default()
        };
        assert_eq!(
            looping(&Looping::of(&poll), 0.5),
            "poll timeout 2 s, ~0.5/s"
        );
        let futex = Looping {
            syscall: "futex".into(),
            ..Looping::default()
        };
        assert_eq!(looping(&futex, 12.2), "futex, ~12/s");
    }
}
