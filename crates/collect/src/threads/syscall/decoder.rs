//! One decoder per blocked thread: the dispatch by syscall name, and what every decoder family
//! shares (named arguments, the first error, relative timeouts).

use hangscope_model::{SyscallArg, SyscallState, WaitObject};

use super::arch::name;
use super::clock::{Clock, SystemClock};
use super::context::Context;
use super::futex;
use super::raw::RawSyscall;

/// Decodes one thread's syscall file, absolute timeouts against the host's clocks.
pub fn decode(raw: &RawSyscall, ctx: &Context) -> SyscallState {
    decode_with(raw, ctx, &SystemClock)
}

/// Decodes one thread's syscall file, absolute timeouts against `clock`.
pub fn decode_with(raw: &RawSyscall, ctx: &Context, clock: &dyn Clock) -> SyscallState {
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
                clock,
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

pub(super) struct Decoder<'a, 'b> {
    pub(super) ctx: &'b Context<'a>,
    pub(super) clock: &'b dyn Clock,
    pub(super) st: SyscallState,
    pub(super) a: [u64; 6],
}

impl Decoder<'_, '_> {
    pub(super) fn arg(&mut self, name: &str, value: impl Into<String>) {
        self.st.decoded.push(SyscallArg {
            name: name.into(),
            value: value.into(),
        });
    }

    pub(super) fn fail(&mut self, why: String) {
        if self.st.decode_error.is_none() {
            self.st.decode_error = Some(why);
        }
    }

    pub(super) fn fd(&self, i: usize) -> i32 {
        self.a[i] as i32
    }

    pub(super) fn wait_fd(&mut self, fd: i32) {
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
            "futex" => futex::decode_futex(self.ctx, self.clock, &self.a, &mut self.st),
            "futex_wait" => futex::decode_futex_wait(self.ctx, self.clock, &self.a, &mut self.st),
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
    pub(super) fn timespec_timeout(&mut self, ptr: u64) -> Option<i64> {
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
}
