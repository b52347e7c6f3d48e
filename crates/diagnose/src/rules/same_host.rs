//! Same host alive: for a connection found stuck, the process's other connections to the same
//! host that answered recently. If they answer, host and network are alive and only the service
//! behind the stuck port is not. Reads the causes the other rules found; adds what it rules out
//! to them and one context finding per host.
//!
//! Facts from tcp_info (ss -ti lastrcv, lastack) of the other connections.

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject};

use crate::connection::Conn;
use crate::{Ctx, Found, wording};

pub(crate) fn corroborate(ctx: &Ctx<'_>, found: &mut Vec<Found>) {
    let conns: Vec<&Conn> = Conn::tcp(ctx).collect();
    let mut extra = Vec::new();
    let mut hosts_done: Vec<String> = Vec::new();
    for f in found.iter_mut() {
        if !matches!(
            f.finding.cause,
            Cause::PeerSilent
                | Cause::PeerUnreachable
                | Cause::ConnectionDead
                | Cause::PeerNotReading
        ) || f.finding.severity == Severity::Info
        {
            continue;
        }
        let Some(inode) = f.finding.subject.socket_inode else {
            continue;
        };
        let Some(stuck) = conns.iter().find(|c| c.sock.inode == inode) else {
            continue;
        };
        let host = stuck.inet.peer.addr.clone();
        // "Recently" is relative to the stuck connection: after it went quiet.
        let quiet_ms = f.stuck_ms;
        let mut answered = Vec::new();
        let mut idle = Vec::new();
        for c in conns
            .iter()
            .filter(|c| c.sock.inode != inode && c.inet.peer.addr == host && c.state() == "ESTAB")
        {
            let Some(i) = c.info() else { continue };
            let service = c
                .inet
                .peer
                .service
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let port = format!(":{}{service}", c.inet.peer.port);
            if i.bytes_received.unwrap_or(1) > 0 && u64::from(i.last_data_recv_ms) < quiet_ms {
                answered.push((
                    c,
                    port,
                    format!(
                        "sent data {} ago",
                        wording::duration(u64::from(i.last_data_recv_ms))
                    ),
                ));
            } else if u64::from(i.last_ack_recv_ms) < quiet_ms {
                idle.push((
                    c,
                    port,
                    format!(
                        "idle, its kernel ACKed {} ago",
                        wording::duration(u64::from(i.last_ack_recv_ms))
                    ),
                ));
            }
        }
        if answered.is_empty() && idle.is_empty() {
            continue;
        }
        let first = answered.first().or(idle.first()).map(|(c, _, _)| *c);
        let facts: Vec<String> = answered
            .iter()
            .chain(idle.iter())
            .map(|(_, port, s)| format!("{port} {s}"))
            .collect();
        f.finding.ruled_out.push(format!(
            "host down or network loss: other connections to {host} answer ({})",
            facts.join("; ")
        ));
        // The verdict says it too, unless the stuck connection's own ACKs already did.
        if !f.finding.summary.contains("host and network are alive")
            && let Some((_, port, s)) = answered.first().or(idle.first())
        {
            let sentence = format!(
                "Another connection to {host} ({port}) {s}, so host and network are alive."
            );
            insert_sentence(&mut f.finding.summary, &sentence);
        }
        if hosts_done.contains(&host) {
            continue;
        }
        hosts_done.push(host.clone());
        let Some(first) = first else { continue };
        let evidence = answered
            .iter()
            .chain(idle.iter())
            .filter_map(|(c, _, s)| {
                let i = c.info()?;
                Some(Evidence::new(
                    format!("{} to {}", c.fd_text(), c.inet.peer),
                    s.clone(),
                    format!(
                        "ss: lastrcv:{} lastack:{} bytes_received:{}",
                        i.last_data_recv_ms,
                        i.last_ack_recv_ms,
                        i.bytes_received.unwrap_or(0)
                    ),
                ))
            })
            .collect();
        extra.push(Found {
            finding: Finding {
                severity: Severity::Info,
                cause: Cause::SameHostAlive,
                summary: format!(
                    "Other connections to {host} are alive: {}. The host and the network to it \
                     work; only the service on :{} is in trouble.",
                    facts.join("; "),
                    stuck.inet.peer.port
                ),
                subject: Subject {
                    fd: first.fd(),
                    socket_inode: Some(first.sock.inode),
                    connection: Some(first.label()),
                    ..Subject::default()
                },
                evidence,
                ruled_out: vec![],
                next_step: "None: this rules out the host and the network.".into(),
            },
            stuck_ms: 0,
        });
    }
    found.extend(extra);
}

/// Puts `sentence` after the summary's statement of the cause and before its history ("Before
/// that, ..."), which reads better last.
fn insert_sentence(summary: &mut String, sentence: &str) {
    match summary.find(" Before that, ") {
        Some(at) => summary.insert_str(at, &format!(" {sentence}")),
        None => {
            summary.push(' ');
            summary.push_str(sentence);
        }
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
