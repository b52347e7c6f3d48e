//! Calendar arithmetic for log timestamps: a written date and time plus a UTC offset → epoch
//! milliseconds, and the year a glog line (which has none) was written in.
//!
//! Hand-written because the workspace has no date crate and the need is small: Howard Hinnant's
//! `days_from_civil` and the rule that a log file's entries lie after its creation (file name)
//! or before its last write (mtime).

/// A local date and time as written in a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
    /// Offset from UTC in seconds when the line says it (ISO-8601 "Z" or "+08:00").
    pub offset_s: Option<i32>,
}

impl LocalTime {
    /// The date as written (`year` `None` when the line has none) at the time of day
    /// "hh:mm:ss[.frac]" that starts `clock`, in the zone of the file; with the bytes of
    /// `clock` read.
    pub(crate) fn at(
        year: Option<i32>,
        month: u32,
        day: u32,
        clock: &str,
    ) -> Option<(LocalTime, usize)> {
        let (hour, minute, second, micros, used) = parse_clock(clock)?;
        let t = LocalTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            offset_s: None,
        };
        Some((t, used))
    }
}

/// Whether a written month and day can be a date (1-12, 1-31).
pub(crate) fn month_day_in_range(month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// Where the year of year-less lines comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearRef {
    /// The file was created at this year and month (from its name): entries are not older.
    Start { year: i32, month: u32 },
    /// The file was last written at this year and month (its mtime, or now): entries are not
    /// newer.
    End { year: i32, month: u32 },
}

impl YearRef {
    /// The year of an entry written in `month`, given the reference.
    pub fn year_for(self, month: u32) -> i32 {
        match self {
            // A file created in December holds January's lines of the next year.
            YearRef::Start { year, month: m } if month < m => year + 1,
            YearRef::Start { year, .. } => year,
            // A file last written in January holds December's lines of the year before.
            YearRef::End { year, month: m } if month > m => year - 1,
            YearRef::End { year, .. } => year,
        }
    }

    pub fn year(self) -> i32 {
        match self {
            YearRef::Start { year, .. } | YearRef::End { year, .. } => year,
        }
    }
}

/// How to date lines: the year reference and the zone of lines that do not carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeContext {
    pub year_ref: Option<YearRef>,
    /// The UTC offset of local times, in seconds (east positive).
    pub utc_offset_s: Option<i32>,
}

