//! poll, select and epoll: the fds a thread waits on, from the target's memory and from the
//! epoll fd's fdinfo.

use hangscope_model::{EpollWatch, Fd, WaitObject};

use super::super::memory::{i16_at, i32_at, i64_at};
use super::decoder::Decoder;

impl Decoder<'_, '_> {
    pub(super) fn poll(&mut self, ppoll: bool) {
        let (ptr, nfds) = (self.a[0], self.a[1]);
        let shown = nfds.min(4096) as usize;
        let mut items = Vec::new();
        match self.ctx.mem.read(ptr, shown * 8) {
            Ok(bytes) => {
                for i in 0..shown {
                    let fd = i32_at(&bytes, i * 8);
                    let events = i16_at(&bytes, i * 8 + 4) as u16;
                    let names = poll_events(events);
                    items.push(format!("{{fd={fd}, events={}}}", names.join("|")));
                    // A negative fd is ignored by poll (poll(2)).
                    if fd >= 0 {
                        self.st.waits_on.push(WaitObject::Fd {
                            fd,
                            events: names,
                            via_epoll: None,
                        });
                    }
                }
            }
            Err(e) => self.fail(format!("pollfd array at {ptr:#x}: {e}")),
        }
        if (shown as u64) < nfds {
            items.push("...".into());
        }
        let list = if self.st.decode_error.is_some() {
            format!("{ptr:#x}")
        } else {
            format!("[{}]", items.join(", "))
        };
        self.arg("fds", list);
        self.arg("nfds", nfds.to_string());
        if ppoll {
            let t = self.a[2];
            self.st.timeout_ms = self.timespec_timeout(t);
            let shown = match self.st.timeout_ms {
                Some(-1) => "NULL".to_string(),
                Some(ms) => format!("{ms} ms"),
                None => format!("{t:#x}"),
            };
            self.arg("tmo_p", shown);
        } else {
            let ms = self.a[2] as i32;
            self.st.timeout_ms = Some(if ms < 0 { -1 } else { ms as i64 });
            self.arg("timeout", ms.to_string());
        }
    }

    pub(super) fn select(&mut self, pselect: bool) {
        let nfds = (self.a[0] as i32).clamp(0, 65536) as usize;
        let words = nfds.div_ceil(64);
        let mut sets = Vec::new();
        for (i, label) in [(1usize, "read"), (2, "write"), (3, "except")] {
            let ptr = self.a[i];
            if ptr == 0 || words == 0 {
                sets.push("NULL".to_string());
                continue;
            }
            match self.ctx.mem.read(ptr, words * 8) {
                Ok(bytes) => {
                    let fds: Vec<i32> = (0..nfds)
                        .filter(|&fd| {
                            let w = i64_at(&bytes, (fd / 64) * 8) as u64;
                            w & (1u64 << (fd % 64)) != 0
                        })
                        .map(|fd| fd as i32)
                        .collect();
                    for &fd in &fds {
                        self.st.waits_on.push(WaitObject::Fd {
                            fd,
                            events: vec![label.to_string()],
                            via_epoll: None,
                        });
                    }
                    let shown: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
                    sets.push(format!("[{}]", shown.join(" ")));
                }
                Err(e) => {
                    self.fail(format!("{label} fd_set at {ptr:#x}: {e}"));
                    sets.push(format!("{ptr:#x}"));
                }
            }
        }
        self.arg("nfds", nfds.to_string());
        for (label, s) in ["readfds", "writefds", "exceptfds"].iter().zip(sets) {
            self.arg(label, s);
        }
        let t = self.a[4];
        if pselect {
            self.st.timeout_ms = self.timespec_timeout(t);
        } else if t == 0 {
            self.st.timeout_ms = Some(-1);
        } else {
            // struct timeval: seconds, microseconds.
            match self.ctx.mem.read_i64_pair(t) {
                // The target's memory: any values, not only those select accepts.
                Ok((s, us)) => {
                    self.st.timeout_ms = Some(s.saturating_mul(1000).saturating_add(us / 1000))
                }
                Err(e) => self.fail(format!("timeval at {t:#x}: {e}")),
            }
        }
        let shown = match self.st.timeout_ms {
            Some(-1) => "NULL".to_string(),
            Some(ms) => format!("{ms} ms"),
            None => format!("{t:#x}"),
        };
        self.arg("timeout", shown);
    }

    pub(super) fn epoll(&mut self, name: &str) {
        let epfd = self.fd(0);
        self.arg("epfd", epfd.to_string());
        self.arg("events", format!("{:#x}", self.a[1]));
        self.arg("maxevents", (self.a[2] as i32).to_string());
        if name == "epoll_pwait2" {
            let t = self.a[3];
            self.st.timeout_ms = self.timespec_timeout(t);
        } else {
            let ms = self.a[3] as i32;
            self.st.timeout_ms = Some(if ms < 0 { -1 } else { ms as i64 });
        }
        let shown = match self.st.timeout_ms {
            Some(ms) if ms >= 0 => ms.to_string(),
            Some(_) => "-1".into(),
            None => format!("{:#x}", self.a[3]),
        };
        self.arg("timeout", shown);
        self.wait_fd(epfd);
        match epoll_watches(self.ctx.fds, epfd) {
            Some(watches) => {
                for w in watches {
                    self.st.waits_on.push(WaitObject::Fd {
                        fd: w.tfd,
                        events: w.events_decoded.clone(),
                        via_epoll: Some(epfd),
                    });
                }
            }
            None => self.fail(format!(
                "watch list of epoll fd {epfd}: its fdinfo was not read"
            )),
        }
    }
}

/// The watch list of an epoll fd, from its fdinfo.
fn epoll_watches(fds: &[Fd], epfd: i32) -> Option<&[EpollWatch]> {
    let i = fds.binary_search_by_key(&epfd, |f| f.fd).ok()?;
    fds.get(i)?
        .info
        .as_ref()
        .map(|i| i.epoll_watches.as_slice())
}

/// poll(2) event bits, the same values on x86_64 and aarch64.
pub fn poll_events(ev: u16) -> Vec<String> {
    const NAMED: &[(u16, &str)] = &[
        (0x1, "POLLIN"),
        (0x2, "POLLPRI"),
        (0x4, "POLLOUT"),
        (0x8, "POLLERR"),
        (0x10, "POLLHUP"),
        (0x20, "POLLNVAL"),
        (0x40, "POLLRDNORM"),
        (0x80, "POLLRDBAND"),
        (0x100, "POLLWRNORM"),
        (0x200, "POLLWRBAND"),
        (0x400, "POLLMSG"),
        (0x2000, "POLLRDHUP"),
    ];
    let mut out: Vec<String> = NAMED
        .iter()
        .filter(|(b, _)| ev & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    if out.is_empty() {
        out.push("0".into());
    }
    out
}
