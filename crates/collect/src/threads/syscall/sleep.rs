//! nanosleep and clock_nanosleep: how long is left.

use hangscope_model::WaitObject;

use super::clock::clock_name;
use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn nanosleep(&mut self) {
        let req = self.a[0];
        self.sleep_at(req, false, 1);
        let shown = self.sleep_text(req);
        self.arg("req", shown);
        self.arg("rem", format!("{:#x}", self.a[1]));
    }

    pub(super) fn clock_nanosleep(&mut self) {
        let clock = self.a[0] as i32;
        let abs = self.a[1] & 1 != 0; // TIMER_ABSTIME
        let req = self.a[2];
        self.arg("clockid", clock_name(clock));
        self.arg("flags", if abs { "TIMER_ABSTIME" } else { "0" });
        self.sleep_at(req, abs, clock);
        let shown = self.sleep_text(req);
        self.arg("req", shown);
        self.arg("rem", format!("{:#x}", self.a[3]));
    }

    /// Reads the requested sleep; an absolute one becomes the time left on its clock.
    fn sleep_at(&mut self, req: u64, abs: bool, clock: i32) {
        match self.ctx.mem.read_i64_pair(req) {
            Ok((s, ns)) => {
                let mut total = (s as i128) * 1_000_000_000 + ns as i128;
                if abs {
                    total -= self.clock.now_ns(clock) as i128;
                }
                let total = total.max(0) as u64;
                self.st.timeout_ms = Some((total / 1_000_000) as i64);
                self.st.waits_on.push(WaitObject::Sleep { ns: total });
            }
            Err(e) => {
                self.fail(format!("timespec at {req:#x}: {e}"));
                self.st.waits_on.push(WaitObject::Sleep { ns: 0 });
            }
        }
    }

    fn sleep_text(&self, req: u64) -> String {
        match self.st.waits_on.last() {
            Some(WaitObject::Sleep { ns }) if self.st.decode_error.is_none() => {
                format!(
                    "{{tv_sec={}, tv_nsec={}}}",
                    ns / 1_000_000_000,
                    ns % 1_000_000_000
                )
            }
            _ => format!("{req:#x}"),
        }
    }
}
