//! Where /proc is. Readers go through this so a recorded tree can stand in for the live one.

use std::io;
use std::path::{Path, PathBuf};

use hangscope_model::Text;

#[derive(Debug, Clone)]
pub struct ProcRoot {
    path: PathBuf,
}

impl Default for ProcRoot {
    fn default() -> Self {
        ProcRoot {
            path: PathBuf::from("/proc"),
        }
    }
}

impl ProcRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcRoot { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pid(&self, pid: i32) -> PathBuf {
        self.path.join(pid.to_string())
    }

    pub fn task(&self, pid: i32, tid: i32) -> PathBuf {
        self.pid(pid).join("task").join(tid.to_string())
    }

    /// Reads a whole /proc file. These are small and generated on read, so one read is enough.
    pub fn read(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        let bytes = std::fs::read(self.path.join(rel))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn read_pid(&self, pid: i32, file: &str) -> io::Result<String> {
        self.read(format!("{pid}/{file}"))
    }

    /// A /proc file as bytes: for names and arguments, which need not be UTF-8.
    pub fn read_pid_bytes(&self, pid: i32, file: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path.join(format!("{pid}/{file}")))
    }

    /// /proc/PID/comm, exactly (without its newline).
    pub fn comm(&self, pid: i32) -> io::Result<Text> {
        let mut bytes = self.read_pid_bytes(pid, "comm")?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        Ok(Text::from_bytes(bytes))
    }
}

/// The comm in a stat line, exactly: between the first '(' and the last ')', as the kernel
/// writes "pid (comm) state ..." and a comm may hold both.
pub fn comm_of_stat(stat: &[u8]) -> Option<Text> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(open + 1..close).map(Text::from_bytes)
}
