//! /proc/PID/task/TID/syscall (proc_pid_syscall(5)): the syscall a blocked thread is in, its six
//! argument registers, stack pointer and program counter; "running" for a thread on a CPU;
//! "-1 SP PC" for a thread blocked outside a syscall (e.g. in a page fault).
//!
//! The line is parsed with procfs-core's `Syscall` (which cannot read the "-1" form: it has
//! only two values after the number, handled here). Numbers are named from the host
//! architecture's table (x86_64 or aarch64: hangscope reads targets of its own architecture),
//! and the arguments are interpreted like strace(1) would, reading the target's memory with
//! process_vm_readv(2) where they point to it (pollfd arrays, timespecs, fd sets, struct
//! flock). Layouts are those of LP64 Linux, the same on both architectures.

use hangscope_model::{EpollWatch, Fd, SyscallArg, SyscallState, WaitObject};
use procfs_core::FromRead;
use procfs_core::process::Syscall;

use super::futex;
use super::memory::{Memory, i16_at, i32_at, i64_at};
use super::{syscall_table_aarch64, syscall_table_x86_64};

/// The file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSyscall {
    Running,
    /// Blocked outside a syscall ("-1 SP PC").
    NotInSyscall {
        sp: u64,
        pc: u64,
    },
    Blocked {
        nr: i64,
        args: [u64; 6],
        sp: u64,
        pc: u64,
    },
}

impl RawSyscall {
    /// What identifies a wait for the periodic-loop test: number and arguments.
    pub fn key(&self) -> Option<(i64, [u64; 6])> {
        match *self {
            RawSyscall::Blocked { nr, args, .. } => Some((nr, args)),
            _ => None,
        }
    }
}

pub fn parse(text: &str) -> Result<RawSyscall, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("-1 ") {
        let mut it = rest
            .split_whitespace()
            .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16));
        return match (it.next(), it.next()) {
            (Some(Ok(sp)), Some(Ok(pc))) => Ok(RawSyscall::NotInSyscall { sp, pc }),
            _ => Err(format!("malformed: {t:?}")),
        };
    }
    match Syscall::from_read(t.as_bytes()).map_err(|e| format!("malformed {t:?}: {e}"))? {
        Syscall::Running => Ok(RawSyscall::Running),
        Syscall::Blocked {
            syscall_number,
            argument_registers,
            stack_pointer,
            program_counter,
        } => Ok(RawSyscall::Blocked {
            nr: syscall_number,
            args: argument_registers,
            sp: stack_pointer,
            pc: program_counter,
        }),
        _ => Err(format!("unexpected form: {t:?}")),
    }
}

/// The architectures whose tables hangscope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture hangscope runs on, which is its targets' (no compat-mode decoding).
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }
}

/// The syscall's name, or "syscall_N" for a number not in the table.
pub fn name(arch: Arch, nr: i64) -> String {
    let table: &[&str] = match arch {
        Arch::X86_64 => &syscall_table_x86_64::NAMES,
        Arch::Aarch64 => &syscall_table_aarch64::NAMES,
    };
    usize::try_from(nr)
        .ok()
        .and_then(|i| table.get(i))
        .filter(|n| !n.is_empty())
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

/// What decoding needs besides the registers.
pub struct Context<'a> {
    pub arch: Arch,
    pub mem: &'a dyn Memory,
    /// The process's fds (sorted), for epoll watch lists.
    pub fds: &'a [Fd],
    /// Threads of the process, to recognise a mutex owner's TID.
    pub tids: &'a [i32],
}

/// Decodes one thread's syscall file.
pub fn decode(raw: &RawSyscall, ctx: &Context) -> SyscallState {
    match *raw {
        RawSyscall::Running => SyscallState {
            running: true,
            nr: -1,
            name: "running".into(),
            summary: "running (on a CPU or runnable)".into(),
            ..SyscallState::default()
        },
        RawSyscall::NotInSyscall { pc, .. } => SyscallState {
            nr: -1,
            name: "not in a syscall".into(),
            summary: format!("blocked outside a syscall (e.g. a page fault), pc {pc:#x}"),
            ..SyscallState::default()
        },
        RawSyscall::Blocked { nr, args, .. } => {
            let mut d = Decoder {
                ctx,
                st: SyscallState {
                    nr,
                    name: name(ctx.arch, nr),
                    args: args.to_vec(),
                    ..SyscallState::default()
                },
                a: args,
            };
            d.run();
            d.st
        }
    }
}

