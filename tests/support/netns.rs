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

/// A /30 of its own for each namespace, as a function from host number (1, 2) to address:
/// 198.18.0.0/15 (RFC 2544's benchmarking range, never routed) cut into /30s, 32768 of them,
/// picked by PID and by a count within the test binary, whose tests run in parallel with one
/// PID.
fn subnet() -> impl Fn(u32) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = (std::process::id().wrapping_mul(16).wrapping_add(n) % 32768) * 4;
    move |host: u32| {
        let off = base + host;
        format!(
            "198.{}.{}.{}",
            18 + (off >> 16),
            (off >> 8) & 255,
            off & 255
        )
    }
}

impl Netns {
    /// Creates the namespace `hs-TAG-PID` and its link; `tag` tells tests apart.
    pub fn create(tag: &str) -> Netns {
        let pid = std::process::id();
        let net = subnet();
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

/// Two namespaces joined by a veth pair, as two hosts with nothing else on the link (the root
/// namespace has no address on it): `hs-TAG-PID-a` at .1, `hs-TAG-PID-b` at .2 of a /30.
/// Removed on drop, both.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub a_addr: String,
    pub b_addr: String,
    veth: (String, String),
}

impl Pair {
    pub fn create(tag: &str) -> Pair {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let net = subnet();
        let pair = Pair {
            a: format!("hs-{tag}-{pid}-{n}a"),
            b: format!("hs-{tag}-{pid}-{n}b"),
            a_addr: net(1),
            b_addr: net(2),
            veth: (format!("hsa{pid}x{n}"), format!("hsb{pid}x{n}")),
        };
        if let Err(e) = pair.setup() {
            drop(pair);
            panic!("cannot set up the network namespaces: {e}");
        }
        pair
    }

    fn setup(&self) -> Result<(), String> {
        ip(&["netns", "add", &self.a])?;
        ip(&["netns", "add", &self.b])?;
        let (va, vb) = &self.veth;
        ip(&[
            "link", "add", va, "netns", &self.a, "type", "veth", "peer", "name", vb, "netns",
            &self.b,
        ])?;
        for (ns, dev, addr) in [(&self.a, va, &self.a_addr), (&self.b, vb, &self.b_addr)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The prefix that runs a command in namespace `ns` (`ip netns exec` execs it).
    pub fn exec<'a>(&'a self, ns: &'a str) -> [&'a str; 4] {
        ["ip", "netns", "exec", ns]
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The veth goes with its namespaces.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}
