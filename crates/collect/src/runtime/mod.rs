//! The managed runtime a process runs in, and the runtime's own view of its threads.
//!
//! A JVM's monitors, Go's sync.Mutex and CPython's locks are words in the process's memory:
//! a thread waiting for one sleeps in a futex (or a goroutine is parked while its thread
//! waits in epoll), so the kernel shows an idle process. Only the runtime can say who waits
//! for whom. Recognising it is read-only (/proc/PID/maps, /proc/PID/status, the executable's
//! Go build info, read in a helper process); asking it is bounded in time, can be turned off
//! (`Options::runtime_tools`), and never signals the target:
//! - JVM: HotSpot's attach API over the socket the JVM's attach listener already serves
//!   (`jvm`); when it does not, starting it would take a SIGQUIT, which is only sent when the
//!   user asks (`--jvm-attach`) and the JVM catches SIGQUIT;
//! - Go: an HTTP GET of net/http/pprof's goroutine dump on the process's own listeners
//!   (`go`); never SIGQUIT, which makes a Go program dump and exit;
//! - CPython: `py-spy dump --nonblocking`, which reads memory without stopping it (`python`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hangscope_model::{
    Gap, GapReason, Runtime, RuntimeKind, Snapshot, Text, UnavailableReason, ViewUnavailable,
};

use crate::{Options, ProcRoot};

pub mod go;
pub mod jvm;
pub mod python;
pub mod threads;

/// The longest one question to the runtime may take, when the deadline leaves that much.
pub const TOOL_LIMIT: Duration = Duration::from_secs(2);
/// Below this, no question is started: its answer could not come before the deadline.
const MIN_LIMIT: Duration = Duration::from_millis(100);

/// What asking the runtime may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tools {
    /// Ask the runtime at all (`--no-runtime-tools` turns it off).
    pub enabled: bool,
    /// May start a JVM's attach listener with SIGQUIT (`--jvm-attach`), when the JVM catches
    /// SIGQUIT. Off by default: by default nothing is sent to the target.
    pub jvm_signal: bool,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            enabled: true,
            jvm_signal: false,
        }
    }
}

/// Recognises the runtime from /proc/PID/maps and status, and the executable's Go build info.
pub fn recognise(
    root: &ProcRoot,
    pid: i32,
    opts: &Options,
    gaps: &mut Vec<Gap>,
) -> Option<Runtime> {
    let maps = match root.read_pid(pid, "maps") {
        Ok(m) => m,
        Err(e) => {
            gaps.push(crate::error::gap_of(format!("/proc/{pid}/maps"), &e));
            return None;
        }
    };
    let status = root
        .read_pid(pid, "status")
        .ok()
        .and_then(|t| crate::process::parse_status(&t).ok());
    // SIGQUIT is signal 3: bit 2 of the mask.
    let catches_sigquit = status.as_ref().map(|s| s.sigcgt & (1 << 2) != 0);
    // Only a hint for the runtime's kind (maps decide): unread, it is not used.
    let exe = std::fs::read_link(root.pid(pid).join("exe")).ok();
    let mut rt = if let Some(path) = mapped(&maps, |name| name == "libjvm.so") {
        Runtime {
            kind: RuntimeKind::Jvm,
            version: jvm::version_of_path(&path).map(Text::from),
            recognised_by: Text::from(format!("/proc/{pid}/maps: {path}")),
            catches_sigquit,
            ..Runtime::default()
        }
    } else if let Some(rt) = python::recognise(pid, &maps, exe.as_deref()) {
        rt
    } else if go::has_heap_arena(&maps) {
        go::recognise(root, pid, opts, gaps)?
    } else {
        return None;
    };
    if rt.kind != RuntimeKind::Jvm {
        rt.catches_sigquit = None;
    }
    Some(rt)
}

/// The path of the first mapping whose file name `matches`.
pub(crate) fn mapped(maps: &str, matches: impl Fn(&str) -> bool) -> Option<String> {
    maps.lines().find_map(|line| {
        // "addr perms offset dev inode    path": the path is the sixth field and may hold spaces.
        let path = line.splitn(6, ' ').nth(5)?.trim_start();
        let name = path.rsplit('/').next()?;
        (path.starts_with('/') && matches(name)).then(|| path.to_string())
    })
}

/// The time a question to the runtime may take now: [`TOOL_LIMIT`], or what is left before the
/// deadline less a margin for the report, whichever is smaller; `None` when too little is left.
pub(crate) fn limit(opts: &Options) -> Option<Duration> {
    let left = opts
        .deadline
        .remaining()
        .saturating_sub(Duration::from_millis(200));
    let l = left.min(TOOL_LIMIT);
    (l >= MIN_LIMIT).then_some(l)
}

