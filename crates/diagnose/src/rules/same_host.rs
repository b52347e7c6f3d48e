//! Same host alive: for a connection found stuck, the process's other connections to the same
//! host that answered recently. If they answer, host and network are alive and only the service
//! behind the stuck port is not. Reads the causes the other rules found; adds what it rules out
//! to their facts and one context finding per host. Words in `words/same_host.rs`.
//!
//! Facts from tcp_info (ss -ti lastrcv, lastack) of the other connections.

use hangscope_model::{Cause, Next, Severity, Subject};
use serde::Serialize;

use crate::connection::Conn;
use crate::facts::{AliveConn, Facts, HostAlive, RuleFacts};
use crate::{Candidate, Ctx};

/// The context finding: other connections to a host with a stuck one are alive.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SameHostAlive {
    pub alive: HostAlive,
    /// The port of the stuck connection's service.
    pub stuck_port: u16,
}

pub(crate) fn corroborate(ctx: &Ctx<'_>, found: &mut Vec<Candidate>) {
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
        for c in conns
            .iter()
            .filter(|c| c.sock.inode != inode && c.inet.peer.addr == host && c.state() == "ESTAB")
        {
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
        match f {
            Candidate::Facts(facts) => match facts.host_alive_mut() {
                Some(slot) => *slot = Some(alive.clone()),
                None => continue,
            },
            Candidate::Worded { found, .. } => {
                let finding = &mut found.finding;
                finding
                    .ruled_out
                    .push(crate::words::host_alive_ruled_out(&alive));
                // The verdict says it too, unless the stuck connection's own ACKs already did.
                if !finding.summary.contains("host and network are alive")
                    && let Some(sentence) = crate::words::host_alive_sentence(&alive)
                {
                    insert_sentence(&mut finding.summary, &sentence);
                }
            }
        }
        if hosts_done.contains(&host) {
            continue;
        }
        hosts_done.push(host);
        extra.push(Candidate::Facts(Facts::SameHostAlive(SameHostAlive {
            alive,
            stuck_port: stuck.inet.peer.port,
        })));
    }
    found.extend(extra);
}

/// Puts `sentence` after the summary's statement of the cause and before its history ("Before
/// that, ..."), which reads better last. Only for the rules that still word their own findings.
fn insert_sentence(summary: &mut String, sentence: &str) {
    match summary.find(" Before that, ") {
        Some(at) => summary.insert_str(at, &format!(" {sentence}")),
        None => {
            summary.push(' ');
            summary.push_str(sentence);
        }
    }
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

    fn words(&self) -> crate::facts::Words {
        crate::words::same_host::words(self)
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
}