struct Decoder<'a, 'b> {
    ctx: &'b Context<'a>,
    st: SyscallState,
    a: [u64; 6],
}

impl Decoder<'_, '_> {
    fn arg(&mut self, name: &str, value: impl Into<String>) {
        self.st.decoded.push(SyscallArg {
            name: name.into(),
            value: value.into(),
        });
    }

    fn fail(&mut self, why: String) {
        if self.st.decode_error.is_none() {
            self.st.decode_error = Some(why);
        }
    }

    fn fd(&self, i: usize) -> i32 {
        self.a[i] as i32
    }

    fn wait_fd(&mut self, fd: i32) {
        self.st.waits_on.push(WaitObject::Fd {
            fd,
            events: vec![],
            via_epoll: None,
        });
    }

    fn summary_from_decoded(&mut self) {
        let parts: Vec<&str> = self.st.decoded.iter().map(|a| a.value.as_str()).collect();
        self.st.summary = format!("{}({})", self.st.name, parts.join(", "));
    }

    fn run(&mut self) {
        let name = self.st.name.clone();
        match name.as_str() {
            "poll" => self.poll(false),
            "ppoll" => self.poll(true),
            "select" => self.select(false),
            "pselect6" => self.select(true),
            "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => self.epoll(&name),
            "read" | "write" | "readv" | "writev" | "pread64" | "pwrite64" | "preadv"
            | "pwritev" | "preadv2" | "pwritev2" | "recvfrom" | "recvmsg" | "recvmmsg"
            | "sendto" | "sendmsg" | "sendmmsg" | "connect" | "accept" | "accept4" | "fsync"
            | "fdatasync" | "ioctl" | "getdents64" | "sync_file_range" | "fallocate"
            | "ftruncate" | "close" | "shutdown" => self.on_fd(),
            "sendfile" | "splice" | "copy_file_range" | "tee" => self.two_fds(),
            "futex" => futex::decode_futex(self.ctx, &self.a, &mut self.st),
            "futex_wait" => futex::decode_futex_wait(self.ctx, &self.a, &mut self.st),
            "nanosleep" => self.nanosleep(),
            "clock_nanosleep" => self.clock_nanosleep(),
            "wait4" => self.wait4(),
            "waitid" => self.waitid(),
            "flock" => self.flock(),
            "fcntl" => self.fcntl(),
            "io_getevents" | "io_pgetevents" => self.io_getevents(),
            "io_uring_enter" => self.io_uring_enter(),
            // A path as the first argument, or the second after a directory fd.
            "stat" | "lstat" | "open" | "creat" | "access" | "readlink" | "statfs" | "truncate"
            | "chdir" | "mkdir" | "rmdir" | "unlink" | "execve" | "getxattr" | "lgetxattr"
            | "listxattr" | "chmod" | "chown" | "lchown" | "utime" | "utimes" => self.path(None, 0),
            "newfstatat" | "fstatat64" | "statx" | "openat" | "openat2" | "faccessat"
            | "faccessat2" | "readlinkat" | "mkdirat" | "unlinkat" | "fchmodat" | "fchownat"
            | "utimensat" | "execveat" | "name_to_handle_at" => self.path(Some(0), 1),
            "pause" => {
                self.st.waits_on.push(WaitObject::Signal);
                self.st.summary = "pause()".into();
            }
            "rt_sigsuspend" | "rt_sigtimedwait" => {
                self.st.waits_on.push(WaitObject::Signal);
                if name == "rt_sigtimedwait" {
                    let t = self.a[2];
                    self.st.timeout_ms = self.timespec_timeout(t);
                }
                self.raw_summary(4);
            }
            _ => self.raw_summary(6),
        }
        if self.st.summary.is_empty() {
            self.summary_from_decoded();
        }
    }

    fn raw_summary(&mut self, n: usize) {
        let parts: Vec<String> = self.a.iter().take(n).map(|v| format!("{v:#x}")).collect();
        self.st.summary = format!("{}({})", self.st.name, parts.join(", "));
    }