/// Asks the runtime before the sampling window (Go: the first of two goroutine dumps).
pub fn before_window(snap: &mut Snapshot, opts: &Options) -> Option<go::FirstDump> {
    let rt = snap.process.runtime.as_ref()?;
    if !opts.runtime_tools.enabled || rt.kind != RuntimeKind::Go || opts.window.is_zero() {
        return None;
    }
    go::first_dump(snap, opts)
}

/// Asks the runtime for its own view, after the threads were read, and records the view or
/// why there is none.
pub fn ask(
    root: &ProcRoot,
    pid: i32,
    snap: &mut Snapshot,
    opts: &Options,
    first: Option<go::FirstDump>,
) {
    let Some(kind) = snap.process.runtime.as_ref().map(|r| r.kind) else {
        return;
    };
    let outcome = if !opts.runtime_tools.enabled {
        Err(ViewUnavailable {
            reason: UnavailableReason::Disabled,
            detail: "not asked: --no-runtime-tools".into(),
        })
    } else {
        match kind {
            RuntimeKind::Jvm => jvm::ask(root, pid, snap, opts),
            RuntimeKind::Go => go::ask(snap, opts, first),
            RuntimeKind::Cpython => python::ask(pid, opts, &mut snap.threads),
            RuntimeKind::Other => return,
        }
    };
    let Some(rt) = snap.process.runtime.as_mut() else {
        return;
    };
    match outcome {
        Ok(view) => {
            if let Some(v) = view.version_from_dump.clone() {
                rt.version = Some(v);
            }
            rt.view = Some(view.view);
        }
        Err(why) => {
            if why.reason != UnavailableReason::Disabled {
                let reason = match why.reason {
                    UnavailableReason::Deadline => GapReason::Deadline,
                    UnavailableReason::ToolAbsent | UnavailableReason::NoEndpoint => {
                        GapReason::Unsupported
                    }
                    UnavailableReason::NoAttachListener => GapReason::Unsafe,
                    _ => GapReason::Other,
                };
                snap.gaps.push(Gap::new(
                    format!("the {}'s own view of its threads", kind.label()),
                    reason,
                    why.detail.to_string(),
                ));
            }
            rt.unavailable = Some(why);
        }
    }
}

/// A view, and the runtime's version when the view tells it better than the recognition did.
pub struct Answer {
    pub view: hangscope_model::RuntimeView,
    pub version_from_dump: Option<Text>,
}

pub(crate) fn unavailable(reason: UnavailableReason, detail: impl Into<String>) -> ViewUnavailable {
    ViewUnavailable {
        reason,
        detail: Text::from(detail.into()),
    }
}

pub(crate) fn no_time() -> ViewUnavailable {
    unavailable(
        UnavailableReason::Deadline,
        "not asked: too little time was left before the deadline",
    )
}

/// The helper's side of the runtime's reads (`hangscope __read MODE MAX ...`, see `isolate`):
/// `None` for a mode it does not know.
pub(crate) fn serve(
    mode: &str,
    args: &[std::ffi::OsString],
    out: &mut impl Write,
) -> Option<std::io::Result<()>> {
    let arg = |i: usize| args.get(i).and_then(|a| a.to_str());
    let max: usize = arg(0)?.parse().ok()?;
    match mode {
        "buildinfo" => Some(
            match go::read_buildinfo(Path::new("/proc/self/fd/3"), max) {
                Ok(info) => writeln!(out, "ok").and_then(|_| out.write_all(&go::encode(&info))),
                Err(e) => crate::isolate::error_line(out, &e),
            },
        ),
        "attach" => {
            // attach MAX NSPID UID LIMIT_MS START_PID WORD...; START_PID 0: no signal.
            let nspid: i32 = arg(1)?.parse().ok()?;
            let uid: u32 = arg(2)?.parse().ok()?;
            let limit = Duration::from_millis(arg(3)?.parse().ok()?);
            let start: i32 = arg(4)?.parse().ok()?;
            let request: Vec<&str> = (5..args.len()).filter_map(arg).collect();
            let root = Path::new("/proc/self/fd/3");
            let start = (start > 0).then_some(start);
            Some(
                match jvm::attach_at(root, nspid, uid, &request, max, limit, start) {
                    Ok(reply) => writeln!(out, "ok").and_then(|_| out.write_all(&reply)),
                    Err(e) => crate::isolate::error_line(out, &e),
                },
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_library_is_found_by_its_file_name() {
        let maps = "7f00-7f10 r-xp 00000000 08:01 123 /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so\n\
                    7f20-7f30 rw-p 00000000 00:00 0 \n\
                    7f40-7f50 r--p 00000000 08:01 9 /opt/my app/libpython3.11.so.1.0\n";
        assert_eq!(
            mapped(maps, |n| n == "libjvm.so").as_deref(),
            Some("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so")
        );
        assert_eq!(
            mapped(maps, |n| n.starts_with("libpython")).as_deref(),
            Some("/opt/my app/libpython3.11.so.1.0")
        );
        assert_eq!(mapped(maps, |n| n == "libc.so.6"), None);
    }
}
