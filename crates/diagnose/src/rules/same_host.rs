//! Same host alive: for a connection found stuck, the process's other connections to the same
//! host that answered recently. If they answer, host and network are alive and only the service
//! behind the stuck port is not. Reads the causes the other rules found; adds what it rules out
//! to their facts and one context finding per host. Words in `words/same_host.rs`.
//!
//! Facts from tcp_info (ss -ti lastrcv, lastack) of the other connections.

use hangscope_model::TcpState;
use hangscope_model::{Cause, Next, Severity, Subject};

use crate::Ctx;
use crate::connection::Conn;
use crate::facts::same_host::SameHostAlive;
use crate::facts::{AliveConn, Facts, HostAlive, RuleFacts};

pub(crate) fn corroborate(ctx: &Ctx<'_>, found: &mut Vec<Facts>) {
    let conns: Vec<&Conn> = Conn::tcp(ctx).collect();
    let mut extra = Vec::new();
    let mut hosts_done: Vec<String> = Vec::new();
    for f in found.iter_mut() {
        if !matches!(
            f.cause(),
            Cause::PeerSilent
                | Cause::PeerUnreachable
                | Cause::ConnectionDead
                | Cause::PeerNotReading
        ) || f.severity() == Severity::Info
        {
            continue;
        }
        let Some(inode) = f.subject().socket_inode else {
            continue;
        };
        let Some(stuck) = conns.iter().find(|c| c.sock.inode == inode) else {
            continue;
        };
        let host = stuck.inet.peer.addr.clone();
        // "Recently" is relative to the stuck connection: after it went quiet.
        let quiet_ms = f.stuck_ms();
        let mut answered = Vec::new();
        let mut idle = Vec::new();
        for c in conns.iter().filter(|c| {
            c.sock.inode != inode && c.inet.peer.addr == host && c.state() == TcpState::Established
        }) {
            let Some(i) = c.info() else { continue };
            let conn = |data_ago_ms| AliveConn {
                socket_inode: c.sock.inode,
                fd: c.fd(),
                peer: c.inet.peer.clone(),
                data_ago_ms,
                ack_ago_ms: u64::from(i.last_ack_recv_ms),
                bytes_received: i.bytes_received.unwrap_or(0),
                last_recv_ms: u64::from(i.last_data_recv_ms),
                label: c.label(),
            };
            if i.bytes_received.unwrap_or(1) > 0 && u64::from(i.last_data_recv_ms) < quiet_ms {
                answered.push(conn(Some(u64::from(i.last_data_recv_ms))));
            } else if u64::from(i.last_ack_recv_ms) < quiet_ms {
                idle.push(conn(None));
            }
        }
        if answered.is_empty() && idle.is_empty() {
            continue;
        }
        answered.extend(idle);
        let alive = HostAlive {
            host: host.clone(),
            conns: answered,
        };
        // Only a rule whose facts have room for it says so; the others' words do not use it.
        let Some(slot) = f.host_alive_mut() else {
            continue;
        };
        *slot = Some(alive.clone());
        if hosts_done.contains(&host) {
            continue;
        }
        hosts_done.push(host);
        extra.push(Facts::SameHostAlive(SameHostAlive {
            alive,
            stuck_port: stuck.inet.peer.port,
        }));
    }
    found.extend(extra);
}

impl RuleFacts for SameHostAlive {
    const RULE: &'static str = "same_host";

    fn cause(&self) -> Cause {
        Cause::SameHostAlive
    }

    fn severity(&self) -> Severity {
        Severity::Info
    }

    fn stuck_ms(&self) -> u64 {
        0
    }

    fn subject(&self) -> Subject {
        let Some(first) = self.alive.conns.first() else {
            return Subject::default();
        };
        Subject {
            fd: first.fd,
            socket_inode: Some(first.socket_inode),
            connection: Some(first.label.clone()),
            ..Subject::default()
        }
    }

    fn next(&self) -> Option<Next> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use hangscope_model::{Cause, Severity};

