//! sp_getapplock / sp_releaseapplock: named locks pcfail takes so two runs never drive the same
//! failover at once. Locks are per database and resource, owned by a session or its transaction;
//! session-owned locks go away when the session closes.
//!
//! Return codes follow the documentation: 0 granted at once, 1 granted after waiting, -1 timed out,
//! -999 a parameter or call error (-2 cancelled and -3 deadlock victim never happen in the lab).

use std::time::{Duration, Instant};

use super::Role;
use super::errors::SqlError;
use super::exec::Ctx;
use super::procs::{Args, ProcFail, ProcOut};
use super::world::{AppLock, World};

const MODES: [&str; 5] = [
    "Shared",
    "Update",
    "IntentShared",
    "IntentExclusive",
    "Exclusive",
];

/// The lock compatibility matrix for application lock modes.
fn compatible(held: &str, wanted: &str) -> bool {
    matches!(
        (held, wanted),
        (
            "IntentShared",
            "IntentShared" | "IntentExclusive" | "Shared" | "Update"
        ) | ("IntentExclusive", "IntentShared" | "IntentExclusive")
            | ("Shared", "IntentShared" | "Shared" | "Update")
            | ("Update", "IntentShared" | "Shared")
    )
}

fn owner_key(owner: &str) -> String {
    if owner.eq_ignore_ascii_case("session") {
        "Session".to_owned()
    } else {
        "Transaction".to_owned()
    }
}

fn status(code: i32) -> ProcOut {
    ProcOut {
        status: code,
        outputs: Vec::new(),
        errors: Vec::new(),
    }
}

pub(crate) fn get(ctx: &mut Ctx, args: &Args) -> Result<ProcOut, ProcFail> {
    let resource = args.req("@resource")?;
    let mode_arg = args.req("@lockmode")?;
    let Some(mode) = MODES.iter().find(|m| m.eq_ignore_ascii_case(&mode_arg)) else {
        return Ok(status(-999));
    };
    let owner = owner_key(
        &args
            .str("@lockowner")
            .unwrap_or_else(|| "Transaction".to_owned()),
    );
    // UNVERIFIED: a Transaction-owned lock outside a transaction is refused with -999 (the documented
    // "parameter validation or other call error") rather than a specific error number.
    if owner == "Transaction" && ctx.local.trancount == 0 {
        return Ok(status(-999));
    }
    let timeout_ms = args.int("@locktimeout").unwrap_or(-1);
    let db = ctx.current_db();
    let world = &mut *ctx.world;
    let role = ctx.role;
    let spid = ctx.spid;
    let conflict = world.rt.applocks.iter().any(|l| {
        l.role == role
            && l.database.eq_ignore_ascii_case(&db)
            && l.resource == resource
            && l.spid != spid
            && !compatible(&l.mode, mode)
    });
    if conflict {
        let started = *ctx.waiting_since.get_or_insert_with(Instant::now);
        let waited = started.elapsed();
        if timeout_ms >= 0 && waited >= Duration::from_millis(timeout_ms as u64) {
            return Ok(status(-1));
        }
        return Err(ProcFail::Blocked);
    }
    let waited = ctx.waiting_since.is_some();
    match world.rt.applocks.iter_mut().find(|l| {
        l.role == role
            && l.spid == spid
            && l.database.eq_ignore_ascii_case(&db)
            && l.resource == resource
            && l.mode == *mode
            && l.owner == owner
    }) {
        Some(l) => l.count += 1,
        None => world.rt.applocks.push(AppLock {
            role,
            database: db,
            resource,
            mode: (*mode).to_owned(),
            spid,
            count: 1,
            owner,
        }),
    }
    Ok(status(if waited { 1 } else { 0 }))
}

pub(crate) fn release(ctx: &mut Ctx, args: &Args) -> Result<ProcOut, ProcFail> {
    let resource = args.req("@resource")?;
    let owner = owner_key(
        &args
            .str("@lockowner")
            .unwrap_or_else(|| "Transaction".to_owned()),
    );
    let db = ctx.current_db();
    let (role, spid) = (ctx.role, ctx.spid);
    let locks = &mut ctx.world.rt.applocks;
    let Some(pos) = locks.iter().position(|l| {
        l.role == role
            && l.spid == spid
            && l.database.eq_ignore_ascii_case(&db)
            && l.resource == resource
            && l.owner == owner
    }) else {
        let principal = args
            .str("@dbprincipal")
            .unwrap_or_else(|| "public".to_owned());
        let e = SqlError::new(1223, &[&principal, &resource]).in_proc("sp_releaseapplock");
        return Ok(ProcOut {
            status: -999,
            outputs: Vec::new(),
            errors: vec![e],
        });
    };
    locks[pos].count -= 1;
    if locks[pos].count == 0 {
        locks.remove(pos);
    }
    Ok(ProcOut::ok())
}

/// COMMIT/ROLLBACK of the outermost transaction frees its transaction-owned locks.
pub(crate) fn release_transaction_locks(world: &mut World, role: Role, spid: u16) {
    world
        .rt
        .applocks
        .retain(|l| !(l.role == role && l.spid == spid && l.owner == "Transaction"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_follow_the_compatibility_matrix() {
        let cases = [
            ("Shared", "Shared", true),
            ("Shared", "Exclusive", false),
            ("Exclusive", "Shared", false),
            ("Update", "Update", false),
            ("IntentShared", "Update", true),
            ("IntentExclusive", "Shared", false),
        ];
        for (held, wanted, ok) in cases {
            assert_eq!(compatible(held, wanted), ok, "{held} then {wanted}");
        }
    }
}
