//! A network namespace a test creates for itself and removes on drop, also when an
//! assertion fails: `ip netns add`, a veth pair with a /30 on a subnet derived from the test's
//! PID (so parallel runs do not collide), loopback up inside. See ip-netns(8), veth(4).

use std::process::Command;

pub struct Netns {
    pub name: String,
    /// The veth end inside the namespace.
    pub inner_if: String,
    /// The veth end in the root namespace.
    pub outer_if: String,
    /// The address inside the namespace.
    pub inner_addr: String,
    pub outer_addr: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates the namespace `hs-TAG-PID` and its link; `tag` tells tests apart.
    pub fn create(tag: &str) -> Netns {
        let pid = std::process::id();
        // 198.18.0.0/15 (RFC 2544's benchmarking range, never routed) cut into /30s: 32768
        // of them, picked by PID and by a count within the test binary, whose tests run in
        // parallel with one PID.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = (pid.wrapping_mul(16).wrapping_add(n) % 32768) * 4;
        let net = |host: u32| {
            let off = base + host;
            format!(
                "198.{}.{}.{}",
                18 + (off >> 16),
                (off >> 8) & 255,
                off & 255
            )
        };
        let ns = Netns {
            name: format!("hs-{tag}-{pid}"),
            inner_if: format!("hs{tag}{pid}i"),
            outer_if: format!("hs{tag}{pid}o"),
            inner_addr: net(2),
            outer_addr: net(1),
        };
        // Drop removes whatever part of this was made.
        if let Err(e) = ns.setup() {
            drop(ns);
            panic!("cannot set up the network namespace: {e}");
        }
        ns
    }

    fn setup(&self) -> Result<(), String> {
        let (ns, inner, outer) = (&self.name, &self.inner_if, &self.outer_if);
        ip(&["netns", "add", ns])?;
        ip(&[
            "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", self.outer_addr),
            "dev",
            outer,
        ])?;
        ip(&["link", "set", outer, "up"])?;
        self.exec_ip(&[
            "addr",
            "add",
            &format!("{}/30", self.inner_addr),
            "dev",
            inner,
        ])?;
        self.exec_ip(&["link", "set", inner, "up"])?;
        self.exec_ip(&["link", "set", "lo", "up"])
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn exec_ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The prefix that runs a command inside the namespace (`ip netns exec` execs it, so the
    /// PID stays the command's).
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; the namespace goes when its last
        // process has (the tests drop their processes before this guard).
        let _ = ip(&["link", "del", &self.outer_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
