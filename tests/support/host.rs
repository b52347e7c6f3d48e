//! The host as the tests of one binary share it. A test that looks at the whole host (`scan`,
//! `watch --all`) asserts that none of its own healthy processes is listed; the stuck
//! processes of a test running beside it in the same binary are on the same host, are
//! children of the same harness process, and are torn down while the look runs — a chain
//! through them can reach any process the harness started, so such a test holds the host
//! alone. Tests that look at their own targets only share it.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static HOST: RwLock<()> = RwLock::new(());

/// Held by a test that asserts about every process of the host: no other test of this binary
/// runs meanwhile. A test that failed holding it does not fail the others.
pub fn whole() -> RwLockWriteGuard<'static, ()> {
    HOST.write().unwrap_or_else(PoisonError::into_inner)
}

/// Held by a test that starts stuck processes but asserts only about its own targets.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    HOST.read().unwrap_or_else(PoisonError::into_inner)
}
