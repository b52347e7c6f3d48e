//! Calls on one fd or two, and calls on a path.

use super::super::memory;
use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn on_fd(&mut self) {
        let fd = self.fd(0);
        self.arg("fd", fd.to_string());
        let rest = match self.st.name.as_str() {
            "read" | "write" | "pread64" | "pwrite64" => vec![
                ("buf", format!("{:#x}", self.a[1])),
                ("count", self.a[2].to_string()),
            ],
            "readv" | "writev" | "preadv" | "pwritev" | "preadv2" | "pwritev2" => vec![
                ("iov", format!("{:#x}", self.a[1])),
                ("iovcnt", self.a[2].to_string()),
            ],
            "recvfrom" | "sendto" => vec![
                ("buf", format!("{:#x}", self.a[1])),
                ("len", self.a[2].to_string()),
            ],
            _ => vec![],
        };
        for (n, v) in rest {
            self.arg(n, v);
        }
        self.wait_fd(fd);
    }

    /// A call on a path: the path from the target's memory (untrusted bytes, kept exact in
    /// `path`, quoted in the summary), and the directory it is relative to.
    pub(super) fn path(&mut self, dirfd_arg: Option<usize>, path_arg: usize) {
        let dirfd = dirfd_arg.map(|i| self.fd(i));
        if let Some(d) = dirfd {
            self.arg(
                "dirfd",
                if d == libc::AT_FDCWD {
                    "AT_FDCWD".to_string()
                } else {
                    d.to_string()
                },
            );
        }
        match memory::read_c_string(self.ctx.mem, self.a[path_arg]) {
            Ok(bytes) => {
                let text = hangscope_model::Text::from_bytes(bytes);
                self.arg("pathname", format!("\"{}\"", text.escaped_cut(256)));
                self.st.path = Some(text);
                self.st.path_dirfd = dirfd.filter(|&d| d != libc::AT_FDCWD);
            }
            Err(e) => {
                self.arg("pathname", format!("{:#x}", self.a[path_arg]));
                self.fail(e.to_string());
            }
        }
    }

    pub(super) fn two_fds(&mut self) {
        // sendfile(out, in, ...), splice(in, off, out, ...), copy_file_range(in, off, out, ..),
        // tee(in, out, ...).
        let (a, b) = match self.st.name.as_str() {
            "sendfile" | "tee" => (self.fd(0), self.fd(1)),
            _ => (self.fd(0), self.fd(2)),
        };
        self.arg("fd", a.to_string());
        self.arg("fd", b.to_string());
        self.wait_fd(a);
        self.wait_fd(b);
    }
}