    #[test]
    fn seed_other_ports_answer() {
        let snap = seed();
        let findings = crate::diagnose(&snap);
        let top = &findings[0];
        assert_eq!(top.cause, Cause::PeerSilent);
        assert!(
            top.ruled_out
                .iter()
                .any(|r| r.contains(":2181 sent data 1.2 s ago")),
            "{:?}",
            top.ruled_out
        );
        let same = findings
            .iter()
            .find(|f| f.cause == Cause::SameHostAlive)
            .unwrap();
        assert_eq!(same.severity, Severity::Info);
        assert_eq!(same.subject.fd, Some(28));
        assert!(
            same.summary
                .contains(":10101 idle, its kernel ACKed 678 ms ago"),
            "{}",
            same.summary
        );
    }

    #[test]
    fn verdict_names_the_answering_connection_when_acks_do_not() {
        // The stuck connection got no ACK since the request (loopback: the ACK came with it),
        // so only the other connection to the host shows it is alive.
        let mut snap = seed();
        socket_info(&mut snap, 692518610).last_ack_recv_ms = 7878;
        let findings = crate::diagnose(&snap);
        let top = &findings[0];
        assert_eq!(top.cause, Cause::PeerSilent);
        assert!(
            top.summary.contains(
                "is not answering. Another connection to 10.0.130.72 (:2181) sent data 1.2 s \
                 ago, so host and network are alive. Before that, the same thread"
            ),
            "{}",
            top.summary
        );
        // Said once: the seed's own ACKs already say it.
        let seed = crate::diagnose(&seed());
        assert_eq!(
            seed[0]
                .summary
                .matches("host and network are alive")
                .count(),
            1,
            "{}",
            seed[0].summary
        );
    }

    #[test]
    fn nothing_when_other_connections_are_quiet_too() {
        let mut snap = seed();
        socket_info(&mut snap, 692518576).last_data_recv_ms = 60_000;
        socket_info(&mut snap, 692518576).last_ack_recv_ms = 60_000;
        socket_info(&mut snap, 692518611).last_ack_recv_ms = 60_000;
        let findings = crate::diagnose(&snap);
        assert!(findings.iter().all(|f| f.cause != Cause::SameHostAlive));
    }

    /// The seed's connection to :10100 stuck another way, with :2181 on the same host answering.
    fn seed_stuck(rule: &str) -> hangscope_model::Snapshot {
        let mut snap = seed();
        let i = socket_info(&mut snap, 692518610);
        match rule {
            "peer_unreachable" => {
                i.unacked = 1;
                i.retransmits = 3;
                i.backoff = 3;
                i.last_ack_recv_ms = 9000;
            }
            "peer_not_reading" => {
                i.snd_wnd = Some(0);
                i.last_ack_recv_ms = 300;
            }
            _ => {
                i.probes = 5;
                i.last_ack_recv_ms = 60_000;
            }
        }
        if rule != "connection_dead" {
            inet_of(socket_mut(&mut snap, 692518610)).send_q = 500;
        }
        snap
    }

    #[test]
    fn the_rules_it_corroborates_carry_it_in_their_facts_and_words() {
        for (rule, cause) in [
            ("peer_unreachable", Cause::PeerUnreachable),
            ("peer_not_reading", Cause::PeerNotReading),
            ("connection_dead", Cause::ConnectionDead),
        ] {
            let findings = crate::diagnose(&seed_stuck(rule));
            let top = &findings[0];
            assert_eq!(
                (top.rule.as_str(), top.cause),
                (rule, cause),
                "{findings:#?}"
            );
            let alive = &top.facts["host_alive"];
            assert_eq!(alive["host"], "10.0.130.72", "{rule}");
            assert_eq!(alive["conns"][0]["socket_inode"], 692518576, "{rule}");
            assert_eq!(alive["conns"][0]["data_ago_ms"], 1209, "{rule}");
            assert!(
                top.summary.ends_with(
                    "Another connection to 10.0.130.72 (:2181) sent data 1.2 s ago, so host \
                     and network are alive."
                ),
                "{rule}: {}",
                top.summary
            );
            assert_eq!(
                top.ruled_out.last().map(String::as_str),
                Some(
                    "host down or network loss: other connections to 10.0.130.72 answer \
                     (:2181 sent data 1.2 s ago; :10101 idle, its kernel ACKed 678 ms ago)"
                ),
                "{rule}"
            );
            assert_eq!(
                findings
                    .iter()
                    .filter(|f| f.cause == Cause::SameHostAlive)
                    .count(),
                1,
                "{rule}"
            );
        }
    }
}
