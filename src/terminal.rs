//! Where the text report goes: its width, its colour, and a pager when it is longer than the
//! terminal. Everything here is about hangscope's own stdout, never the target.

use std::io::{self, IsTerminal, Write};
use std::process::{Command, Stdio};

use hangscope_render::text::DEFAULT_WIDTH;

/// The terminal stdout is, if it is one: its columns and rows.
pub fn size() -> Option<(usize, usize)> {
    let out = io::stdout();
    if !out.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&out).map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
}

/// Columns to wrap to: the terminal's, else the fixed width the reports were recorded at, so
/// what a program or a test reads does not depend on where it ran.
pub fn width() -> usize {
    size().map_or(DEFAULT_WIDTH, |(w, _)| w)
}

/// Colour: never with --no-color or NO_COLOR (set and non-empty, no-color.org); always with
/// CLICOLOR_FORCE (set and not "0"); else only on a terminal.
pub fn color(no_color: bool) -> bool {
    color_from(
        no_color,
        std::env::var_os("NO_COLOR"),
        std::env::var_os("CLICOLOR_FORCE"),
        io::stdout().is_terminal(),
    )
}

fn color_from(
    no_color: bool,
    env_no: Option<std::ffi::OsString>,
    env_force: Option<std::ffi::OsString>,
    tty: bool,
) -> bool {
    if no_color || env_no.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if env_force.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    tty
}

/// The local zone at `ms` since the epoch: its offset from UTC in seconds and its
/// abbreviation, as the C library sees TZ and /etc/localtime.
pub fn local_time(ms: u64) -> Option<(i64, String)> {
    let t = libc::time_t::try_from(ms / 1000).ok()?;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r is the reentrant form.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: glibc points tm_zone at a NUL-terminated string it keeps for the process.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    // c_long: i64 here, i32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let offset = i64::from(tm.tm_gmtoff);
    Some((offset, zone))
}

/// Prints the report: through $PAGER when stdout is a terminal the report does not fit in
/// (unless `no_pager`), else straight. A pager that cannot start or fails leaves the report
/// printed straight: the report is what the operator needs on a bad day.
pub fn print(text: &str, no_pager: bool) -> io::Result<()> {
    if !no_pager
        && let Some((_, rows)) = size()
        && text.lines().count() >= rows
        && let Some(pager) = pager_command()
        && page(text, &pager)
    {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// $PAGER, "less" when unset; none when it is empty or `cat`.
fn pager_command() -> Option<String> {
    let pager = std::env::var("PAGER").unwrap_or_else(|_| "less".into());
    let pager = pager.trim();
    (!pager.is_empty() && pager != "cat").then(|| pager.to_string())
}

/// Runs the pager on `text`; whether it showed it (false: print it straight).
fn page(text: &str, pager: &str) -> bool {
    let mut cmd = Command::new("/bin/sh");
    // As git runs it: $PAGER may hold arguments ("less -S").
    cmd.arg("-c").arg(pager).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        // Colours as they are (R), no pager for what fits after all (F), the report stays on
        // the screen after quitting (X).
        cmd.env("LESS", "FRX");
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    // Ctrl-C is for the pager (less ignores it); this process waits for the pager to end
    // rather than leave it behind on the terminal.
    // SAFETY: SIG_IGN for this process's own SIGINT; no handler runs.
    let old = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A reader who quits before the end closes the pipe: that is not a failure.
        let _ = stdin.write_all(text.as_bytes());
    }
    let status = child.wait();
    if let Ok(old) = old {
        // SAFETY: restores the disposition read above.
        let _ = unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGINT, old) };
    }
    status.is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_no_color_and_clicolor_force() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        assert!(color_from(false, None, None, true));
        assert!(!color_from(false, None, None, false));
        assert!(!color_from(false, s("1"), None, true));
        // Set but empty is not set (no-color.org).
        assert!(color_from(false, s(""), None, true));
        assert!(color_from(false, None, s("1"), false));
        assert!(!color_from(false, None, s("0"), false));
        assert!(!color_from(false, s("1"), s("1"), true), "NO_COLOR wins");
        assert!(!color_from(true, None, s("1"), true), "--no-color wins");
    }
}
