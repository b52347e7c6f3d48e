//! The target's memory, read with process_vm_readv(2): the pollfd array of a poll, the timespec
//! of a sleep, the owner word of a mutex. Read-only and without stopping the target (no ptrace
//! attach); the kernel checks PTRACE_MODE_ATTACH_REALCREDS, so it needs root or
//! CAP_SYS_PTRACE over the target, and may be refused by Yama or an LSM.

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use crate::error::{ReadError, ReadErrorKind};

/// Largest single read: a pollfd array of 8,192 entries, or a 1,024-fd select set many times.
pub const MAX_READ: usize = 64 * 1024;

/// Where syscall arguments point. A trait so decoding is tested on recorded bytes.
pub trait Memory {
    /// Reads exactly `len` bytes at `addr`, or says why not.
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadError>;

    fn read_u32(&self, addr: u64) -> Result<u32, ReadError> {
        let b = self.read(addr, 4)?;
        Ok(i32_at(&b, 0) as u32)
    }

    fn read_i64_pair(&self, addr: u64) -> Result<(i64, i64), ReadError> {
        let b = self.read(addr, 16)?;
        Ok((i64_at(&b, 0), i64_at(&b, 8)))
    }
}

/// The longest path read from the target: PATH_MAX.
pub const MAX_PATH: usize = 4096;

/// A NUL-terminated string at `addr`, at most [`MAX_PATH`] bytes, read a page at a time so a
/// string that ends just before an unmapped page is still read whole.
pub fn read_c_string(mem: &dyn Memory, addr: u64) -> Result<Vec<u8>, ReadError> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_PATH {
        let to_page_end = (PAGE - at % PAGE) as usize;
        let chunk = mem.read(at, to_page_end.min(MAX_PATH - out.len()))?;
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
        at += chunk.len() as u64;
    }
    Err(ReadError::malformed(format!(
        "no end of string in {MAX_PATH} bytes at {addr:#x}"
    )))
}

pub fn i64_at(b: &[u8], off: usize) -> i64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        w.copy_from_slice(s);
    }
    i64::from_ne_bytes(w)
}

pub fn i32_at(b: &[u8], off: usize) -> i32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    i32::from_ne_bytes(w)
}

pub fn i16_at(b: &[u8], off: usize) -> i16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        w.copy_from_slice(s);
    }
    i16::from_ne_bytes(w)
}

/// A live thread's address space (all threads of a process share it).
pub struct LiveMemory {
    pub tid: i32,
}

impl Memory for LiveMemory {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        if addr == 0 {
            return Err(ReadError::new(
                ReadErrorKind::Errno(libc::EFAULT),
                "NULL pointer",
            ));
        }
        if len > MAX_READ {
            return Err(ReadError::other(format!(
                "{len} bytes is more than hangscope reads at once"
            )));
        }
        let mut buf = vec![0u8; len];
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        let n = process_vm_readv(
            Pid::from_raw(self.tid),
            &mut [IoSliceMut::new(&mut buf)],
            &remote,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EPERM => ReadError::new(
                ReadErrorKind::Errno(libc::EPERM),
                "process_vm_readv refused (EPERM): needs root or CAP_SYS_PTRACE over the target",
            ),
            e => ReadError::new(
                ReadErrorKind::Errno(e as i32),
                format!("process_vm_readv at {addr:#x}: {}", e.desc()),
            ),
        })?;
        if n < len {
            return Err(ReadError::other(format!(
                "process_vm_readv at {addr:#x}: short read {n}/{len}"
            )));
        }
        Ok(buf)
    }
}

/// Recorded memory for tests: (address, bytes) regions.
#[cfg(test)]
pub struct FakeMemory(pub Vec<(u64, Vec<u8>)>);

#[cfg(test)]
impl Memory for FakeMemory {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        for (base, bytes) in &self.0 {
            if addr >= *base && addr + len as u64 <= base + bytes.len() as u64 {
                let off = (addr - base) as usize;
                return Ok(bytes[off..off + len].to_vec());
            }
        }
        Err(ReadError::other(format!("no recorded memory at {addr:#x}")))
    }
}
