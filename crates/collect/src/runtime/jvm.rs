//! A JVM's own view of its threads, through HotSpot's attach API, as `jcmd PID Thread.print`
//! gets it (src/jdk.attach/linux/classes/sun/tools/attach/VirtualMachineImpl.java and
//! attachListener_linux.cpp in OpenJDK): connect to the UNIX socket `/tmp/.java_pid<NSPID>` in
//! the JVM's own mount namespace, NSPID being its PID in its own PID namespace; write the
//! protocol version "1", the command and three arguments, each ended by a NUL; read to the
//! end: a status line ("0" is success) and the command's output.
//!
//! HotSpot accepts a peer whose effective uid and gid are the JVM's, or root
//! (`os::Posix::matches_effective_uid_and_gid_or_root`), so hangscope connects as itself: as
//! root it is accepted, as the JVM's user too, and as anyone else the attach fails as jcmd's
//! would. The socket's owner is checked to be the JVM's uid first, as jcmd checks it, so a
//! socket someone else left in a shared /tmp is not taken for the JVM's.
//!
//! The socket exists only once the attach listener runs (after a first jcmd, or with
//! -XX:+StartAttachListener). Starting it takes a SIGQUIT, which hangscope never sends on its
//! own: the report says so, and whether the JVM catches SIGQUIT (SigCgt; not with -Xrs, where
//! SIGQUIT would kill it).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use hangscope_model::{
    DeadlockLink, RuntimeDeadlock, RuntimeThread, RuntimeView, Snapshot, Text, UnavailableReason,
    ViewUnavailable,
};

use super::{Answer, limit, no_time, unavailable};
use crate::isolate::Outcome;
use crate::{Options, ProcRoot};

/// The request `jcmd PID Thread.print` sends.
pub const THREAD_PRINT: [&str; 2] = ["jcmd", "Thread.print"];
/// A thread dump of a JVM with thousands of threads is a few MB; more is cut.
const MAX_REPLY: usize = 8 << 20;
/// Threads kept in the view.
const MAX_THREADS: usize = 64;
/// Frames kept per thread.
const MAX_FRAMES: usize = 4;

