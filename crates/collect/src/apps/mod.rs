//! Servers' own introspection: when the target is a server hangscope knows (PostgreSQL,
//! MariaDB), or a client of one whose view says whether its wait is intended (Redis), what
//! that server says about its sessions — who waits for whom, who sits idle in a transaction —
//! read the way its administrator would on that host: its unix socket, as its OS user, with
//! none of hangscope's own credentials. Read-only, bounded in time, and never tried when the
//! target is not such a server (or a client of one); `Options::app_introspection` turns it
//! off.

mod client;
pub mod mariadb;
pub mod postgres;
pub mod redis;

use hangscope_model::{AppView, Snapshot};

use crate::{Options, ProcRoot};

/// The server's view for the snapshot of `pid`, when the target is a server hangscope knows;
/// what could not be read becomes a gap.
pub fn read(root: &ProcRoot, pid: i32, snap: &mut Snapshot, opts: &Options) -> Option<AppView> {
    if mariadb::recognise(&snap.process) {
        return mariadb::read(root, pid, snap, opts).map(AppView::Mariadb);
    }
    if let Some(server) = postgres::recognise(root, pid, &snap.process) {
        return postgres::read(root, &server, snap, opts).map(AppView::Postgres);
    }
    // Not a server: a client of one whose own view says whether its wait is by design.
    redis::read_for_client(root, snap, opts).map(AppView::Redis)
}
