//! The file's line, read into its three forms.

use procfs_core::FromRead;
use procfs_core::process::Syscall;

use crate::error::ReadError;

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

/// A line of the form the kernel writes; any other is malformed (the error quotes it).
pub fn parse(text: &str) -> Result<RawSyscall, ReadError> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("-1 ") {
        let mut it = rest
            .split_whitespace()
            .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16));
        return match (it.next(), it.next()) {
            (Some(Ok(sp)), Some(Ok(pc))) => Ok(RawSyscall::NotInSyscall { sp, pc }),
            _ => Err(ReadError::malformed(format!("malformed: {t:?}"))),
        };
    }
    match Syscall::from_read(t.as_bytes())
        .map_err(|e| ReadError::malformed(format!("malformed {t:?}: {e}")))?
    {
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
        _ => Err(ReadError::malformed(format!("unexpected form: {t:?}"))),
    }
}
