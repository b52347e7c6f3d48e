//! The words of other connections to the same host being alive (`rules/same_host.rs`).

use hangscope_model::Evidence;

use super::alive_parts;
use crate::facts::same_host::SameHostAlive;
use crate::words::Words;

pub(crate) fn words(f: &SameHostAlive) -> Words {
    let parts: Vec<String> = alive_parts(&f.alive)
        .into_iter()
        .map(|(port, what)| format!("{port} {what}"))
        .collect();
    let evidence = f
        .alive
        .conns
        .iter()
        .zip(alive_parts(&f.alive))
        .map(|(c, (_, what))| {
            let fd = match c.fd {
                Some(fd) => format!("fd {fd}"),
                None => "a socket".into(),
            };
            Evidence::new(
                format!("{fd} to {}", c.peer),
                what,
                format!(
                    "ss: lastrcv:{} lastack:{} bytes_received:{}",
                    c.last_recv_ms, c.ack_ago_ms, c.bytes_received
                ),
            )
        })
        .collect();
    Words {
        summary: format!(
            "Other connections to {} are alive: {}. The host and the network to it work; only \
             the service on :{} is in trouble.",
            f.alive.host,
            parts.join("; "),
            f.stuck_port
        ),
        evidence,
        ruled_out: vec![],
        next_step: "None: this rules out the host and the network.".into(),
    }
}