    /// A relative `struct timespec *` timeout: NULL is infinite (-1).
    fn timespec_timeout(&mut self, ptr: u64) -> Option<i64> {
        if ptr == 0 {
            return Some(-1);
        }
        match self.ctx.mem.read_i64_pair(ptr) {
            Ok((s, ns)) => Some(s.saturating_mul(1000).saturating_add(ns / 1_000_000)),
            Err(e) => {
                self.fail(format!("timeout at {ptr:#x}: {e}"));
                None
            }
        }
    }

    fn on_fd(&mut self) {
        let fd = self.fd(0);
        self.arg("fd", fd.to_string());
        let rest = match self.st.name.as_str() {
            "read" | "write" | "pread64" | "pwrite64" => vec![
                ("buf", format!("{:#x}", self.a[1])),
                ("count", self.a[2].to_string()),
            ],
            "readv" | "writev" | "preadv" | "pwritev" | "preadv2" | "pwritev2" => vec![
                ("iov", format!("{:#x}", self.a[1])),
                ("iovcnt", self.a[2].to_string()),
            ],
            "recvfrom" | "sendto" => vec![
                ("buf", format!("{:#x}", self.a[1])),
                ("len", self.a[2].to_string()),
            ],
            _ => vec![],
        };
        for (n, v) in rest {
            self.arg(n, v);
        }
        self.wait_fd(fd);
    }

    /// A call on a path: the path from the target's memory (untrusted bytes, kept exact in
    /// `path`, quoted in the summary), and the directory it is relative to.
    fn path(&mut self, dirfd_arg: Option<usize>, path_arg: usize) {
        let dirfd = dirfd_arg.map(|i| self.fd(i));
        if let Some(d) = dirfd {
            self.arg(
                "dirfd",
                if d == libc::AT_FDCWD {
                    "AT_FDCWD".to_string()
                } else {
                    d.to_string()
                },
            );
        }
        match super::memory::read_c_string(self.ctx.mem, self.a[path_arg]) {
            Ok(bytes) => {
                let text = hangscope_model::Text::from_bytes(bytes);
                self.arg("pathname", format!("\"{}\"", text.escaped_cut(256)));
                self.st.path = Some(text);
                self.st.path_dirfd = dirfd.filter(|&d| d != libc::AT_FDCWD);
            }
            Err(e) => {
                self.arg("pathname", format!("{:#x}", self.a[path_arg]));
                self.fail(e);
            }
        }
    }

    fn two_fds(&mut self) {
        // sendfile(out, in, ...), splice(in, off, out, ...), copy_file_range(in, off, out, ..),
        // tee(in, out, ...).
        let (a, b) = match self.st.name.as_str() {
            "sendfile" | "tee" => (self.fd(0), self.fd(1)),
            _ => (self.fd(0), self.fd(2)),
        };
        self.arg("fd", a.to_string());
        self.arg("fd", b.to_string());
        self.wait_fd(a);
        self.wait_fd(b);
    }

    fn poll(&mut self, ppoll: bool) {
        let (ptr, nfds) = (self.a[0], self.a[1]);
        let shown = nfds.min(4096) as usize;
        let mut items = Vec::new();
        match self.ctx.mem.read(ptr, shown * 8) {
            Ok(bytes) => {
                for i in 0..shown {
                    let fd = i32_at(&bytes, i * 8);
                    let events = i16_at(&bytes, i * 8 + 4) as u16;
                    let names = poll_events(events);
                    items.push(format!("{{fd={fd}, events={}}}", names.join("|")));
                    // A negative fd is ignored by poll (poll(2)).
                    if fd >= 0 {
                        self.st.waits_on.push(WaitObject::Fd {
                            fd,
                            events: names,
                            via_epoll: None,
                        });
                    }
                }
            }
            Err(e) => self.fail(format!("pollfd array at {ptr:#x}: {e}")),
        }
        if (shown as u64) < nfds {
            items.push("...".into());
        }
        let list = if self.st.decode_error.is_some() {
            format!("{ptr:#x}")
        } else {
            format!("[{}]", items.join(", "))
        };
        self.arg("fds", list);
        self.arg("nfds", nfds.to_string());
        if ppoll {
            let t = self.a[2];
            self.st.timeout_ms = self.timespec_timeout(t);
            let shown = match self.st.timeout_ms {
                Some(-1) => "NULL".to_string(),
                Some(ms) => format!("{ms} ms"),
                None => format!("{t:#x}"),
            };
            self.arg("tmo_p", shown);
        } else {
            let ms = self.a[2] as i32;
            self.st.timeout_ms = Some(if ms < 0 { -1 } else { ms as i64 });
            self.arg("timeout", ms.to_string());
        }
    }

