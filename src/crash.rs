//! Deterministic crash points, for the tests that prove a run survives being killed anywhere.
//!
//! In debug builds only (the ones `cargo test` runs), `PCFAIL_CRASH_AT=N` ends the process at the
//! N-th crash point it reaches, with exit status 99 and no clean-up at all: nothing after that point
//! is written, no destructor runs, as with `kill -9`. The points stand where a crash hurts most:
//! just before and just after each journal record (a statement run but not yet journaled; a step
//! journaled but not yet acted on) and around each copied file's rename. Release builds compile the
//! points to nothing.

/// A place where the process may be made to stop, for tests. `what` is printed when it does.
#[cfg(debug_assertions)]
pub(crate) fn point(what: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TARGET: OnceLock<Option<usize>> = OnceLock::new();
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    let target = *TARGET.get_or_init(|| {
        std::env::var("PCFAIL_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let Some(target) = target else { return };
    let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if n == target {
        say!("pcfail: crash point {n} reached ({what}); stopping as if killed");
        std::process::exit(99);
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn point(_what: &str) {}
