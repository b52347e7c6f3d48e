//! Syscall numbers named from the host architecture's table.

use super::super::{syscall_table_aarch64, syscall_table_x86_64};

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