    fn select(&mut self, pselect: bool) {
        let nfds = (self.a[0] as i32).clamp(0, 65536) as usize;
        let words = nfds.div_ceil(64);
        let mut sets = Vec::new();
        for (i, label) in [(1usize, "read"), (2, "write"), (3, "except")] {
            let ptr = self.a[i];
            if ptr == 0 || words == 0 {
                sets.push("NULL".to_string());
                continue;
            }
            match self.ctx.mem.read(ptr, words * 8) {
                Ok(bytes) => {
                    let fds: Vec<i32> = (0..nfds)
                        .filter(|&fd| {
                            let w = i64_at(&bytes, (fd / 64) * 8) as u64;
                            w & (1u64 << (fd % 64)) != 0
                        })
                        .map(|fd| fd as i32)
                        .collect();
                    for &fd in &fds {
                        self.st.waits_on.push(WaitObject::Fd {
                            fd,
                            events: vec![label.to_string()],
                            via_epoll: None,
                        });
                    }
                    let shown: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
                    sets.push(format!("[{}]", shown.join(" ")));
                }
                Err(e) => {
                    self.fail(format!("{label} fd_set at {ptr:#x}: {e}"));
                    sets.push(format!("{ptr:#x}"));
                }
            }
        }
        self.arg("nfds", nfds.to_string());
        for (label, s) in ["readfds", "writefds", "exceptfds"].iter().zip(sets) {
            self.arg(label, s);
        }
        let t = self.a[4];
        if pselect {
            self.st.timeout_ms = self.timespec_timeout(t);
        } else if t == 0 {
            self.st.timeout_ms = Some(-1);
        } else {
            // struct timeval: seconds, microseconds.
            match self.ctx.mem.read_i64_pair(t) {
                // The target's memory: any values, not only those select accepts.
                Ok((s, us)) => {
                    self.st.timeout_ms = Some(s.saturating_mul(1000).saturating_add(us / 1000))
                }
                Err(e) => self.fail(format!("timeval at {t:#x}: {e}")),
            }
        }
        let shown = match self.st.timeout_ms {
            Some(-1) => "NULL".to_string(),
            Some(ms) => format!("{ms} ms"),
            None => format!("{t:#x}"),
        };
        self.arg("timeout", shown);
    }

    fn epoll(&mut self, name: &str) {
        let epfd = self.fd(0);
        self.arg("epfd", epfd.to_string());
        self.arg("events", format!("{:#x}", self.a[1]));
        self.arg("maxevents", (self.a[2] as i32).to_string());
        if name == "epoll_pwait2" {
            let t = self.a[3];
            self.st.timeout_ms = self.timespec_timeout(t);
        } else {
            let ms = self.a[3] as i32;
            self.st.timeout_ms = Some(if ms < 0 { -1 } else { ms as i64 });
        }
        let shown = match self.st.timeout_ms {
            Some(ms) if ms >= 0 => ms.to_string(),
            Some(_) => "-1".into(),
            None => format!("{:#x}", self.a[3]),
        };
        self.arg("timeout", shown);
        self.wait_fd(epfd);
        match epoll_watches(self.ctx.fds, epfd) {
            Some(watches) => {
                for w in watches {
                    self.st.waits_on.push(WaitObject::Fd {
                        fd: w.tfd,
                        events: w.events_decoded.clone(),
                        via_epoll: Some(epfd),
                    });
                }
            }
            None => self.fail(format!(
                "watch list of epoll fd {epfd}: its fdinfo was not read"
            )),
        }
    }

    fn nanosleep(&mut self) {
        let req = self.a[0];
        self.sleep_at(req, false, 1);
        let shown = self.sleep_text(req);
        self.arg("req", shown);
        self.arg("rem", format!("{:#x}", self.a[1]));
    }

