//! What the command line and the commands it runs (scan, watch) share: the exit codes and the
//! duration values their options take. Apart from `cli`, so the commands need not reach back
//! into the command line that holds their arguments.

use std::time::Duration;

/// Exit codes, also in README.md.
pub mod exit {
    /// The report was printed and no cause was found.
    pub const OK: i32 = 0;
    /// The report was printed and names at least one cause.
    pub const CAUSE_FOUND: i32 = 1;
    /// The command line was wrong, or a name matched several processes.
    pub const USAGE: i32 = 2;
    /// Nothing could be read: no such process; a process that could not be seen (the report
    /// is printed, with the verdict NOT SEEN); a PID taken by another process while it was
    /// watched; or a snapshot file that cannot be read, is not a regular file or is too large.
    pub const NOTHING_READABLE: i32 = 3;
    /// Anything else went wrong (e.g. the demo could not start its processes).
    pub const FAILURE: i32 = 4;
}

/// "5s", "800ms", "1m30s", "2h" (humantime's words), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..=86400.0).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err(format!("{s:?} is out of range")),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration like 5s, 800ms or 1m30s ({e})"))?,
    };
    if d > Duration::from_secs(86400) {
        return Err(format!("{s:?} is out of range (at most a day)"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("2d").is_err(), "more than a day");
    }
}
