//! restart_syscall(2): a poll, a sleep or a timed futex wait that a signal or a stop
//! interrupted (a debugger or strace attaching, SIGSTOP and SIGCONT, a handler) resumes in it,
//! not in its own call. The syscall file then names restart_syscall, with the argument
//! registers of the call it resumes — the kernel keeps its own copy of what it needs in the
//! thread's restart block, which /proc does not show. Which call that was, wchan says: the
//! poll's and the futex wait's sleeping functions keep their names (`poll_schedule_timeout`,
//! `futex_do_wait`); a resumed nanosleep sleeps in scheduler functions wchan skips, and shows
//! the syscall entry (`do_syscall_64`), its arguments saying which of the two sleeps it was.
//! After anyone has run strace or gdb on a process, most of its waits are such resumed calls:
//! read as restart_syscall they say nothing of what they wait on.

use super::arch::{Arch, name};

/// The call a thread blocked in restart_syscall resumes, by its syscall number, or `None`
/// when nothing says which.
pub fn resumed_call(arch: Arch, nr: i64, wchan: Option<&str>, args: &[u64; 6]) -> Option<i64> {
    if name(arch, nr) != "restart_syscall" {
        return None;
    }
    let wchan = wchan.unwrap_or_default();
    let call = if wchan.contains("poll") {
        "poll"
    } else if wchan.contains("futex") {
        "futex"
    } else if wchan.contains("nanosleep") || wchan.starts_with("do_syscall") || wchan.is_empty() {
        // clock_nanosleep(clock id, flags, request, remain): a small clock id, flags 0 or
        // TIMER_ABSTIME, a request pointer; nanosleep(request, remain): a pointer first.
        if args[0] < 16 && args[1] <= 1 && args[2] != 0 {
            "clock_nanosleep"
        } else if args[0] >= 4096 {
            "nanosleep"
        } else {
            return None;
        }
    } else {
        return None;
    };
    number(arch, call)
}

fn number(arch: Arch, call: &str) -> Option<i64> {
    (0..1024).find(|&nr| name(arch, nr) == call)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded here (Linux 6.18) from tests/fixtures/stacks/blocked.c after gdb attached and
    /// detached: /proc/PID/task/TID/{syscall,wchan} of its poller and its sleeper.
    #[test]
    fn a_resumed_poll_and_sleep_are_named_from_wchan_and_their_arguments() {
        let x = Arch::X86_64;
        let poll = [
            0x7efe3e62de88,
            0x1,
            0xffffffff,
            0x7efe3e6408d0,
            0,
            0x7ffcd8ec4287,
        ];
        assert_eq!(
            resumed_call(x, 219, Some("poll_schedule_timeout.constprop.0"), &poll),
            Some(7)
        );
        let sleep = [0, 0, 0x7efe3d62bea0, 0, 0, 0x7ffcd8ec4287];
        assert_eq!(
            resumed_call(x, 219, Some("do_syscall_64"), &sleep),
            Some(230)
        );
        let nanosleep = [0x7ffc_0000_1000, 0, 0, 0, 0, 0];
        assert_eq!(
            resumed_call(x, 219, Some("do_syscall_64"), &nanosleep),
            Some(35)
        );
        assert_eq!(
            resumed_call(x, 219, Some("futex_do_wait"), &poll),
            Some(202)
        );
        // Another call, or a wchan that says nothing: left as it is.
        assert_eq!(
            resumed_call(x, 7, Some("poll_schedule_timeout"), &poll),
            None
        );
        assert_eq!(resumed_call(x, 219, Some("pipe_read"), &poll), None);
        assert_eq!(resumed_call(x, 219, Some("do_syscall_64"), &[0; 6]), None);
    }
}
