//! Where /proc is. Readers go through this so a recorded tree can stand in for the live one.

use std::io;
use std::path::{Path, PathBuf};

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
}
