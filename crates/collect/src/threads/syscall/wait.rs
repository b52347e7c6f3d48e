//! wait4 and waitid: the child waited for.

use hangscope_model::WaitObject;

use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn wait4(&mut self) {
        let pid = self.a[0] as i32;
        self.arg("pid", pid.to_string());
        self.arg("wstatus", format!("{:#x}", self.a[1]));
        self.arg("options", format!("{:#x}", self.a[2]));
        self.st.waits_on.push(WaitObject::Process { pid });
        self.st.timeout_ms = Some(-1);
    }

    pub(super) fn waitid(&mut self) {
        let idtype = self.a[0] as i32;
        let id = self.a[1] as i32;
        let (label, pid) = match idtype {
            0 => ("P_ALL", -1),
            1 => ("P_PID", id),
            2 => ("P_PGID", -id),
            3 => ("P_PIDFD", -1),
            _ => ("?", -1),
        };
        self.arg("idtype", label);
        self.arg("id", id.to_string());
        self.st.waits_on.push(WaitObject::Process { pid });
        self.st.timeout_ms = Some(-1);
    }
}
