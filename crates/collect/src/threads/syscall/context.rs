//! What a decoder is given besides the registers.

use hangscope_model::Fd;

use super::super::memory::Memory;
use super::arch::Arch;

/// What decoding needs besides the registers.
pub struct Context<'a> {
    pub arch: Arch,
    pub mem: &'a dyn Memory,
    /// The process's fds (sorted), for epoll watch lists.
    pub fds: &'a [Fd],
    /// Threads of the process, to recognise a mutex owner's TID.
    pub tids: &'a [i32],
}
