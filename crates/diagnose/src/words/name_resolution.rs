//! The words of a stuck name lookup (`rules/name_resolution.rs`).

use hangscope_model::Evidence;

use super::{how, thread, waiting_in};
use crate::facts::name_resolution::{NameResolution, Resolver};
use crate::wording::duration;
use crate::words::Words;

pub(crate) fn words(f: &NameResolution) -> Words {
    let w = &f.waiter;
    let (who, next_step) = match &f.resolver {
        Resolver::Dns { conn } => {
            let host = &conn.peer.addr;
            match conn.other_end.as_ref().and_then(|o| o.holder()) {
                Some(h) if !h.this_process => (
                    format!(
                        "the DNS server {}, which is process {} ({}) on this host (fd {})",
                        conn.peer, h.pid, h.name, h.fd
                    ),
                    format!(
                        "Look at the resolver, process {} ({}): hangscope {}; dig @{host} \
                         <name> asks it directly.",
                        h.pid, h.name, h.pid
                    ),
                ),
                _ => (
                    format!("the DNS server {}", conn.peer),
                    format!(
                        "Check the DNS server {host}: dig @{host} <name>; is it reachable \
                         from here? See /etc/resolv.conf for the servers, timeout and \
                         attempts."
                    ),
                ),
            }
        }
        Resolver::Nscd(s) => (
            format!("nscd ({})", s.path),
            "Check nscd, which caches name lookups: systemctl status nscd; nscd -g; restart it \
             if it does not answer."
                .into(),
        ),
        Resolver::Sssd(s) => (
            format!(
                "sssd ({}), which answers user and host lookups through libnss_sss",
                s.path
            ),
            "Check sssd: systemctl status sssd; the logs in /var/log/sssd/; whether its LDAP or \
             AD servers answer (sssctl domain-status)."
                .into(),
        ),
    };
    let waited = match w.blocked_ms {
        Some(ms) => format!("has waited {} in {}", duration(ms), how(w)),
        None => format!("waits in {}", how(w)),
    };
    Words {
        summary: format!(
            "{} {waited} for an answer from {who}: a name lookup is stuck, and whatever needed \
             the name waits with it.",
            thread(w)
        ),
        evidence: vec![
            waiting_in(w),
            Evidence::new("socket", f.label(), "sock_diag"),
        ],
        ruled_out: vec![],
        next_step,
    }
}
