//! The rules, one file each, named after what they find. Each takes the snapshot's context and
//! returns findings; `run` calls them in two passes: first the rules that find causes, then the
//! context rules that read those causes (other connections to the same host, a loop waiting
//! for the stuck thread).

use crate::Ctx;
use crate::facts::Facts;

pub(crate) mod busy;
pub(crate) mod child_wait;
pub(crate) mod connection_dead;
pub(crate) mod exited;
pub(crate) mod local_not_reading;
pub(crate) mod lock_retry;
pub(crate) mod lock_wait;
pub(crate) mod managed_runtime;
pub(crate) mod mariadb_lock_wait;
pub(crate) mod mutex_deadlock;
pub(crate) mod mutex_holder_blocked;
pub(crate) mod name_resolution;
pub(crate) mod not_visible;
pub(crate) mod peer_not_reading;
pub(crate) mod peer_silent;
pub(crate) mod peer_unreachable;
pub(crate) mod pg_idle_in_transaction;
pub(crate) mod pg_lock_wait;
pub(crate) mod pipe_wait;
pub(crate) mod redis_blocked;
pub(crate) mod same_host;
pub(crate) mod shared_mutex_wait;
pub(crate) mod stopped;
pub(crate) mod unanswered;
pub(crate) mod uninterruptible;
pub(crate) mod unix_peer_wait;
pub(crate) mod waiting_loop;

pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Facts> {
    let mut found: Vec<Facts> = peer_silent::find(ctx)
        .into_iter()
        .map(|f| Facts::PeerSilent(Box::new(f)))
        .collect();
    network(ctx, &mut found);
    // Waits inside this host.
    let local = (lock_wait::find(ctx).into_iter().map(Facts::LockWait))
        .chain(lock_retry::find(ctx).into_iter().map(Facts::LockRetry))
        .chain(
            mutex_deadlock::find(ctx)
                .into_iter()
                .map(Facts::MutexDeadlock),
        )
        .chain(
            mutex_holder_blocked::find(ctx)
                .into_iter()
                .map(Facts::MutexHolderBlocked),
        )
        .chain(
            shared_mutex_wait::find(ctx)
                .into_iter()
                .map(Facts::SharedMutexWait),
        )
        .chain(pipe_wait::find(ctx).into_iter().map(Facts::PipeWait))
        .chain(busy::find(ctx).into_iter().map(Facts::Busy))
        .chain(exited::find(ctx).into_iter().map(Facts::Exited))
        .chain(child_wait::find(ctx).into_iter().map(Facts::ChildWait))
        .chain(
            uninterruptible::find(ctx)
                .into_iter()
                .map(Facts::KernelWait),
        )
        .chain(not_visible::find(ctx).into_iter().map(Facts::NotVisible));
    found.extend(local);
    found.extend(stopped::find(ctx).into_iter().map(Facts::Stopped));
    // What a server says of its own sessions (Snapshot::app).
    for f in pg_lock_wait::find(ctx) {
        found.push(Facts::PgLockWait(Box::new(f)));
    }
    for f in pg_idle_in_transaction::find(ctx) {
        found.push(Facts::PgIdleInTransaction(Box::new(f)));
    }
    for f in mariadb_lock_wait::find(ctx) {
        found.push(Facts::MariaLockWait(Box::new(f)));
    }
    // A client blocked by design (the server says so): its silent connection is not a
    // finding of its own.
    let by_design = redis_blocked::find(ctx);
    found.retain(|f| match f {
        Facts::PeerSilent(p) => !by_design
            .iter()
            .any(|b| b.socket_inode == p.conn.socket_inode),
        _ => true,
    });
    found.extend(by_design.into_iter().map(Facts::RedisBlocked));
    same_host::corroborate(ctx, &mut found);
    let loops = waiting_loop::find(ctx, &found);
    found.extend(loops.into_iter().map(Facts::WaitingLoop));
    // Last: whether another rule found a cause decides how much this one says.
    let runtime = managed_runtime::find(ctx, &found);
    found.extend(runtime.map(|f| Facts::ManagedRuntime(Box::new(f))));
    found
}

/// The rules about connections and sockets.
fn network(ctx: &Ctx<'_>, found: &mut Vec<Facts>) {
    fn add<F>(found: &mut Vec<Facts>, facts: Vec<F>, variant: fn(Box<F>) -> Facts) {
        found.extend(facts.into_iter().map(|f| variant(Box::new(f))));
    }
    add(found, peer_unreachable::find(ctx), Facts::PeerUnreachable);
    add(found, peer_not_reading::find(ctx), Facts::PeerNotReading);
    add(found, local_not_reading::find(ctx), Facts::LocalNotReading);
    add(found, connection_dead::find(ctx), Facts::ConnectionDead);
    add(found, name_resolution::find(ctx), Facts::NameResolution);
    add(found, unix_peer_wait::find(ctx), Facts::UnixPeerWait);
    add(found, unanswered::find(ctx), Facts::Unanswered);
}