/// "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so" → "17"; "/opt/jdk-21.0.2/..." →
/// "21.0.2".
pub fn version_of_path(path: &str) -> Option<String> {
    path.split('/').find_map(|dir| {
        let rest = dir
            .strip_prefix("java-")
            .or_else(|| dir.strip_prefix("jdk-"))
            .or_else(|| dir.strip_prefix("jdk"))
            .or_else(|| dir.strip_prefix("jre-"))?;
        let v: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let v = v.trim_end_matches('.');
        (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
    })
}

/// The socket's path inside the JVM's root.
fn socket_name(nspid: i32) -> String {
    format!("tmp/.java_pid{nspid}")
}

pub(crate) fn ask(
    root: &ProcRoot,
    pid: i32,
    snap: &Snapshot,
    opts: &Options,
) -> Result<Answer, ViewUnavailable> {
    let Some(limit) = limit(opts) else {
        return Err(no_time());
    };
    let p = &snap.process;
    // NSpid lists the PID outermost first: the JVM names its socket by the last.
    let nspid = p.nspid.last().copied().unwrap_or(pid);
    let euid = root
        .read_pid(pid, "status")
        .ok()
        .and_then(|t| crate::process::parse_status(&t).ok())
        .map(|s| s.euid)
        .or(p.uid)
        .unwrap_or(0);
    let shown = format!("/proc/{pid}/root/{}", socket_name(nspid));
    // SIGQUIT only when asked, and only to a JVM that catches it: without a handler
    // (-Xrs) its default action ends the process.
    let catches = p.runtime.as_ref().and_then(|r| r.catches_sigquit);
    let start = (opts.runtime_tools.jvm_signal && catches == Some(true)).then_some(pid);
    let dir = crate::logs::open::open_path(&root.pid(pid).join("root"))
        .map_err(|e| unavailable(UnavailableReason::Failed, format!("/proc/{pid}/root: {e}")))?;
    let started = Instant::now();
    let outcome = match opts.reader.as_deref() {
        Some(helper) => {
            let args = [
                "attach".to_string(),
                MAX_REPLY.to_string(),
                nspid.to_string(),
                euid.to_string(),
                limit.as_millis().to_string(),
                start.map_or(0, |p| p).to_string(),
                THREAD_PRINT[0].to_string(),
                THREAD_PRINT[1].to_string(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match crate::isolate::ask(helper, dir.as_fd(), &args, MAX_REPLY + 128, limit) {
                Outcome::Done(bytes) => match crate::isolate::split_answer(&bytes) {
                    Ok((_, body)) => Outcome::Done(body.to_vec()),
                    Err(e) => Outcome::Failed(e),
                },
                other => other,
            }
        }
        None => {
            let at =
                Path::new("/proc/self/fd").join(std::os::fd::AsRawFd::as_raw_fd(&dir).to_string());
            match attach_at(&at, nspid, euid, &THREAD_PRINT, MAX_REPLY, limit, start) {
                Ok(b) => Outcome::Done(b),
                Err(e) => Outcome::Failed(e),
            }
        }
    };
    let took_ms = started.elapsed().as_millis() as u64;
    let tool = format!("jcmd {pid} Thread.print (HotSpot attach API, {shown})");
    let reply = match outcome {
        Outcome::Done(b) => b,
        Outcome::TimedOut(d) => {
            return Err(unavailable(
                UnavailableReason::TimedOut,
                format!(
                    "{tool}: no answer within {}",
                    hangscope_model::units::duration(d)
                ),
            ));
        }
        Outcome::Failed(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let quit = match p.runtime.as_ref().and_then(|r| r.catches_sigquit) {
                Some(true) => {
                    "the JVM catches SIGQUIT (SigCgt), so HotSpot would take it as the request"
                }
                Some(false) => {
                    "the JVM does not catch SIGQUIT (SigCgt; started with -Xrs?), so SIGQUIT would kill it"
                }
                None => "whether the JVM catches SIGQUIT could not be read",
            };
            return Err(unavailable(
                UnavailableReason::NoAttachListener,
                if start.is_some() {
                    format!("{shown} did not appear after SIGQUIT ({quit})")
                } else {
                    format!(
                        "{shown} does not exist: the JVM's attach listener is not running; \
                         starting it takes a SIGQUIT, which hangscope sends only with \
                         --jvm-attach ({quit})"
                    )
                },
            ));
        }
        // The helper's own clock can run out before ours: the same answer as a timeout here.
        Outcome::Failed(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
            return Err(unavailable(
                UnavailableReason::TimedOut,
                format!(
                    "{tool}: no answer within {}",
                    hangscope_model::units::duration(limit)
                ),
            ));
        }
        Outcome::Failed(e) => {
            return Err(unavailable(
                UnavailableReason::Failed,
                format!("{tool}: {e}"),
            ));
        }
    };
    let text = String::from_utf8_lossy(&reply);
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    if status.trim() != "0" {
        return Err(unavailable(
            UnavailableReason::Failed,
            format!(
                "{tool}: the JVM answered {:?}",
                hangscope_model::text::escape_cut(text.trim(), 200)
            ),
        ));
    }
    let (mut view, version) = parse_dump(body);
    view.command = format!("jcmd {pid} Thread.print");
    view.tool = Text::from(tool);
    view.took_ms = took_ms;
    Ok(Answer {
        view,
        version_from_dump: version.map(Text::from),
    })
}

/// Connects to the attach socket under `root` (the JVM's root directory), checks it is the
/// JVM's, sends `request` and returns the whole reply (at most `max` bytes) within `limit`.
/// With `start` (the JVM's PID as this process sees it), a missing socket is first made to
/// appear as jcmd does: a trigger file `.attach_pid<NSPID>` in the JVM's /tmp, then SIGQUIT,
/// which HotSpot's handler takes as the request when the file is there.
pub(crate) fn attach_at(
    root: &Path,
    nspid: i32,
    uid: u32,
    request: &[&str],
    max: usize,
    limit: Duration,
    start: Option<i32>,
) -> io::Result<Vec<u8>> {
    let path = root.join(socket_name(nspid));
    let end = Instant::now() + limit;
    let meta = match (std::fs::symlink_metadata(&path), start) {
        (Err(e), Some(pid)) if e.raw_os_error() == Some(libc::ENOENT) => {
            start_listener(root, nspid, pid, &path, end)?
        }
        (r, _) => r?,
    };
    // The errors cross the helper's pipe as errno values only.
    if !meta.file_type().is_socket() {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    if meta.uid() != uid {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    let limit = end
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    // A listener whose backlog is full (its Attach Listener thread not accepting) refuses a
    // connect with EAGAIN: the JVM did not answer, as when it accepts and never replies.
    let mut s = UnixStream::connect(&path).map_err(|e| match e.raw_os_error() {
        Some(libc::EAGAIN) => io::Error::from_raw_os_error(libc::ETIMEDOUT),
        _ => e,
    })?;
    s.set_write_timeout(Some(limit))?;
    let mut msg = b"1\0".to_vec();
    for i in 0..4 {
        msg.extend_from_slice(request.get(i).unwrap_or(&"").as_bytes());
        msg.push(0);
    }
    s.write_all(&msg)?;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                let room = max.saturating_sub(got.len());
                got.extend_from_slice(&chunk[..n.min(room)]);
                if got.len() >= max {
                    return Ok(got);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Starts the attach listener (only with `--jvm-attach`, and only for a JVM that catches
/// SIGQUIT: the caller checks) and waits, until `end`, for its socket.
fn start_listener(
    root: &Path,
    nspid: i32,
    pid: i32,
    socket: &Path,
    end: Instant,
) -> io::Result<std::fs::Metadata> {
    use std::os::unix::fs::OpenOptionsExt;
    let trigger = root.join(format!("tmp/.attach_pid{nspid}"));
    // Not following a link someone put there; an existing trigger (another jcmd's) is fine.
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&trigger)
        .is_ok();
    let sent = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGQUIT,
    );
    let found = sent.map_err(io::Error::from).and_then(|_| {
        loop {
            match std::fs::symlink_metadata(socket) {
                Ok(m) => break Ok(m),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => break Err(e),
            }
        }
    });
    if created {
        let _ = std::fs::remove_file(&trigger);
    }
    found
}

/// A thread dump's threads, deadlocks and the VM's version.
pub fn parse_dump(text: &str) -> (RuntimeView, Option<String>) {
    let mut view = RuntimeView::default();
    let mut version = None;
    let mut lines = text.lines().peekable();
    let mut threads: Vec<RuntimeThread> = Vec::new();
    let mut current: Option<RuntimeThread> = None;
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("Full thread dump ") {
            // "OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):"
            version = rest
                .split_once('(')
                .and_then(|(_, v)| v.split([' ', ')']).next())
                .filter(|v| !v.is_empty())
                .map(str::to_string);
            continue;
        }
        if line.starts_with("Found one Java-level deadlock") {
            threads.extend(current.take());
            view.deadlocks.push(parse_deadlock(&mut lines));
            continue;
        }
        if line.starts_with('"') && line.contains(" nid=") {
            threads.extend(current.take());
            current = Some(thread_header(line));
            continue;
        }
        let Some(t) = current.as_mut() else {
            continue;
        };
        let l = line.trim_start();
        if let Some(state) = l.strip_prefix("java.lang.Thread.State: ") {
            t.state = Text::from(state.trim());
        } else if let Some(frame) = l.strip_prefix("at ") {
            if t.frames.len() < MAX_FRAMES {
                t.frames.push(Text::from(frame.trim()));
            }
        } else if let Some(lock) = l.strip_prefix("- waiting to lock ").or_else(|| {
            // A j.u.c lock (ReentrantLock$NonfairSync, ReentrantReadWriteLock$...); a
            // ConditionObject is a wait for a signal (a queue's take), a latch for an event.
            l.strip_prefix("- parking to wait for ")
                .filter(|o| o.contains("Lock") && !o.contains("ConditionObject"))
        }) {
            t.waiting_for.get_or_insert_with(|| Text::from(lock.trim()));
        } else if line.is_empty() {
            threads.extend(current.take());
        }
    }
    threads.extend(current.take());
    view.threads_total = threads.len() as u32;
    let in_deadlock = |name: &Text| {
        view.deadlocks
            .iter()
            .any(|d| d.links.iter().any(|l| l.thread == *name))
    };
    let mut keep: Vec<RuntimeThread> = threads
        .into_iter()
        .filter(|t| {
            in_deadlock(&t.name) || t.state.starts_with("BLOCKED") || t.waiting_for.is_some()
        })
        .collect();
    keep.truncate(MAX_THREADS);
    view.threads = keep;
    (view, version)
}

/// `"worker-1" #13 prio=5 os_prio=0 ... nid=0x1a2b waiting for monitor entry [0x...]`: the
/// name (which may hold quotes: up to the last quote before nid) and the native id, hex up to
/// JDK 18 and decimal from 19.
fn thread_header(line: &str) -> RuntimeThread {
    let (head, tail) = line.rsplit_once(" nid=").unwrap_or((line, ""));
    let name = head
        .get(1..)
        .and_then(|h| h.rfind('"').map(|end| &h[..end]))
        .unwrap_or("");
    let nid = tail.split_whitespace().next().unwrap_or("");
    let tid = match nid.strip_prefix("0x") {
        Some(hex) => i32::from_str_radix(hex, 16).ok(),
        None => nid.parse().ok(),
    };
    RuntimeThread {
        name: Text::from(name),
        tid,
        ..RuntimeThread::default()
    }
}

/// The lines after "Found one Java-level deadlock:", up to the stacks that follow them.
fn parse_deadlock<'a>(
    lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
) -> RuntimeDeadlock {
    let mut d = RuntimeDeadlock::default();
    let mut link: Option<DeadlockLink> = None;
    while let Some(line) = lines.peek().copied() {
        if line.starts_with("Java stack information") || line.starts_with("Found ") {
            break;
        }
        lines.next();
        let l = line.trim();
        if line.starts_with('"') && l.ends_with("\":") {
            d.links.extend(link.take());
            link = Some(DeadlockLink {
                thread: Text::from(&l[1..l.len() - 2]),
                ..DeadlockLink::default()
            });
        } else if let Some(k) = link.as_mut() {
            if let Some(held) = l.strip_prefix("which is held by ") {
                k.held_by = Text::from(held.trim_matches('"'));
            } else if let Some(lock) = l
                .strip_prefix("waiting to lock ")
                .or_else(|| l.strip_prefix("waiting for "))
            {
                k.waits_for = Text::from(lock.trim_end_matches(','));
            }
        }
    }
    d.links.extend(link);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "0\n2026-12-01 12:00:00\nFull thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):\n\n\
\"main\" #1 prio=5 os_prio=0 cpu=50.1ms elapsed=3.2s tid=0x00007f0001 nid=0x1f40 in Object.wait()  [0x00007f0002]\n\
   java.lang.Thread.State: WAITING (on object monitor)\n\
\tat java.lang.Object.wait(java.base@17.0.15/Native Method)\n\
\t- waiting on <0x000000062ac00010> (a java.lang.Thread)\n\n\
\"left \\\"q\\\"\" #13 prio=5 os_prio=0 cpu=1.2ms elapsed=3.1s tid=0x00007f0003 nid=0x1f4d waiting for monitor entry  [0x00007f0004]\n\
   java.lang.Thread.State: BLOCKED (on object monitor)\n\
\tat Deadlock.lambda$main$0(Deadlock.java:12)\n\
\t- waiting to lock <0x000000062ac3e8b0> (a java.lang.Object)\n\
\t- locked <0x000000062ac3e8a0> (a java.lang.Object)\n\n\
\"right\" #14 prio=5 os_prio=0 cpu=1.1ms elapsed=3.1s tid=0x00007f0005 nid=8014 waiting for monitor entry  [0x00007f0006]\n\
   java.lang.Thread.State: BLOCKED (on object monitor)\n\
\tat Deadlock.lambda$main$1(Deadlock.java:20)\n\
\t- waiting to lock <0x000000062ac3e8a0> (a java.lang.Object)\n\n\
\"VM Thread\" os_prio=0 cpu=2.0ms elapsed=3.2s tid=0x00007f0007 nid=0x1f45 runnable\n\n\
Found one Java-level deadlock:\n=============================\n\
\"left \\\"q\\\"\":\n  waiting to lock monitor 0x00007f3c8c003a80 (object 0x000000062ac3e8b0, a java.lang.Object),\n  which is held by \"right\"\n\n\
\"right\":\n  waiting to lock monitor 0x00007f3c8c006420 (object 0x000000062ac3e8a0, a java.lang.Object),\n  which is held by \"left \\\"q\\\"\"\n\n\
Java stack information for the threads listed above:\n===================================================\n\
\"left \\\"q\\\"\":\n\tat Deadlock.lambda$main$0(Deadlock.java:12)\n\nFound 1 deadlock.\n";

    #[test]
    fn a_dump_gives_the_deadlock_and_the_blocked_threads() {
        let body = DUMP.split_once('\n').unwrap().1;
        let (view, version) = parse_dump(body);
        assert_eq!(version.as_deref(), Some("17.0.15+6-Debian-1deb12u1"));
        assert_eq!(view.threads_total, 4);
        assert_eq!(view.deadlocks.len(), 1);
        let links = &view.deadlocks[0].links;
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].thread, "left \\\"q\\\"");
        assert_eq!(links[0].held_by, "right");
        assert!(
            links[0].waits_for.starts_with("monitor 0x00007f3c8c003a80"),
            "{:?}",
            links[0]
        );
        assert_eq!(view.threads.len(), 2, "{:?}", view.threads);
        assert_eq!(view.threads[0].tid, Some(0x1f4d));
        assert_eq!(view.threads[1].tid, Some(8014));
        assert_eq!(view.threads[1].state, "BLOCKED (on object monitor)");
        assert_eq!(
            view.threads[1].waiting_for.as_deref(),
            Some("<0x000000062ac3e8a0> (a java.lang.Object)")
        );
        assert_eq!(
            view.threads[1].frames,
            ["Deadlock.lambda$main$1(Deadlock.java:20)"]
        );
    }

    #[test]
    fn a_queue_take_is_not_a_lock_wait_and_a_reentrant_lock_is() {
        let (view, _) = parse_dump(
            "\"consumer\" #14 prio=5 nid=0x10 waiting on condition  [0x1]\n\
   java.lang.Thread.State: WAITING (parking)\n\
\tat jdk.internal.misc.Unsafe.park(java.base@17.0.15/Native Method)\n\
\t- parking to wait for  <0x01> (a java.util.concurrent.locks.AbstractQueuedSynchronizer$ConditionObject)\n\n\
\"locker\" #15 prio=5 nid=0x11 waiting on condition  [0x2]\n\
   java.lang.Thread.State: WAITING (parking)\n\
\tat jdk.internal.misc.Unsafe.park(java.base@17.0.15/Native Method)\n\
\t- parking to wait for  <0x02> (a java.util.concurrent.locks.ReentrantLock$NonfairSync)\n",
        );
        assert_eq!(view.threads_total, 2);
        assert_eq!(view.threads.len(), 1, "{:?}", view.threads);
        assert_eq!(view.threads[0].name, "locker");
    }

    #[test]
    fn garbage_is_an_empty_view() {
        let (view, version) =
            parse_dump("\"\" nid=\n\"x nid=zz\nFound one Java-level deadlock:\n\"\":\n");
        assert_eq!(version, None);
        assert!(view.threads.len() <= 2);
    }

    #[test]
    fn versions_from_paths() {
        assert_eq!(
            version_of_path("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so").as_deref(),
            Some("17")
        );
        assert_eq!(
            version_of_path("/opt/jdk-21.0.2/lib/server/libjvm.so").as_deref(),
            Some("21.0.2")
        );
        assert_eq!(version_of_path("/opt/java/lib/server/libjvm.so"), None);
    }
}