impl TimeContext {
    /// Epoch milliseconds of `t`, when its year and zone are known.
    pub fn epoch_ms(&self, t: &LocalTime) -> Option<i64> {
        let year = t
            .year
            .or_else(|| self.year_ref.map(|r| r.year_for(t.month)))?;
        let offset = t.offset_s.or(self.utc_offset_s)?;
        let days = days_from_civil(year, t.month, t.day)?;
        let secs = days * 86_400
            + i64::from(t.hour) * 3600
            + i64::from(t.minute) * 60
            + i64::from(t.second)
            - i64::from(offset);
        Some(secs * 1000 + i64::from(t.micros / 1000))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date; `None` for an impossible date.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i64> {
    if !month_day_in_range(month, day) {
        return None;
    }
    let y = i64::from(year) - i64::from(month <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// (year, month) of an epoch second, in UTC shifted by `offset_s`.
pub fn year_month_of(epoch_s: i64, offset_s: i32) -> (i32, u32) {
    let days = (epoch_s + i64::from(offset_s)).div_euclid(86_400);
    // civil_from_days, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month)
}

/// "+08:00" for 28800.
pub fn format_offset(offset_s: i32) -> String {
    let sign = if offset_s < 0 { '-' } else { '+' };
    let a = offset_s.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// The creation date glog and many rotators put in file names: ".20230918-075346." →
/// (2023, 9). The first 8-digit run that is a plausible date wins.
pub fn year_month_from_file_name(name: &str) -> Option<(i32, u32)> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            if run == 8 {
                let s = &name[i..i + 8];
                let year: i32 = s[..4].parse().ok()?;
                let month: u32 = s[4..6].parse().ok()?;
                let day: u32 = s[6..8].parse().ok()?;
                if (1970..=2200).contains(&year) && month_day_in_range(month, day) {
                    return Some((year, month));
                }
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// Parses `n` ASCII digits at the start of `s`.
pub(crate) fn digits(s: &str, n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    if d.bytes().all(|b| b.is_ascii_digit()) {
        d.parse().ok()
    } else {
        None
    }
}

/// "hh:mm:ss[.frac]" at the start of `s` → (h, m, s, micros, bytes used).
pub(crate) fn parse_clock(s: &str) -> Option<(u32, u32, u32, u32, usize)> {
    let h = digits(s, 2)?;
    let m = digits(s.get(3..)?, 2)?;
    let sec = digits(s.get(6..)?, 2)?;
    if s.as_bytes().get(2) != Some(&b':') || s.as_bytes().get(5) != Some(&b':') {
        return None;
    }
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut used = 8;
    let mut micros = 0;
    if matches!(s.as_bytes().get(8), Some(b'.') | Some(b',')) {
        let frac: String = s[9..].chars().take_while(|c| c.is_ascii_digit()).collect();
        if frac.is_empty() {
            return None;
        }
        used += 1 + frac.len();
        let mut six: String = frac.chars().take(6).collect();
        while six.len() < 6 {
            six.push('0');
        }
        micros = six.parse().ok()?;
    }
    Some((h, m, sec, micros, used))
}

/// How the seed incident's glog is dated: the file was created in September 2023, written in
/// UTC+8.
#[cfg(test)]
pub(crate) fn seed_context() -> TimeContext {
    TimeContext {
        year_ref: Some(YearRef::Start {
            year: 2023,
            month: 9,
        }),
        utc_offset_s: Some(8 * 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2023, 9, 17), Some(19617));
        assert_eq!(days_from_civil(2000, 2, 29), Some(11016));
        assert_eq!(days_from_civil(2023, 13, 1), None);
        assert_eq!(year_month_of(19617 * 86400, 0), (2023, 9));
        assert_eq!(year_month_of(-1, 0), (1969, 12));
    }

    #[test]
    fn seed_time_in_utc_plus_8() {
        // W0917 05:25:27.038408 written in a +08:00 zone in 2023.
        let ctx = seed_context();
        let t = LocalTime {
            year: None,
            month: 9,
            day: 17,
            hour: 5,
            minute: 25,
            second: 27,
            micros: 38408,
            offset_s: None,
        };
        // 2023-09-16T21:25:27.038Z
        assert_eq!(ctx.epoch_ms(&t), Some(1_694_899_527_038));
        assert_eq!(TimeContext::default().epoch_ms(&t), None);
    }

    #[test]
    fn year_rollover() {
        let start = YearRef::Start {
            year: 2023,
            month: 12,
        };
        assert_eq!(start.year_for(12), 2023);
        assert_eq!(start.year_for(1), 2024);
        let end = YearRef::End {
            year: 2024,
            month: 1,
        };
        assert_eq!(end.year_for(1), 2024);
        assert_eq!(end.year_for(12), 2023);
    }

    #[test]
    fn year_from_names() {
        assert_eq!(
            year_month_from_file_name("zbs-metad.log.20230918-075346.31516"),
            Some((2023, 9))
        );
        assert_eq!(
            year_month_from_file_name("app.log-20221231.gz"),
            Some((2022, 12))
        );
        assert_eq!(year_month_from_file_name("app.log.1"), None);
        assert_eq!(year_month_from_file_name("x.99999999.log"), None);
        assert_eq!(year_month_from_file_name("123456789.log"), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(format_offset(28800), "+08:00");
        assert_eq!(format_offset(-12600), "-03:30");
        assert_eq!(format_offset(0), "+00:00");
    }

    #[test]
    fn clocks() {
        assert_eq!(
            parse_clock("05:25:27.038408 x"),
            Some((5, 25, 27, 38408, 15))
        );
        assert_eq!(parse_clock("05:25:27,5"), Some((5, 25, 27, 500000, 10)));
        assert_eq!(parse_clock("05:25:27"), Some((5, 25, 27, 0, 8)));
        assert_eq!(parse_clock("25:25:27"), None);
        assert_eq!(parse_clock("05-25-27"), None);
        assert_eq!(parse_clock("05:2"), None);
    }
}