    fn clock_nanosleep(&mut self) {
        let clock = self.a[0] as i32;
        let abs = self.a[1] & 1 != 0; // TIMER_ABSTIME
        let req = self.a[2];
        self.arg("clockid", clock_name(clock));
        self.arg("flags", if abs { "TIMER_ABSTIME" } else { "0" });
        self.sleep_at(req, abs, clock);
        let shown = self.sleep_text(req);
        self.arg("req", shown);
        self.arg("rem", format!("{:#x}", self.a[3]));
    }

    /// Reads the requested sleep; an absolute one becomes the time left on its clock.
    fn sleep_at(&mut self, req: u64, abs: bool, clock: i32) {
        match self.ctx.mem.read_i64_pair(req) {
            Ok((s, ns)) => {
                let mut total = (s as i128) * 1_000_000_000 + ns as i128;
                if abs {
                    total -= clock_now_ns(clock) as i128;
                }
                let total = total.max(0) as u64;
                self.st.timeout_ms = Some((total / 1_000_000) as i64);
                self.st.waits_on.push(WaitObject::Sleep { ns: total });
            }
            Err(e) => {
                self.fail(format!("timespec at {req:#x}: {e}"));
                self.st.waits_on.push(WaitObject::Sleep { ns: 0 });
            }
        }
    }

    fn sleep_text(&self, req: u64) -> String {
        match self.st.waits_on.last() {
            Some(WaitObject::Sleep { ns }) if self.st.decode_error.is_none() => {
                format!(
                    "{{tv_sec={}, tv_nsec={}}}",
                    ns / 1_000_000_000,
                    ns % 1_000_000_000
                )
            }
            _ => format!("{req:#x}"),
        }
    }

    fn wait4(&mut self) {
        let pid = self.a[0] as i32;
        self.arg("pid", pid.to_string());
        self.arg("wstatus", format!("{:#x}", self.a[1]));
        self.arg("options", format!("{:#x}", self.a[2]));
        self.st.waits_on.push(WaitObject::Process { pid });
        self.st.timeout_ms = Some(-1);
    }

    fn waitid(&mut self) {
        let idtype = self.a[0] as i32;
        let id = self.a[1] as i32;
        let (label, pid) = match idtype {
            0 => ("P_ALL", -1),
            1 => ("P_PID", id),
            2 => ("P_PGID", -id),
            3 => ("P_PIDFD", -1),
            _ => ("?", -1),
        };
        self.arg("idtype", label);
        self.arg("id", id.to_string());
        self.st.waits_on.push(WaitObject::Process { pid });
        self.st.timeout_ms = Some(-1);
    }

    fn flock(&mut self) {
        let fd = self.fd(0);
        let op = self.a[1] as i32;
        let mut names = Vec::new();
        for (bit, n) in [
            (1, "LOCK_SH"),
            (2, "LOCK_EX"),
            (4, "LOCK_NB"),
            (8, "LOCK_UN"),
        ] {
            if op & bit != 0 {
                names.push(n);
            }
        }
        let op = names.join("|");
        self.arg("fd", fd.to_string());
        self.arg("operation", op.clone());
        self.st.waits_on.push(WaitObject::Lock { fd, op });
        self.st.timeout_ms = Some(-1);
    }

    fn fcntl(&mut self) {
        let fd = self.fd(0);
        let cmd = self.a[1] as i32;
        let cmd_name = match cmd {
            5 => "F_GETLK",
            6 => "F_SETLK",
            7 => "F_SETLKW",
            36 => "F_OFD_GETLK",
            37 => "F_OFD_SETLK",
            38 => "F_OFD_SETLKW",
            _ => "",
        };
        self.arg("fd", fd.to_string());
        if cmd_name.is_empty() {
            self.arg("cmd", cmd.to_string());
            self.wait_fd(fd);
            return;
        }
        self.arg("cmd", cmd_name);
        // struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
        let ptr = self.a[2];
        let lock = match self.ctx.mem.read(ptr, 32) {
            Ok(b) => {
                let kind = match i16_at(&b, 0) {
                    0 => "F_RDLCK",
                    1 => "F_WRLCK",
                    2 => "F_UNLCK",
                    _ => "?",
                };
                let whence = match i16_at(&b, 2) {
                    0 => "SEEK_SET",
                    1 => "SEEK_CUR",
                    2 => "SEEK_END",
                    _ => "?",
                };
                let (start, len) = (i64_at(&b, 8), i64_at(&b, 16));
                let range = if len == 0 {
                    format!("{start}-EOF")
                } else {
                    // Read from the target's memory, so not necessarily a range the kernel
                    // accepts (it refuses one past i64::MAX with EOVERFLOW).
                    format!("{start}-{}", start.saturating_add(len).saturating_sub(1))
                };
                self.arg(
                    "lock",
                    format!("{{l_type={kind}, l_whence={whence}, l_start={start}, l_len={len}}}"),
                );
                format!("{cmd_name} {kind} {range}")
            }
            Err(e) => {
                self.fail(format!("struct flock at {ptr:#x}: {e}"));
                self.arg("lock", format!("{ptr:#x}"));
                cmd_name.to_string()
            }
        };
        self.st.waits_on.push(WaitObject::Lock { fd, op: lock });
        if cmd == 7 || cmd == 38 {
            self.st.timeout_ms = Some(-1);
        }
    }

