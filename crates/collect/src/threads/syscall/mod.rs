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

mod aio;
mod arch;
mod clock;
mod context;
mod decoder;
mod fds;
mod futex;
mod lock;
mod poll;
mod raw;
mod restart;
mod sleep;
#[cfg(test)]
mod tests;
mod wait;

pub use arch::{Arch, name};
pub use clock::{Clock, SystemClock, clock_name, clock_now_ns};
pub use context::Context;
pub use decoder::{decode, decode_with};
pub use poll::poll_events;
pub use raw::{RawSyscall, parse};
pub use restart::resumed_call;
