//! /etc/services: port numbers to service names, so a connection to 2181 reads
//! `2181 (eforward)` as lsof prints it; see services(5).
//!
//! Hand-written: the format is one `name port/proto [aliases...] [# comment]` per line, and
//! neither procfs-core nor libc's getservbyport (not thread-safe, NSS-dependent) fits.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Services {
    /// port → (protocol in lower case, name): looked up without building a key per socket.
    by_port: HashMap<u16, Vec<(String, String)>>,
}

impl Services {
    /// Reads /etc/services; an absent or unreadable file names nothing.
    pub fn load() -> Services {
        std::fs::read_to_string("/etc/services")
            .map(|t| Services::parse(&t))
            .unwrap_or_default()
    }

    pub fn parse(text: &str) -> Services {
        let mut by_port = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            // The first line for a port wins, as in getservbyport(3).
            let names: &mut Vec<(String, String)> = by_port.entry(port).or_default();
            if !names.iter().any(|(p, _)| p.eq_ignore_ascii_case(proto)) {
                names.push((proto.to_ascii_lowercase(), name.to_string()));
            }
        }
        Services { by_port }
    }

    /// The name of `port` for `proto` ("tcp", "udp").
    pub fn name(&self, port: u16, proto: &str) -> Option<&str> {
        self.by_port
            .get(&port)?
            .iter()
            .find(|(p, _)| p == proto)
            .map(|(_, name)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_services_lines() {
        let s = Services::parse(
            "# comment\n\
             ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol\n\
             eforward\t2181/tcp\n\
             domain\t\t53/udp\n\
             dup\t\t22/tcp\n\
             broken\tnotaport/tcp\n\
             \n",
        );
        assert_eq!(s.name(22, "tcp"), Some("ssh"));
        assert_eq!(s.name(2181, "tcp"), Some("eforward"));
        assert_eq!(s.name(53, "udp"), Some("domain"));
        assert_eq!(s.name(53, "tcp"), None);
    }
}
