//! Database mirroring (reference E): the DATABASE_MIRRORING endpoint, `ALTER DATABASE ... SET PARTNER`
//! in the required order (mirror first, then principal, which starts the session), PARTNER OFF,
//! FAILOVER, SAFETY, SUSPEND/RESUME and TIMEOUT; plus the other ALTER DATABASE SET options pcfail uses
//! (RECOVERY, user access). Partners are other instances of the same world, found by endpoint address.

use super::Role;
use super::errors::SqlError;
use super::exec::{Ctx, Step};
use super::model::{DbState, Endpoint, MirrorRole, Mirroring, Recovery};
use super::parser::{AlterAction, EndpointDef};

fn fail(e: SqlError) -> Step {
    Step::Failed(vec![e])
}

pub(crate) fn alter_database(ctx: &mut Ctx, db: &str, action: &AlterAction) -> Step {
    let Some(d) = ctx.world.inst(ctx.role).and_then(|i| i.db(db)) else {
        return Step::Failed(vec![SqlError::new(5011, &[db]), SqlError::new(5069, &[])]);
    };
    let name = d.name.clone();
    let result = match action {
        AlterAction::Partner(addr) => match ctx.eval_text(addr) {
            Ok(addr) => set_partner(ctx, &name, &addr.unwrap_or_default()),
            Err(e) => Err(e),
        },
        AlterAction::PartnerOff => partner_off(ctx, &name),
        AlterAction::PartnerFailover => failover(ctx, &name),
        AlterAction::PartnerForce => force_service(ctx, &name),
        AlterAction::PartnerSuspend | AlterAction::PartnerResume => {
            let suspend = matches!(action, AlterAction::PartnerSuspend);
            on_both_sides(ctx, &name, false, |m| m.suspended = suspend)
        }
        AlterAction::Safety(full) => on_both_sides(ctx, &name, true, |m| {
            m.safety_full = *full;
            m.safety_sequence += 1;
        }),
        AlterAction::Timeout(e) => match ctx.eval_text(e) {
            Ok(t) => {
                // 0-4 seconds become 5 (reference E.3).
                let secs = t.and_then(|t| t.parse::<i64>().ok()).unwrap_or(10).max(5);
                on_both_sides(ctx, &name, true, |m| m.timeout = secs)
            }
            Err(e) => Err(e),
        },
        // The lab has no witness instance: any witness address is unreachable.
        AlterAction::Witness(Some(addr)) => match ctx.eval_text(addr) {
            Ok(addr) => Err(SqlError::new(1418, &[&addr.unwrap_or_default()])),
            Err(e) => Err(e),
        },
        AlterAction::Witness(None) => on_both_sides(ctx, &name, true, |_| {}),
        AlterAction::Recovery(model) => set_recovery(ctx, &name, model),
        AlterAction::UserAccess(access) => {
            // WITH ROLLBACK IMMEDIATE is what scripts use; the lab applies it for every form.
            if access != "MULTI_USER" {
                ctx.world
                    .disconnect_users_of(ctx.role, &name, Some(ctx.spid));
            }
            if let Some(d) = ctx.world.inst_mut(ctx.role).and_then(|i| i.db_mut(&name)) {
                d.user_access = access.clone();
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => Step::Done(None),
        Err(e) => fail(e),
    }
}

fn set_recovery(ctx: &mut Ctx, name: &str, model: &str) -> Result<(), SqlError> {
    let Some(model) = Recovery::parse(model) else {
        return Err(SqlError::syntax(model));
    };
    let d = ctx
        .world
        .inst_mut(ctx.role)
        .and_then(|i| i.db_mut(name))
        .expect("caller checked");
    if d.mirroring.is_some() && model != Recovery::Full {
        return Err(SqlError::new(1468, &[name]));
    }
    if model == Recovery::Simple {
        // Switching to SIMPLE breaks the log chain: the next log backup needs a new full backup.
        d.log_chain_lsn = None;
        d.database_backup_lsn = None;
    }
    d.recovery = model;
    Ok(())
}

fn endpoint_started(ctx: &Ctx, role: Role) -> bool {
    ctx.world
        .inst(role)
        .and_then(|i| i.endpoint.as_ref())
        .is_some_and(|e| e.started)
}

/// Whether `role`'s endpoint listens on the port `addr` (`TCP://host:port`) names: an endpoint on
/// another port cannot be reached at that address (1418, reference J.5).
fn endpoint_on_port(ctx: &Ctx, role: Role, addr: &str) -> bool {
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<i64>().ok());
    ctx.world
        .inst(role)
        .and_then(|i| i.endpoint.as_ref())
        .is_some_and(|e| Some(e.port) == port)
}

fn set_partner(ctx: &mut Ctx, name: &str, addr: &str) -> Result<(), SqlError> {
    if !addr.to_uppercase().starts_with("TCP://") || !addr[6..].contains(':') {
        return Err(SqlError::new(1449, &[]));
    }
    let me = ctx
        .world
        .inst(ctx.role)
        .expect("session's instance")
        .config
        .clone();
    let partner = ctx.world.role_by_endpoint(addr);
    if partner == Some(ctx.role) {
        return Err(SqlError::new(1452, &[]));
    }
    let d = ctx
        .world
        .inst(ctx.role)
        .and_then(|i| i.db(name))
        .expect("caller checked");
    if d.mirroring.as_ref().is_some_and(|m| !m.pending) {
        return Err(SqlError::new(1405, &[name]));
    }
    if d.state == DbState::Restoring {
        // The mirror side: remember the principal and wait for it to start the session (E.2 step 4).
        if d.recovery != Recovery::Full {
            return Err(SqlError::new(1465, &[name]));
        }
        // Its own endpoint must be STARTED for the principal to reach it (reference E.2 step 3, J.5);
        // which error SQL Server raises here is UNVERIFIED, hence the variant.
        if !endpoint_started(ctx, ctx.role)
            && ctx.world.config.variants.get("partner_without_endpoint") == "1486"
        {
            return Err(SqlError::new(1486, &[]));
        }
        let guid = ctx.world.rng.guid();
        let instance = partner
            .and_then(|r| ctx.world.inst(r))
            .map(|i| i.config.name.clone())
            .unwrap_or_default();
        let d = ctx
            .world
            .inst_mut(ctx.role)
            .and_then(|i| i.db_mut(name))
            .expect("caller checked");
        let mut m = Mirroring::new(MirrorRole::Mirror, addr.to_owned(), instance, guid);
        m.pending = true;
        d.mirroring = Some(m);
        return Ok(());
    }
    if d.standby {
        return Err(SqlError::new(1464, &[name]));
    }
    // The principal side (E.2 step 5): the mirror must be reachable and already waiting for us.
    let unreachable = || SqlError::new(1418, &[addr]);
    let Some(partner) = partner else {
        return Err(unreachable());
    };
    if !ctx.world.is_up(partner)
        || !endpoint_started(ctx, partner)
        || !endpoint_started(ctx, ctx.role)
        || !endpoint_on_port(ctx, partner, addr)
        // Each side connects to the other's endpoint as its service account (reference J.5).
        || !super::logins::connect_allowed(ctx.world, partner, ctx.role)
        || !super::logins::connect_allowed(ctx.world, ctx.role, partner)
    {
        return Err(unreachable());
    }
    let principal = d.clone();
    let Some(remote) = ctx.world.inst(partner).and_then(|i| i.db(name)).cloned() else {
        return Err(unreachable());
    };
    if remote.state != DbState::Restoring || remote.standby {
        return Err(SqlError::new(1464, &[name]));
    }
    let waiting = remote
        .mirroring
        .as_ref()
        .is_some_and(|m| m.pending && ctx.world.role_by_endpoint(&m.partner) == Some(ctx.role));
    if !waiting {
        // The mirror has not been told about us (SET PARTNER must run on the mirror first).
        return Err(unreachable());
    }
    if principal.recovery != Recovery::Full || remote.recovery != Recovery::Full {
        return Err(SqlError::new(1465, &[name]));
    }
    if remote.family_guid != principal.family_guid {
        return Err(SqlError::new(1419, &[name]));
    }
    let remote_redo = remote.redo_start_lsn.unwrap_or(remote.end_lsn);
    if principal
        .log_chain_lsn
        .is_some_and(|chain| remote_redo < chain)
    {
        return Err(SqlError::new(1478, &[name]));
    }
    if remote_redo > principal.end_lsn {
        return Err(SqlError::new(1412, &[name]));
    }
    let guid = ctx.world.rng.guid();
    let partner_name = ctx
        .world
        .inst(partner)
        .map(|i| i.config.name.clone())
        .unwrap_or_default();
    if let Some(d) = ctx.world.inst_mut(ctx.role).and_then(|i| i.db_mut(name)) {
        d.mirroring = Some(Mirroring::new(
            MirrorRole::Principal,
            addr.to_owned(),
            partner_name,
            guid,
        ));
    }
    if let Some(d) = ctx.world.inst_mut(partner).and_then(|i| i.db_mut(name)) {
        d.mirroring = Some(Mirroring::new(
            MirrorRole::Mirror,
            me.endpoint.clone(),
            me.name.clone(),
            guid,
        ));
    }
    ctx.world.sync_mirrors();
    Ok(())
}

/// The partner database of a mirrored `name`, if the partner instance exists.
fn partner_of(ctx: &Ctx, name: &str) -> Option<Role> {
    let m = ctx.world.inst(ctx.role)?.db(name)?.mirroring.as_ref()?;
    ctx.world.role_by_endpoint(&m.partner)
}

/// The database's established mirroring session (1416 if there is none, or the mirror still waits for
/// its principal); when `role` is given, this side must have it (1468).
fn established(ctx: &Ctx, name: &str, role: Option<MirrorRole>) -> Result<Mirroring, SqlError> {
    let d = ctx
        .world
        .inst(ctx.role)
        .and_then(|i| i.db(name))
        .expect("caller checked");
    let Some(m) = d.mirroring.clone().filter(|m| !m.pending) else {
        return Err(SqlError::new(1416, &[name]));
    };
    if role.is_some_and(|r| m.role != r) {
        return Err(SqlError::new(1468, &[name]));
    }
    Ok(m)
}

/// Applies `f` to the mirroring state on both sides; `principal_only` options fail on the mirror.
fn on_both_sides(
    ctx: &mut Ctx,
    name: &str,
    principal_only: bool,
    f: impl Fn(&mut Mirroring),
) -> Result<(), SqlError> {
    established(ctx, name, principal_only.then_some(MirrorRole::Principal))?;
    let partner = partner_of(ctx, name);
    for role in std::iter::once(ctx.role).chain(partner) {
        if let Some(m) = ctx
            .world
            .inst_mut(role)
            .and_then(|i| i.db_mut(name))
            .and_then(|d| d.mirroring.as_mut())
        {
            f(m);
        }
    }
    Ok(())
}

fn partner_off(ctx: &mut Ctx, name: &str) -> Result<(), SqlError> {
    let d = ctx
        .world
        .inst(ctx.role)
        .and_then(|i| i.db(name))
        .expect("caller checked");
    if d.mirroring.is_none() {
        return Err(SqlError::new(1416, &[name]));
    }
    let partner = partner_of(ctx, name);
    // Either side ends the session for both; the former mirror stays RESTORING (E.3).
    for role in std::iter::once(ctx.role).chain(partner) {
        if let Some(d) = ctx.world.inst_mut(role).and_then(|i| i.db_mut(name)) {
            d.mirroring = None;
        }
    }
    Ok(())
}

fn failover(ctx: &mut Ctx, name: &str) -> Result<(), SqlError> {
    let m = established(ctx, name, Some(MirrorRole::Principal))?;
    if !m.safety_full {
        return Err(SqlError::new(1477, &[name]));
    }
    let Some(partner) = partner_of(ctx, name).filter(|r| ctx.world.is_up(*r)) else {
        return Err(SqlError::new(1447, &[name]));
    };
    if m.suspended {
        return Err(SqlError::new(1447, &[name]));
    }
    ctx.world.sync_mirrors();
    // Connections to the old principal's database are dropped by the role switch.
    ctx.world.disconnect_users_of(ctx.role, name, None);
    for (role, new_role) in [
        (ctx.role, MirrorRole::Mirror),
        (partner, MirrorRole::Principal),
    ] {
        if let Some(d) = ctx.world.inst_mut(role).and_then(|i| i.db_mut(name)) {
            if let Some(m) = d.mirroring.as_mut() {
                m.role = new_role;
                m.role_sequence += 1;
            }
            if new_role == MirrorRole::Mirror {
                d.state = DbState::Restoring;
                d.redo_start_lsn = Some(d.end_lsn);
            } else {
                d.state = DbState::Online;
                d.redo_start_lsn = None;
            }
        }
    }
    Ok(())
}

fn force_service(ctx: &mut Ctx, name: &str) -> Result<(), SqlError> {
    established(ctx, name, Some(MirrorRole::Mirror))?;
    if partner_of(ctx, name).is_some_and(|r| ctx.world.is_up(r)) {
        // Forcing service is for a lost principal only.
        return Err(SqlError::new(1404, &[]));
    }
    if let Some(d) = ctx.world.inst_mut(ctx.role).and_then(|i| i.db_mut(name)) {
        d.state = DbState::Online;
        d.redo_start_lsn = None;
        if let Some(m) = d.mirroring.as_mut() {
            m.role = MirrorRole::Principal;
            m.suspended = true;
            m.role_sequence += 1;
        }
    }
    Ok(())
}

pub(crate) fn create_endpoint(ctx: &mut Ctx, def: &EndpointDef) -> Step {
    if !def.mirroring {
        // Only DATABASE_MIRRORING endpoints exist in the lab's model.
        return fail(SqlError::syntax("FOR"));
    }
    let Some(role) = def.role.clone() else {
        return fail(SqlError::syntax(")"));
    };
    let Some(port) = def.port else {
        return fail(SqlError::syntax(")"));
    };
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    if inst.endpoint.is_some() {
        return fail(SqlError::new(7862, &[]));
    }
    // The default state is STOPPED (reference E.1).
    let state = def.state.clone().unwrap_or_else(|| "STOPPED".to_owned());
    inst.endpoint = Some(Endpoint {
        name: def.name.clone(),
        id: 65536,
        port,
        started: state == "STARTED",
        state_desc: state,
        role,
        connect: Vec::new(),
    });
    Step::Done(None)
}

pub(crate) fn alter_endpoint(ctx: &mut Ctx, name: &str, state: &str) -> Step {
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    match inst
        .endpoint
        .as_mut()
        .filter(|e| e.name.eq_ignore_ascii_case(name))
    {
        Some(e) => {
            e.started = state == "STARTED";
            e.state_desc = state.to_owned();
            Step::Done(None)
        }
        None => fail(SqlError::new(15151, &["alter", "endpoint", name])),
    }
}

pub(crate) fn drop_endpoint(ctx: &mut Ctx, name: &str) -> Step {
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    if inst
        .endpoint
        .as_ref()
        .is_some_and(|e| e.name.eq_ignore_ascii_case(name))
    {
        inst.endpoint = None;
        Step::Done(None)
    } else {
        fail(SqlError::new(15151, &["drop", "endpoint", name]))
    }
}
