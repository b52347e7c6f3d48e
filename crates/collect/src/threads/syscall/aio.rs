//! Asynchronous I/O: io_getevents and io_uring_enter.

use hangscope_model::WaitObject;

use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn io_getevents(&mut self) {
        let ctx = self.a[0];
        self.arg("ctx_id", format!("{ctx:#x}"));
        self.arg("min_nr", (self.a[1] as i64).to_string());
        self.arg("nr", (self.a[2] as i64).to_string());
        let t = self.a[4];
        self.st.timeout_ms = self.timespec_timeout(t);
        self.st.waits_on.push(WaitObject::Aio { ctx });
    }

    pub(super) fn io_uring_enter(&mut self) {
        let fd = self.fd(0);
        self.arg("fd", fd.to_string());
        self.arg("to_submit", (self.a[1] as u32).to_string());
        self.arg("min_complete", (self.a[2] as u32).to_string());
        self.arg("flags", format!("{:#x}", self.a[3] as u32));
        self.wait_fd(fd);
    }
}
