//! Who may connect to a mirroring endpoint (reference J.5; sql-docs "Set up login accounts for
//! database mirroring or Always On availability groups"): each instance's SQL Server service runs under
//! a Windows account, and a partner's connection to an endpoint authenticates as that account. The
//! same account on both partners needs nothing more; another account needs a login on the endpoint's
//! instance (`CREATE LOGIN [DOMAIN\account] FROM WINDOWS`) and `GRANT CONNECT ON ENDPOINT::[name] TO
//! [DOMAIN\account]`, or the principal's `SET PARTNER` cannot start the session (1418, the error SQL
//! Server gives for every endpoint that does not answer the handshake).
//!
//! Accounts: one shared account per lab by default (`LITWAREINC\svc-sql`, where the domain comes from
//! the instances' FQDNs), one per instance with `WorldConfig.distinct_service_accounts`
//! (`LITWAREINC\svc-dal-sql-001`). Not modelled: SQL logins, server roles other than the fixed ones
//! listed in sys.server_principals, DENY and REVOKE, certificate authentication.

use super::Role;
use super::errors::SqlError;
use super::exec::{Ctx, Step};
use super::world::World;

/// The first principal_id SQL Server gives a principal made after setup.
pub(crate) const FIRST_PRINCIPAL_ID: i64 = 256;

/// The Windows account `role`'s SQL Server (and Agent) service runs under.
pub(crate) fn service_account(world: &World, role: Role) -> String {
    let Some(inst) = world.inst(role) else {
        return String::new();
    };
    let fqdn = &inst.config.fqdn;
    let domain = fqdn.split('.').nth(1).unwrap_or("WORKGROUP").to_uppercase();
    if world.config.distinct_service_accounts {
        let host = fqdn.split('.').next().unwrap_or_default().to_lowercase();
        format!("{domain}\\svc-{host}")
    } else {
        format!("{domain}\\svc-sql")
    }
}

/// Whether `from`'s service account may connect to `to`'s mirroring endpoint.
pub(crate) fn connect_allowed(world: &World, to: Role, from: Role) -> bool {
    let account = service_account(world, from);
    if account.eq_ignore_ascii_case(&service_account(world, to)) {
        return true;
    }
    world.inst(to).is_some_and(|i| {
        i.logins.iter().any(|l| l.eq_ignore_ascii_case(&account))
            && i.endpoint
                .as_ref()
                .is_some_and(|e| e.connect.iter().any(|c| c.eq_ignore_ascii_case(&account)))
    })
}

/// Grants `from`'s account CONNECT on `to`'s endpoint, as the set-up of a mirrored pair does: a login
/// and the grant, unless the account is the same.
pub(crate) fn grant_partner(world: &mut World, to: Role, from: Role) {
    let account = service_account(world, from);
    if account.eq_ignore_ascii_case(&service_account(world, to)) {
        return;
    }
    if let Some(inst) = world.inst_mut(to) {
        if !inst.logins.iter().any(|l| l.eq_ignore_ascii_case(&account)) {
            inst.logins.push(account.clone());
        }
        if let Some(e) = inst.endpoint.as_mut()
            && !e.connect.iter().any(|c| c.eq_ignore_ascii_case(&account))
        {
            e.connect.push(account);
        }
    }
}

/// `CREATE LOGIN [name] FROM WINDOWS`. Every `DOMAIN\name` resolves in the lab (15401 is not modelled).
pub(crate) fn create_login(ctx: &mut Ctx, name: &str) -> Step {
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    if inst.logins.iter().any(|l| l.eq_ignore_ascii_case(name)) || is_fixed(name) {
        return Step::Failed(vec![SqlError::new(15025, &[name])]);
    }
    inst.logins.push(name.to_owned());
    Step::Done(None)
}

/// `GRANT CONNECT ON ENDPOINT::[endpoint] TO [login]`: the endpoint, then the login, must exist
/// (15151 names the one that does not). Granting again is not an error, as in SQL Server.
pub(crate) fn grant_connect(ctx: &mut Ctx, endpoint: &str, login: &str) -> Step {
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    let known = inst.logins.iter().any(|l| l.eq_ignore_ascii_case(login)) || is_fixed(login);
    let Some(e) = inst
        .endpoint
        .as_mut()
        .filter(|e| e.name.eq_ignore_ascii_case(endpoint))
    else {
        return Step::Failed(vec![SqlError::new(15151, &["find", "endpoint", endpoint])]);
    };
    if !known {
        return Step::Failed(vec![SqlError::new(15151, &["find", "login", login])]);
    }
    if !e.connect.iter().any(|c| c.eq_ignore_ascii_case(login)) {
        e.connect.push(login.to_owned());
    }
    Step::Done(None)
}

/// The principals every instance has from setup: (name, principal_id, type, type_desc).
pub(crate) const FIXED: [(&str, i64, &str, &str); 3] = [
    ("sa", 1, "S", "SQL_LOGIN"),
    ("public", 2, "R", "SERVER_ROLE"),
    ("sysadmin", 3, "R", "SERVER_ROLE"),
];

fn is_fixed(name: &str) -> bool {
    FIXED.iter().any(|(n, ..)| n.eq_ignore_ascii_case(name))
}