    fn io_getevents(&mut self) {
        let ctx = self.a[0];
        self.arg("ctx_id", format!("{ctx:#x}"));
        self.arg("min_nr", (self.a[1] as i64).to_string());
        self.arg("nr", (self.a[2] as i64).to_string());
        let t = self.a[4];
        self.st.timeout_ms = self.timespec_timeout(t);
        self.st.waits_on.push(WaitObject::Aio { ctx });
    }

    fn io_uring_enter(&mut self) {
        let fd = self.fd(0);
        self.arg("fd", fd.to_string());
        self.arg("to_submit", (self.a[1] as u32).to_string());
        self.arg("min_complete", (self.a[2] as u32).to_string());
        self.arg("flags", format!("{:#x}", self.a[3] as u32));
        self.wait_fd(fd);
    }
}

/// The watch list of an epoll fd, from its fdinfo.
fn epoll_watches(fds: &[Fd], epfd: i32) -> Option<&[EpollWatch]> {
    let i = fds.binary_search_by_key(&epfd, |f| f.fd).ok()?;
    fds.get(i)?
        .info
        .as_ref()
        .map(|i| i.epoll_watches.as_slice())
}

/// poll(2) event bits, the same values on x86_64 and aarch64.
pub fn poll_events(ev: u16) -> Vec<String> {
    const NAMED: &[(u16, &str)] = &[
        (0x1, "POLLIN"),
        (0x2, "POLLPRI"),
        (0x4, "POLLOUT"),
        (0x8, "POLLERR"),
        (0x10, "POLLHUP"),
        (0x20, "POLLNVAL"),
        (0x40, "POLLRDNORM"),
        (0x80, "POLLRDBAND"),
        (0x100, "POLLWRNORM"),
        (0x200, "POLLWRBAND"),
        (0x400, "POLLMSG"),
        (0x2000, "POLLRDHUP"),
    ];
    let mut out: Vec<String> = NAMED
        .iter()
        .filter(|(b, _)| ev & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    if out.is_empty() {
        out.push("0".into());
    }
    out
}

pub fn clock_name(id: i32) -> String {
    match id {
        0 => "CLOCK_REALTIME".into(),
        1 => "CLOCK_MONOTONIC".into(),
        2 => "CLOCK_PROCESS_CPUTIME_ID".into(),
        3 => "CLOCK_THREAD_CPUTIME_ID".into(),
        4 => "CLOCK_MONOTONIC_RAW".into(),
        5 => "CLOCK_REALTIME_COARSE".into(),
        6 => "CLOCK_MONOTONIC_COARSE".into(),
        7 => "CLOCK_BOOTTIME".into(),
        11 => "CLOCK_TAI".into(),
        n => n.to_string(),
    }
}

/// The current time on a clock, for absolute timeouts. CPU-time clocks read as 0.
pub fn clock_now_ns(id: i32) -> u64 {
    let clock = match id {
        0 | 5 | 8 => nix::time::ClockId::CLOCK_REALTIME,
        7 | 9 => nix::time::ClockId::CLOCK_BOOTTIME,
        1 | 4 | 6 => nix::time::ClockId::CLOCK_MONOTONIC,
        _ => return 0,
    };
    nix::time::clock_gettime(clock)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::memory::FakeMemory;
    use super::*;

    fn ctx<'a>(mem: &'a FakeMemory, fds: &'a [Fd]) -> Context<'a> {
        Context {
            arch: Arch::X86_64,
            mem,
            fds,
            tids: &[],
        }
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse("running\n").unwrap(), RawSyscall::Running);
        assert_eq!(
            parse("-1 0x7ffd1000 0x401000\n").unwrap(),
            RawSyscall::NotInSyscall {
                sp: 0x7ffd1000,
                pc: 0x401000
            }
        );
        let r = parse(
            "230 0x0 0x0 0x7ffc89a0f380 0x7ffc89a0f3c0 0x0 0x0 0x7ffc89a0f368 0x7f07edc3d503\n",
        )
        .unwrap();
        assert_eq!(
            r.key(),
            Some((230, [0, 0, 0x7ffc89a0f380, 0x7ffc89a0f3c0, 0, 0]))
        );
        assert!(parse("").is_err());
        assert!(parse("7 0x1").is_err());
        assert!(parse("-1 zz").is_err());
    }

    #[test]
    fn a_path_argument_is_read_across_a_page_and_kept_exact() {
        // newfstatat(AT_FDCWD, path, ...) with the path's last bytes on the next page, and
        // bytes that are not UTF-8.
        let addr = 0x2000 - 4;
        let mut bytes = b"/mnt/x\xff/file".to_vec();
        bytes.push(0);
        // Memory is mapped in whole pages: the second page is all readable.
        let mut next_page = bytes[4..].to_vec();
        next_page.resize(4096, b'z');
        let mem = FakeMemory(vec![(addr, bytes[..4].to_vec()), (0x2000, next_page)]);
        let raw = RawSyscall::Blocked {
            nr: 262,
            args: [libc::AT_FDCWD as u64, addr, 0, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.name, "newfstatat");
        assert_eq!(
            st.path.as_ref().map(|p| p.as_bytes().to_vec()),
            Some(b"/mnt/x\xff/file".to_vec())
        );
        assert_eq!(st.path_dirfd, None);
        assert!(
            st.summary.starts_with("newfstatat(AT_FDCWD, \"/mnt/x"),
            "{}",
            st.summary
        );
        // An unreadable pointer: no path, and the reason.
        let st = decode(&raw, &ctx(&FakeMemory(vec![]), &[]));
        assert_eq!(st.path, None);
        assert!(st.decode_error.is_some());
    }

    #[test]
    fn names_on_both_architectures() {
        assert_eq!(name(Arch::X86_64, 230), "clock_nanosleep");
        assert_eq!(name(Arch::X86_64, 7), "poll");
        assert_eq!(name(Arch::X86_64, 202), "futex");
        assert_eq!(name(Arch::X86_64, 441), "epoll_pwait2");
        assert_eq!(name(Arch::Aarch64, 115), "clock_nanosleep");
        assert_eq!(name(Arch::Aarch64, 73), "ppoll");
        assert_eq!(name(Arch::Aarch64, 98), "futex");
        assert_eq!(name(Arch::Aarch64, 63), "read");
        assert_eq!(name(Arch::Aarch64, 244), "syscall_244");
        assert_eq!(name(Arch::X86_64, -5), "syscall_-5");
        assert_eq!(name(Arch::X86_64, 100_000), "syscall_100000");
    }

    #[test]
    fn poll_reads_the_pollfd_array() {
        // Two pollfds: {29, POLLIN}, {-1, POLLIN} (ignored by poll).
        let mut bytes = Vec::new();
        for (fd, ev) in [(29i32, 1i16), (-1, 1)] {
            bytes.extend_from_slice(&fd.to_ne_bytes());
            bytes.extend_from_slice(&ev.to_ne_bytes());
            bytes.extend_from_slice(&0i16.to_ne_bytes());
        }
        let mem = FakeMemory(vec![(0x1000, bytes)]);
        let raw = RawSyscall::Blocked {
            nr: 7,
            args: [0x1000, 2, 10_000, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.name, "poll");
        assert_eq!(st.timeout_ms, Some(10_000));
        assert_eq!(
            st.waits_on,
            vec![WaitObject::Fd {
                fd: 29,
                events: vec!["POLLIN".into()],
                via_epoll: None
            }]
        );
        assert_eq!(
            st.summary,
            "poll([{fd=29, events=POLLIN}, {fd=-1, events=POLLIN}], 2, 10000)"
        );
        assert_eq!(st.decode_error, None);
    }

    #[test]
    fn refused_memory_is_a_decode_error_not_a_failure() {
        let mem = FakeMemory(vec![]);
        let raw = RawSyscall::Blocked {
            nr: 35,
            args: [0x2000, 0, 0, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.name, "nanosleep");
        assert!(st.decode_error.as_deref().unwrap_or("").contains("0x2000"));
        assert_eq!(st.summary, "nanosleep(0x2000, 0x0)");
    }

    #[test]
    fn select_reads_fd_sets_and_timeval() {
        let mut set = vec![0u8; 8];
        set[0] = 0b1000_1000; // fds 3 and 7
        let mut tv = Vec::new();
        tv.extend_from_slice(&2i64.to_ne_bytes());
        tv.extend_from_slice(&500_000i64.to_ne_bytes());
        let mem = FakeMemory(vec![(0x100, set), (0x200, tv)]);
        let raw = RawSyscall::Blocked {
            nr: 23,
            args: [8, 0x100, 0, 0, 0x200, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.timeout_ms, Some(2500));
        assert_eq!(st.summary, "select(8, [3 7], NULL, NULL, 2500 ms)");
        assert_eq!(st.waits_on.len(), 2);
    }

    /// Found by fuzz/ (tests/fixtures/fuzz-regressions/syscall/select-timeval-overflow):
    /// the timeval is the target's memory, read after the call started.
    #[test]
    fn select_timeval_of_any_value_is_a_timeout_not_a_panic() {
        let mut tv = Vec::new();
        tv.extend_from_slice(&i64::MAX.to_ne_bytes());
        tv.extend_from_slice(&5i64.to_ne_bytes());
        let mem = FakeMemory(vec![(0x200, tv)]);
        let raw = RawSyscall::Blocked {
            nr: 23,
            args: [0, 0, 0, 0, 0x200, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.timeout_ms, Some(i64::MAX));
        assert_eq!(st.decode_error, None);
    }

    /// Found by fuzz/ (tests/fixtures/fuzz-regressions/syscall/fcntl-range-overflow).
    #[test]
    fn fcntl_lock_range_past_i64_max_is_shown_not_a_panic() {
        let mut fl = vec![0u8; 32];
        fl[0..2].copy_from_slice(&1i16.to_ne_bytes()); // F_WRLCK
        fl[8..16].copy_from_slice(&(i64::MAX - 1).to_ne_bytes());
        fl[16..24].copy_from_slice(&10i64.to_ne_bytes());
        let mem = FakeMemory(vec![(0x300, fl)]);
        let raw = RawSyscall::Blocked {
            nr: 72,
            args: [4, 7, 0x300, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        let op = format!("F_SETLKW F_WRLCK {}-{}", i64::MAX - 1, i64::MAX - 1);
        assert_eq!(st.waits_on, vec![WaitObject::Lock { fd: 4, op }]);
    }

    #[test]
    fn fcntl_setlkw_reads_struct_flock() {
        let mut fl = vec![0u8; 32];
        fl[0..2].copy_from_slice(&1i16.to_ne_bytes()); // F_WRLCK
        fl[8..16].copy_from_slice(&100i64.to_ne_bytes());
        fl[16..24].copy_from_slice(&10i64.to_ne_bytes());
        let mem = FakeMemory(vec![(0x300, fl)]);
        let raw = RawSyscall::Blocked {
            nr: 72,
            args: [4, 7, 0x300, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(
            st.waits_on,
            vec![WaitObject::Lock {
                fd: 4,
                op: "F_SETLKW F_WRLCK 100-109".into()
            }]
        );
    }

    #[test]
    fn epoll_without_fdinfo_says_so() {
        let mem = FakeMemory(vec![]);
        let raw = RawSyscall::Blocked {
            nr: 232,
            args: [5, 0x10, 16, u32::MAX as u64, 0, 0],
            sp: 0,
            pc: 0,
        };
        let st = decode(&raw, &ctx(&mem, &[]));
        assert_eq!(st.timeout_ms, Some(-1));
        assert!(st.decode_error.is_some());
        assert_eq!(st.summary, "epoll_wait(5, 0x10, 16, -1)");
    }
}
