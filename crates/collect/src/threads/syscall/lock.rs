//! flock and fcntl record locks.

use hangscope_model::WaitObject;

use super::super::memory::{i16_at, i64_at};
use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn flock(&mut self) {
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

    pub(super) fn fcntl(&mut self) {
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
}
