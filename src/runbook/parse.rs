//! The walk from the spanned TOML tree to a [`Runbook`]: which keys exist, what they mean, and the
//! checks that involve more than one value (references, uniqueness, data centers).
//!
//! The order matters only for references: topology first (pool, databases, instances, servers), then
//! the steps, which may name any of it. Each action reads its own parameters through [`StepReader`]
//! in its own file under `src/action/`; this module owns the keys every step has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::check;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::instance::{Address, Auth, Encryption, Instance, MirroringEndpoint, Role};
use super::reader::{Located, Table, with_suggestion};
use super::{
    ChatServer, LogShippingOverrides, ManagementStore, Module, Pool, PowerShell, Procedure, Remote,
    RemoteAuthentication, RemoteCredential, Runbook, RunbookTimeouts, Step,
};
use crate::action::Action;

/// What steps may refer to, gathered from the topology part of the file.
#[derive(Default)]
pub(crate) struct Context {
    /// Roles that appear under `[instances]`, even if their table had problems, so that a step naming
    /// them is not reported a second time.
    declared: BTreeSet<Role>,
    instances: BTreeMap<Role, Instance>,
    databases: Vec<String>,
    /// False when a `[databases]` name was missing or invalid: then steps' database names are only
    /// checked as identifiers, so one bad declaration is not reported again at every step.
    databases_ok: bool,
    pub(crate) overrides: LogShippingOverrides,
    pub(crate) pool_identity: String,
    pub(crate) pool_fqdn: String,
    pub(crate) active_after_failover: Vec<String>,
    pub(crate) active_after_failback: Vec<String>,
    pub(crate) management_store: Option<ManagementStore>,
    /// The folder relative paths in the runbook (`ca_file`) are relative to.
    runbook_dir: Option<PathBuf>,
}

/// Reads one step's parameters; handed to each action's `parse`.
pub(crate) struct StepReader<'a, 's, 't, 'i> {
    pub(crate) table: &'a Table<'t, 'i>,
    pub(crate) d: &'a mut Diagnostics<'s>,
    pub(crate) ctx: &'a Context,
}

impl StepReader<'_, '_, '_, '_> {
    /// A required instance role that the runbook defines.
    pub(crate) fn instance(&mut self, key: &'static str) -> Option<Role> {
        let value = self.table.string(self.d, key)?;
        self.role(&value)
    }

    /// An optional instance role, `default` when absent.
    pub(crate) fn instance_or(&mut self, key: &'static str, default: Role) -> Option<Role> {
        match self.table.opt_string(self.d, key) {
            Some(value) => self.role(&value),
            None if self.table.has(key) => None,
            None if self.ctx.declared.contains(&default) => Some(default),
            None => {
                self.d.error(
                    self.table.span(),
                    format!(
                        "{} needs instance `{default}`, which is not defined in `[instances]`",
                        self.table.context()
                    ),
                );
                None
            }
        }
    }

    fn role(&mut self, value: &Located<String>) -> Option<Role> {
        let Some(role) = Role::from_key(&value.value) else {
            self.d.error(
                value.span.clone(),
                with_suggestion(
                    format!("unknown instance `{}`", value.value),
                    &value.value,
                    Role::ALL.map(Role::key),
                ),
            );
            return None;
        };
        if !self.ctx.declared.contains(&role) {
            self.d.error(
                value.span.clone(),
                format!("instance `{role}` is not defined in `[instances]`"),
            );
            return None;
        }
        Some(role)
    }

    /// The loaded settings of a role, if its table was valid (problems were reported already).
    pub(crate) fn instance_info(&self, role: Role) -> Option<&Instance> {
        self.ctx.instances.get(&role)
    }

    /// The mirroring endpoint of a role, reporting at the step if the instance has none.
    pub(crate) fn endpoint(&mut self, role: Role) -> Option<MirroringEndpoint> {
        let instance = self.ctx.instances.get(&role)?;
        match &instance.mirroring_endpoint {
            Some(e) => Some(e.clone()),
            None => {
                self.d.error(
                    self.table.span(),
                    format!(
                        "{} needs `mirroring_endpoint` on instance `{role}`",
                        self.table.context()
                    ),
                );
                None
            }
        }
    }

    /// A required database name: a valid identifier declared in `[databases]`.
    pub(crate) fn database(&mut self, key: &'static str) -> Option<String> {
        let value = self.table.string(self.d, key)?;
        if let Err(message) = check::sql_identifier(&value.value) {
            self.d.error(value.span, message);
            return None;
        }
        if self.ctx.databases_ok && !self.ctx.databases.contains(&value.value) {
            self.d.error(
                value.span,
                format!(
                    "database `{}` is not declared in `[databases]` ({})",
                    value.value,
                    self.ctx
                        .databases
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
        Some(value.value)
    }

    /// Required free text (paths, messages, statements): not empty, and, as every string the reader
    /// hands out, free of control, bidirectional and invisible characters ([`check::text`]).
    pub(crate) fn text(&mut self, key: &'static str) -> Option<String> {
        let value = self.table.string(self.d, key)?;
        self.checked_text(key, value)
    }

    /// Optional free text, `default` when absent.
    pub(crate) fn text_or(&mut self, key: &'static str, default: String) -> Option<String> {
        match self.table.opt_string(self.d, key) {
            Some(value) => self.checked_text(key, value),
            None if self.table.has(key) => None,
            None => Some(default),
        }
    }

    fn checked_text(&mut self, key: &str, value: Located<String>) -> Option<String> {
        match check::non_empty(&format!("`{key}`"), &value.value) {
            Ok(()) => Some(value.value),
            Err(message) => {
                self.d.error(value.span, message);
                None
            }
        }
    }

    /// A job or schedule name (`sysname`), `default` when absent.
    pub(crate) fn sysname_or(&mut self, key: &'static str, default: String) -> Option<String> {
        let Some(value) = self.table.opt_string(self.d, key) else {
            return (!self.table.has(key)).then_some(default);
        };
        match check::sysname(&format!("`{key}`"), &value.value) {
            Ok(()) => Some(value.value),
            Err(message) => {
                self.d.error(value.span, message);
                None
            }
        }
    }

    /// An integer within `range`, `default` when absent.
    pub(crate) fn integer_or(
        &mut self,
        key: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let Some(value) = self.table.opt_integer(self.d, key) else {
            return (!self.table.has(key)).then_some(default);
        };
        if range.contains(&value.value) {
            Some(value.value)
        } else {
            self.d.error(
                value.span,
                format!(
                    "`{key}` must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// A date written `yyyymmdd` within `range` that is a real day, `default` when absent.
    pub(crate) fn date_or(
        &mut self,
        key: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let Some(value) = self.table.opt_integer(self.d, key) else {
            return (!self.table.has(key)).then_some(default);
        };
        match check::yyyymmdd(&format!("`{key}`"), value.value, range) {
            Ok(()) => Some(value.value),
            Err(message) => {
                self.d.error(value.span, message);
                None
            }
        }
    }

    /// A boolean, `default` when absent.
    pub(crate) fn bool_or(&mut self, key: &'static str, default: bool) -> bool {
        self.table
            .opt_bool(self.d, key)
            .map_or(default, |b| b.value)
    }

    /// One of a fixed set of words.
    pub(crate) fn choice(
        &mut self,
        key: &'static str,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let value = self.table.string(self.d, key)?;
        match choices.iter().find(|c| **c == value.value) {
            Some(c) => Some(c),
            None => {
                let listed: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
                self.d.error(
                    value.span,
                    format!(
                        "`{key}` must be one of {}, found `{}`",
                        listed.join(", "),
                        value.value
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn context(&self) -> &Context {
        self.ctx
    }
}

/// Parses and validates runbook text.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Runbook, Vec<Diagnostic>> {
    let mut d = Diagnostics::new(path.display().to_string(), text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for error in &syntax_errors {
        let span = error.span().unwrap_or(0..0);
        d.error(span, format!("invalid TOML: {}", error.message()));
    }
    let root = Table::new("the runbook", root.get_ref(), 0..0);
    let runbook = read_runbook(path, &root, &mut d);
    root.finish(&mut d);
    match runbook {
        Some(mut runbook) if d.is_empty() => {
            runbook.unsupported = d.finish_build();
            Ok(runbook)
        }
        _ => Err(d.finish()),
    }
}

fn read_runbook(path: &Path, root: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Option<Runbook> {
    let pool = root
        .table(d, "pool", "`[pool]`")
        .and_then(|t| read_pool(&t, d));
    let powershell = match root.opt_table(d, "powershell", "`[powershell]`") {
        Some(t) => read_powershell(&t, d),
        None => Some(PowerShell {
            program: "powershell.exe".into(),
            module: Module::SkypeForBusiness,
            args: Vec::new(),
            remote: None,
        }),
    };
    let databases = root
        .table(d, "databases", "`[databases]`")
        .map(|t| read_databases(&t, d));
    let mut ctx = Context {
        runbook_dir: path.parent().map(Path::to_path_buf),
        ..Context::default()
    };
    if let Some(t) = root.table(d, "instances", "`[instances]`") {
        read_instances(&t, d, &mut ctx);
    }
    if let Some(t) = root.opt_table(d, "log_shipping", "`[log_shipping]`") {
        ctx.overrides = read_overrides(&t, d);
    }
    let timeouts = match root.opt_table(d, "timeouts", "`[timeouts]`") {
        Some(t) => read_timeouts(&t, d),
        None => Some(RunbookTimeouts::default()),
    };
    let management_store = root
        .opt_table(
            d,
            "central_management_store",
            "`[central_management_store]`",
        )
        .map(|t| read_management_store(&t, d));
    let (servers, servers_ok) = root
        .opt_tables(d, "persistent_chat_servers", |n| {
            format!("`persistent_chat_servers` entry {n}")
        })
        .map(|tables| read_servers(&tables, d))
        .unwrap_or((Vec::new(), true));
    let active = root.table(d, "active_servers", "`[active_servers]`");
    if let Some(active) = &active {
        read_active(active, &servers, servers_ok, d, &mut ctx);
    }
    if let Some((chat, compliance)) = &databases {
        ctx.databases = [chat.clone(), compliance.clone()]
            .into_iter()
            .flatten()
            .collect();
        ctx.databases_ok = ctx.databases.len() == 2;
    }
    if let Some(pool) = &pool {
        ctx.pool_identity = pool.identity.clone();
        ctx.pool_fqdn = pool.fqdn.clone();
    }
    ctx.management_store = management_store.clone();
    let failover = read_procedure(root, "failover", d, &ctx);
    let planned_failover = root
        .raw("planned_failover")
        .map(|_| read_procedure(root, "planned_failover", d, &ctx));
    if let (Some(Some(planned)), Some(failover)) = (&planned_failover, &failover) {
        // The planned steps run in the same plan as the failover's, so ids must not collide.
        for step in &planned.steps {
            if failover.steps.iter().any(|f| f.id == step.id) {
                d.error(
                    root.span(),
                    format!(
                        "step id `{}` is used in both `planned_failover` and `failover`; a planned failover runs both, so ids must differ",
                        step.id
                    ),
                );
            }
        }
    }
    let failback = read_procedure(root, "failback", d, &ctx);

    let (chat_database, compliance_database) = databases?;
    for role in [Role::Primary, Role::Backup] {
        if !ctx.declared.contains(&role) {
            d.error(
                root.span(),
                format!("missing instance `{role}` in `[instances]`"),
            );
        }
    }
    Some(Runbook {
        path: path.to_owned(),
        pool: pool?,
        powershell: powershell?,
        chat_database: chat_database?,
        compliance_database: compliance_database?,
        instances: ctx.instances.clone(),
        timeouts: timeouts?,
        log_shipping: ctx.overrides.clone(),
        management_store,
        chat_servers: servers,
        active_after_failover: ctx.active_after_failover.clone(),
        active_after_failback: ctx.active_after_failback.clone(),
        failover: failover?,
        planned_failover: match planned_failover {
            Some(p) => Some(p?),
            None => None,
        },
        failback: failback?,
        unsupported: Vec::new(),
    })
}

fn report<T>(
    d: &mut Diagnostics<'_>,
    span: std::ops::Range<usize>,
    result: Result<T, String>,
) -> Option<T> {
    result.map_err(|message| d.error(span, message)).ok()
}

fn read_pool(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Option<Pool> {
    let fqdn = t
        .string(d, "fqdn")
        .and_then(|f| report(d, f.span, check::fqdn(&f.value)).map(|()| f.value));
    // Microsoft's runbook writes `service:<pool fqdn>`, the cmdlet reference `PersistentChatServer:<fqdn>`
    // (reference H.1, UNVERIFIED which the cmdlet accepts); `service:` is the default, either can be set.
    let identity = t.opt_string(d, "identity").and_then(|i| {
        report(d, i.span, check::non_empty("`identity`", &i.value)).map(|()| i.value)
    });
    let explicit = t.raw("identity").is_some();
    t.finish(d);
    let fqdn = fqdn?;
    let identity = match identity {
        Some(identity) => identity,
        None if explicit => return None,
        None => format!("service:{fqdn}"),
    };
    Some(Pool { fqdn, identity })
}

/// The longest `[timeouts]` value: a server that needs more than an hour to log in or to answer a
/// read-only question is down, and pcfail should say so rather than wait.
const RUNBOOK_TIMEOUT_MAX: Duration = Duration::from_secs(3600);

/// The longest step `timeout`: the slowest step (a full backup or restore of a large database over a
/// WAN) takes hours, never days; a longer value is a typo that would leave a run waiting unseen.
const STEP_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 3600);

fn read_timeouts(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Option<RunbookTimeouts> {
    let defaults = RunbookTimeouts::default();
    let mut ok = true;
    let mut read = |key: &'static str, default: Duration| match t.opt_string(d, key) {
        None => {
            ok &= !t.has(key);
            default
        }
        Some(s) => match check::duration(&format!("`{key}`"), &s.value, RUNBOOK_TIMEOUT_MAX) {
            Ok(v) => v,
            Err(message) => {
                d.error(s.span, message);
                ok = false;
                default
            }
        },
    };
    let connect = read("connect", defaults.connect);
    let query = read("query", defaults.query);
    t.finish(d);
    ok.then_some(RunbookTimeouts { connect, query })
}

fn read_powershell(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Option<PowerShell> {
    let program = match t.opt_string(d, "program") {
        Some(p) => report(d, p.span, check::non_empty("`program`", &p.value)).map(|()| p.value),
        None if t.has("program") => None,
        None => Some("powershell.exe".to_owned()),
    };
    let module = match t.opt_string(d, "module") {
        // Module names are case-insensitive in PowerShell; Microsoft's docs write `SkypeforBusiness`.
        Some(m) => match m.value.to_ascii_lowercase().as_str() {
            "skypeforbusiness" => Some(Module::SkypeForBusiness),
            "lync" => Some(Module::Lync),
            _ => {
                d.error(
                    m.span,
                    format!(
                        "`module` must be `SkypeForBusiness` or `Lync`, found `{}`",
                        m.value
                    ),
                );
                None
            }
        },
        None if t.has("module") => None,
        None => Some(Module::SkypeForBusiness),
    };
    // Arguments may be empty strings; NUL, which no OS passes through argv, is refused by the reader
    // with every other control character.
    let args = t
        .opt_strings(d, "args")
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.value)
        .collect();
    let remote = match t.opt_table(d, "remote", "`[powershell.remote]`") {
        Some(r) => read_remote(&r, d).map(Some),
        None if t.has("remote") => None,
        None => Some(None),
    };
    t.finish(d);
    Some(PowerShell {
        program: program?,
        module: module?,
        args,
        remote: remote?,
    })
}

fn read_remote(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Option<Remote> {
    let computer = t
        .string(d, "computer")
        .and_then(|c| report(d, c.span.clone(), check::host(&c.value)).map(|()| c));
    let authentication = match t.opt_string(d, "authentication") {
        None if t.has("authentication") => None,
        None => Some(RemoteAuthentication::Default),
        // PowerShell reads enumeration values case-insensitively.
        Some(a) => match a.value.to_ascii_lowercase().as_str() {
            "default" => Some(RemoteAuthentication::Default),
            "kerberos" => Some(RemoteAuthentication::Kerberos),
            "negotiate" => Some(RemoteAuthentication::Negotiate),
            "credssp" => Some(RemoteAuthentication::CredSsp),
            other => {
                let why = if other == "basic" || other == "digest" {
                    " (Basic sends the password in the clear and, like Digest, is off on a default WinRM service)"
                } else {
                    ""
                };
                d.error(
                    a.span,
                    format!(
                        "`authentication` must be `Default`, `Kerberos`, `Negotiate` or `CredSSP`, found `{}`{why}",
                        a.value
                    ),
                );
                None
            }
        },
    };
    let use_ssl = t.opt_bool(d, "use_ssl").is_some_and(|b| b.value);
    let port = match t.opt_integer(d, "port") {
        None if t.has("port") => None,
        None => Some(None),
        Some(p) => match u16::try_from(p.value) {
            Ok(port) if port > 0 => Some(Some(port)),
            _ => {
                d.error(
                    p.span,
                    format!("`port` must be from 1 to 65535, found {}", p.value),
                );
                None
            }
        },
    };
    let configuration_name = match t.opt_string(d, "configuration_name") {
        None if t.has("configuration_name") => None,
        None => Some(None),
        Some(c) => report(
            d,
            c.span,
            check::non_empty("`configuration_name`", &c.value),
        )
        .map(|()| Some(c.value)),
    };
    let user = t.opt_string(d, "user");
    let password_env = t.opt_string(d, "password_env");
    let credential = match (user, password_env) {
        (None, None) if t.has("user") || t.has("password_env") => None,
        (None, None) => Some(None),
        (Some(user), Some(env)) => {
            let user =
                report(d, user.span.clone(), check::windows_account(&user.value)).map(|()| user);
            let env = report(d, env.span.clone(), check::env_name(&env.value)).map(|()| env);
            user.zip(env).map(|(user, env)| {
                Some(RemoteCredential {
                    user: user.value,
                    password_env: env.value,
                })
            })
        }
        (Some(one), None) | (None, Some(one)) => {
            d.error(
                one.span,
                "`user` and `password_env` in `[powershell.remote]` go together: the account and the environment variable holding its password (leave both out to connect as yourself)",
            );
            None
        }
    };
    t.finish(d);
    let (computer, authentication) = (computer?, authentication?);
    // Kerberos finds the computer's service principal by its name; an address has none.
    if authentication == RemoteAuthentication::Kerberos
        && computer.value.parse::<std::net::IpAddr>().is_ok()
    {
        d.error(
            computer.span.clone(),
            format!(
                "`computer = \"{}\"` is an IP address, which Kerberos cannot authenticate: use the computer's DNS name",
                computer.value
            ),
        );
        return None;
    }
    let credential = credential?;
    // PowerShell refuses CredSSP without -Credential; say it here rather than at 3 a.m.
    if authentication == RemoteAuthentication::CredSsp && credential.is_none() {
        d.error(
            t.span(),
            "`authentication = \"CredSSP\"` needs an explicit account: set `user` and `password_env` in `[powershell.remote]`",
        );
        return None;
    }
    Some(Remote {
        computer: computer.value,
        authentication,
        use_ssl,
        port: port?,
        configuration_name: configuration_name?,
        credential,
    })
}

type Databases = (Option<String>, Option<String>);

fn read_databases(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> Databases {
    let mut name = |key| {
        t.string(d, key)
            .and_then(|n| report(d, n.span, check::sql_identifier(&n.value)).map(|()| n.value))
    };
    let chat = name("chat");
    let compliance = name("compliance");
    t.finish(d);
    (chat, compliance)
}

fn read_instances(t: &Table<'_, '_>, d: &mut Diagnostics<'_>, ctx: &mut Context) {
    for (key, value) in t.entries(d) {
        let Some(role) = Role::from_key(&key.value) else {
            d.error(
                key.span.clone(),
                with_suggestion(
                    format!("unknown instance `{}` in `[instances]`", key.value),
                    &key.value,
                    Role::ALL.map(Role::key),
                ),
            );
            continue;
        };
        ctx.declared.insert(role);
        let DeValue::Table(table) = value.get_ref() else {
            d.error(value.span(), format!("`instances.{role}` must be a table"));
            continue;
        };
        let table = Table::new(format!("`instances.{role}`"), table, value.span());
        if let Some(instance) = read_instance(role, &table, d, ctx.runbook_dir.as_deref()) {
            ctx.instances.insert(role, instance);
        }
    }
}

fn read_instance(
    role: Role,
    t: &Table<'_, '_>,
    d: &mut Diagnostics<'_>,
    runbook_dir: Option<&Path>,
) -> Option<Instance> {
    let mut ok = true;
    let host = t
        .string(d, "host")
        .and_then(|h| report(d, h.span, check::instance_host(&h.value)).map(|()| h.value));
    let port = t.opt_integer(d, "port");
    let named = t.opt_string(d, "instance");
    let address = match (port, named) {
        (Some(p), Some(_)) => {
            d.error(
                p.span,
                format!("{} sets both `port` and `instance`; use one", t.context()),
            );
            None
        }
        (Some(p), None) => match u16::try_from(p.value) {
            Ok(port) if port > 0 => Some(Address::Port(port)),
            _ => {
                d.error(p.span, "`port` must be between 1 and 65535");
                None
            }
        },
        (None, Some(n)) => {
            report(d, n.span, check::instance_name(&n.value)).map(|()| Address::Named(n.value))
        }
        (None, None) if t.has("instance") => None,
        (None, None) => Some(Address::Port(1433)),
    };
    let browser_port = match t.opt_integer(d, "browser_port") {
        None => Some(1434),
        Some(p) if !t.has("instance") => {
            d.error(
                p.span,
                format!(
                    "`browser_port` in {} needs `instance`: SQL Browser resolves named instances",
                    t.context()
                ),
            );
            None
        }
        Some(p) => match u16::try_from(p.value) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                d.error(p.span, "`browser_port` must be between 1 and 65535");
                None
            }
        },
    };
    let data_center = t.string(d, "data_center").and_then(|dc| {
        let valid = !dc.value.is_empty()
            && dc
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            d.error(
                dc.span,
                format!(
                    "`{}` is not a valid data center name: use letters, digits, `-` and `_`",
                    dc.value
                ),
            );
        }
        valid.then_some(dc.value)
    });
    let server_name = t.opt_string(d, "server_name").and_then(|s| {
        report(d, s.span, check::sysname("`server_name`", &s.value)).map(|()| s.value)
    });
    let endpoint = t.opt_string(d, "mirroring_endpoint").and_then(|e| {
        let parsed = parse_endpoint(&e.value);
        report(d, e.span, parsed)
    });
    if t.raw("mirroring_endpoint").is_some() && endpoint.is_none() {
        ok = false;
    }
    let auth_key = t.opt_string(d, "auth");
    // `user` and `password_env` belong to the two kinds of login that carry a password.
    let is_sql = auth_key
        .as_ref()
        .is_some_and(|a| a.value == "sql" || a.value == "windows");
    // An `auth` already reported leaves `user` and `password_env` meaning unknown: take them as
    // known keys rather than report them a second time as misplaced.
    let auth_reported = auth_key.is_none() && t.has("auth");
    if auth_reported {
        t.raw("user");
        t.raw("password_env");
    }
    if !auth_reported && auth_key.as_ref().is_none_or(|a| a.value == "integrated") {
        // Where it is said (or, when left to the default, the instance's table).
        let span = auth_key
            .as_ref()
            .map_or_else(|| t.span(), |a| a.span.clone());
        if let Err(why) = crate::sql::build::integrated() {
            d.unsupported(
                span,
                format!("`auth = \"integrated\"` in {}: {why}", t.context()),
            );
        }
    }
    let auth = match auth_key {
        None if auth_reported => None,
        None => Some(Auth::Integrated),
        Some(a) if a.value == "integrated" => Some(Auth::Integrated),
        Some(a) if a.value == "windows" => {
            let user = t.string(d, "user").and_then(|u| {
                report(d, u.span, check::windows_account(&u.value)).map(|()| u.value)
            });
            let env = t
                .string(d, "password_env")
                .and_then(|e| report(d, e.span, check::env_name(&e.value)).map(|()| e.value));
            match (user, env) {
                (Some(user), Some(password_env)) => Some(Auth::Windows { user, password_env }),
                _ => None,
            }
        }
        Some(a) if a.value == "sql" => {
            let user = t.string(d, "user").and_then(|u| {
                report(d, u.span, check::sysname("`user`", &u.value)).map(|()| u.value)
            });
            let env = t
                .string(d, "password_env")
                .and_then(|e| report(d, e.span, check::env_name(&e.value)).map(|()| e.value));
            match (user, env) {
                (Some(user), Some(password_env)) => Some(Auth::Sql { user, password_env }),
                _ => None,
            }
        }
        Some(a) => {
            d.error(
                a.span,
                format!(
                    "`auth` must be `integrated`, `windows` or `sql`, found `{}`",
                    a.value
                ),
            );
            None
        }
    };
    let encryption = match t.opt_string(d, "encryption") {
        None => Some(Encryption::Required),
        Some(e) => {
            let parsed = Encryption::from_key(&e.value);
            if parsed.is_none() {
                d.error(
                    e.span,
                    format!(
                        "`encryption` must be one of `not_supported`, `off`, `on`, `required`, `strict`, found `{}`",
                        e.value
                    ),
                );
            }
            parsed
        }
    };
    let trust_key = t.opt_bool(d, "trust_server_certificate");
    let trust = trust_key.as_ref().is_some_and(|b| b.value);
    let ca_file = t.opt_string(d, "ca_file").and_then(|f| {
        let checked = check::ca_file(&f.value).and_then(|()| {
            if trust {
                Err("`ca_file` and `trust_server_certificate = true` contradict each other: the first checks the certificate against a CA, the second checks nothing; keep one".to_owned())
            } else {
                Ok(())
            }
        });
        report(d, f.span.clone(), checked)?;
        // A relative path is relative to the runbook's folder, wherever pcfail is started.
        let path = match runbook_dir {
            Some(dir) => dir.join(&f.value),
            None => PathBuf::from(&f.value),
        };
        // What this machine has, not what the file says: refused like a setting this build cannot
        // carry out, so `plan` still prints while `validate` and connecting commands refuse.
        if let Err(why) = check::ca_file_contents(&f.value, &path) {
            d.unsupported(f.span, why);
        }
        Some(path)
    });
    if t.raw("ca_file").is_some() && ca_file.is_none() {
        ok = false;
    }
    let certificate_host = t
        .opt_string(d, "certificate_host")
        .and_then(|h| report(d, h.span, check::host(&h.value)).map(|()| h.value));
    if t.raw("certificate_host").is_some() && certificate_host.is_none() {
        ok = false;
    }
    // `user` and `password_env` only mean something with `auth = "sql"`: with integrated auth they
    // are reported as misplaced rather than unknown, and an inlined `password` gets its own sentence.
    t.finish_with(d, |key| match key {
        "password" => Some(format!(
            "passwords must not be written in the runbook; put the password in an environment variable and name it with `password_env` in {}",
            t.context()
        )),
        "user" | "password_env" if !is_sql && !auth_reported => Some(format!(
            "`{key}` in {} needs `auth = \"sql\"` or `auth = \"windows\"`",
            t.context()
        )),
        _ => None,
    });
    if !is_sql && (t.has("user") || t.has("password_env")) {
        ok = false;
    }
    let host = host?;
    // @@SERVERNAME of a default instance is the computer name (upper case by convention); a named
    // instance appends `\NAME`. Override with `server_name` when the computer name differs.
    let address = address?;
    let server_name = server_name.unwrap_or_else(|| {
        let computer = host.split('.').next().unwrap_or(&host).to_ascii_uppercase();
        match &address {
            Address::Port(_) => computer,
            Address::Named(name) => format!("{computer}\\{name}"),
        }
    });
    ok.then_some(())?;
    Some(Instance {
        role,
        host,
        address,
        server_name,
        data_center: data_center?,
        mirroring_endpoint: endpoint,
        auth: auth?,
        encryption: encryption?,
        trust_server_certificate: trust,
        ca_file,
        certificate_host,
        browser_port: browser_port?,
    })
}

/// `TCP://host:port`, the only transport database mirroring has (reference E.1).
fn parse_endpoint(text: &str) -> Result<MirroringEndpoint, String> {
    let bad = || {
        Err(format!(
            "`{text}` is not a mirroring endpoint address; write `TCP://<host>:<port>`"
        ))
    };
    let Some(rest) = text
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("tcp://"))
        .map(|_| &text[6..])
    else {
        return bad();
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return bad();
    };
    let Ok(port) = port.parse::<u16>() else {
        return bad();
    };
    if port == 0 || check::host(host).is_err() {
        return bad();
    }
    Ok(MirroringEndpoint {
        host: host.to_owned(),
        port,
    })
}

fn read_overrides(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> LogShippingOverrides {
    let mut path = |key| {
        t.opt_string(d, key).and_then(|p| {
            report(d, p.span, check::non_empty(&format!("`{key}`"), &p.value)).map(|()| p.value)
        })
    };
    let share = path("share");
    let copy_folder = path("copy_folder");
    let pcfail_share = path("pcfail_share");
    let pcfail_copy_folder = path("pcfail_copy_folder");
    t.finish(d);
    LogShippingOverrides {
        share,
        copy_folder,
        pcfail_share,
        pcfail_copy_folder,
    }
}

fn read_management_store(t: &Table<'_, '_>, d: &mut Diagnostics<'_>) -> ManagementStore {
    let servers = t
        .opt_tables(d, "servers", |n| {
            format!("`central_management_store.servers` entry {n}")
        })
        .map(|tables| read_servers(&tables, d).0)
        .unwrap_or_default();
    // Kept even when invalid (the problem is reported here), so that a step using it does not report
    // it a second time.
    let backup_sql_server = match t.opt_string(d, "backup_sql_server") {
        Some(f) => {
            report(d, f.span.clone(), check::fqdn(&f.value));
            Some(f.value)
        }
        // Present but refused (reported already): a placeholder, never used, as the runbook fails.
        None if t.has("backup_sql_server") => Some(String::new()),
        None => None,
    };
    t.finish(d);
    ManagementStore {
        servers,
        backup_sql_server,
    }
}

/// The servers that were read whole, and whether every entry was.
fn read_servers(tables: &[Table<'_, '_>], d: &mut Diagnostics<'_>) -> (Vec<ChatServer>, bool) {
    let mut servers: Vec<ChatServer> = Vec::new();
    let mut ok = true;
    for t in tables {
        let fqdn = t.string(d, "fqdn").and_then(|f| {
            let valid = report(d, f.span.clone(), check::fqdn(&f.value)).is_some();
            if valid
                && servers
                    .iter()
                    .any(|s| s.fqdn.eq_ignore_ascii_case(&f.value))
            {
                d.error(
                    f.span,
                    format!("Persistent Chat server `{}` is listed twice", f.value),
                );
                return None;
            }
            valid.then_some(f.value)
        });
        let data_center = t.string(d, "data_center");
        t.finish(d);
        if let (Some(fqdn), Some(dc)) = (fqdn, data_center) {
            servers.push(ChatServer {
                fqdn,
                data_center: dc.value,
            });
        } else {
            ok = false;
        }
    }
    (servers, ok)
}

/// `servers_ok` is false when a `persistent_chat_servers` entry had problems: then a name that is not
/// among the servers read may be that entry's, and is not reported a second time.
fn read_active(
    t: &Table<'_, '_>,
    servers: &[ChatServer],
    servers_ok: bool,
    d: &mut Diagnostics<'_>,
    ctx: &mut Context,
) {
    let mut list = |key: &'static str, required_dc: Option<&str>, phase: &str| -> Vec<String> {
        let mut out = Vec::new();
        let Some(items) = t.strings(d, key) else {
            return out;
        };
        // Empty as written, not after the reader left out entries it reported.
        let written_empty = t
            .raw(key)
            .is_some_and(|v| matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()));
        if written_empty && let Some(span) = t.key_span(key) {
            d.error(
                span,
                format!("`{key}` must name at least one Persistent Chat server"),
            );
        }
        for item in items {
            let Some(server) = servers
                .iter()
                .find(|s| s.fqdn.eq_ignore_ascii_case(&item.value))
            else {
                if !servers_ok {
                    continue;
                }
                d.error(
                    item.span,
                    with_suggestion(
                        format!(
                            "active server `{}` is not one of the `persistent_chat_servers`",
                            item.value
                        ),
                        &item.value,
                        servers.iter().map(|s| s.fqdn.as_str()),
                    ),
                );
                continue;
            };
            // Microsoft: after failover the active servers must be in (or near) the backup data center,
            // whose databases the pool now uses (reference H.6, failover step 7).
            if let Some(dc) = required_dc
                && server.data_center != dc
            {
                d.error(
                    item.span,
                    format!(
                        "active server `{}` is in data center `{}`, but {phase} the active servers must be in data center `{dc}`",
                        server.fqdn, server.data_center
                    ),
                );
                continue;
            }
            out.push(server.fqdn.clone());
        }
        out
    };
    let backup_dc = ctx
        .instances
        .get(&Role::Backup)
        .map(|i| i.data_center.clone());
    ctx.active_after_failover = list("after_failover", backup_dc.as_deref(), "after failover");
    let primary_dc = ctx
        .instances
        .get(&Role::Primary)
        .map(|i| i.data_center.clone());
    ctx.active_after_failback = list("after_failback", primary_dc.as_deref(), "after fail-back");
    t.finish(d);
}

fn read_procedure(
    root: &Table<'_, '_>,
    key: &'static str,
    d: &mut Diagnostics<'_>,
    ctx: &Context,
) -> Option<Procedure> {
    let t = root.table(d, key, format!("`[{key}]`"))?;
    let notes = t
        .opt_strings(d, "notes")
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.value)
        .collect();
    let tables = t.opt_tables(d, "steps", |n| format!("step {n} of `{key}`"));
    t.finish(d);
    let tables = tables?;
    let mut ok = true;
    let mut steps = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for table in &tables {
        let id = table.string(d, "id").and_then(|id| {
            let valid = !id.value.is_empty()
                && id
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                d.error(
                    id.span.clone(),
                    format!(
                        "`{}` is not a valid step id: use letters, digits, `-` and `_`",
                        id.value
                    ),
                );
                return None;
            }
            if let Some(&first) = seen.get(&id.value) {
                let line = d.line_of(first);
                d.error(
                    id.span,
                    format!(
                        "duplicate step id `{}` in `{key}` (first used on line {line})",
                        id.value
                    ),
                );
                return None;
            }
            seen.insert(id.value.clone(), id.span.start);
            Some(id.value)
        });
        match read_step(table, d, ctx) {
            Some((action, description, timeout, confirm)) => {
                if let Some(id) = id {
                    steps.push(Step {
                        id,
                        description,
                        action,
                        timeout,
                        confirm,
                    });
                } else {
                    ok = false;
                }
            }
            None => ok = false,
        }
    }
    if tables.is_empty() {
        d.error(t.span(), format!("`{key}` has no steps"));
    }
    ok.then_some(Procedure { notes, steps })
}

type StepParts = (Action, String, Option<Duration>, bool);

fn read_step(t: &Table<'_, '_>, d: &mut Diagnostics<'_>, ctx: &Context) -> Option<StepParts> {
    let action_name = t.string(d, "action");
    let description = t.opt_string(d, "description").and_then(|s| {
        report(d, s.span, check::non_empty("`description`", &s.value)).map(|()| s.value)
    });
    let timeout = t.opt_string(d, "timeout").map(|s| {
        report(
            d,
            s.span,
            check::duration("`timeout`", &s.value, STEP_TIMEOUT_MAX),
        )
    });
    let timeout_reported = timeout.is_none() && t.has("timeout");
    let confirm = t.opt_bool(d, "confirm").is_some_and(|b| b.value);
    let Some(action_name) = action_name else {
        // Without an action its parameters cannot be told from typos; report only the other keys' types.
        return None;
    };
    let mut reader = StepReader { table: t, d, ctx };
    let action = Action::parse(&action_name, &mut reader);
    if Action::NAMES.contains(&action_name.value.as_str()) {
        t.finish(d);
    }
    let action = action?;
    let timeout = match timeout {
        None if timeout_reported => return None,
        None => None,
        Some(Some(duration)) => Some(duration),
        Some(None) => return None,
    };
    let description = description.unwrap_or_else(|| action.describe());
    Some((action, description, timeout, confirm))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[pool]
fqdn = "atl-cs-001.litwareinc.com"
[databases]
chat = "mgc"
compliance = "mgccomp"
[instances.primary]
host = "atl-sql-001.litwareinc.com"
data_center = "ATL"
[instances.backup]
host = "dal-sql-001.litwareinc.com"
data_center = "DAL"
[[persistent_chat_servers]]
fqdn = "atl-pc-001.litwareinc.com"
data_center = "ATL"
[[persistent_chat_servers]]
fqdn = "dal-pc-001.litwareinc.com"
data_center = "DAL"
[active_servers]
after_failover = ["dal-pc-001.litwareinc.com"]
after_failback = ["atl-pc-001.litwareinc.com"]
[failover]
[[failover.steps]]
id = "recover"
action = "recover_database"
database = "mgc"
[failback]
[[failback.steps]]
id = "normal"
action = "set_pool_state"
state = "Normal"
"#;

    fn load(extra: &str, replace: (&str, &str)) -> Result<Runbook, Vec<String>> {
        let text = format!("{}{extra}", BASE.replacen(replace.0, replace.1, 1));
        parse(Path::new("rb.toml"), &text).map_err(|d| d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_fill_what_the_runbook_leaves_out() {
        let runbook = load("", ("", ""))
            .map_err(|e| e.join("\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(runbook.pool.identity, "service:atl-cs-001.litwareinc.com");
        assert_eq!(runbook.powershell.program, "powershell.exe");
        assert_eq!(runbook.powershell.module, Module::SkypeForBusiness);
        let backup = &runbook.instances[&Role::Backup];
        assert_eq!(
            (
                &backup.address,
                backup.server_name.as_str(),
                backup.encryption,
                &backup.auth,
                backup.trust_server_certificate
            ),
            (
                &Address::Port(1433),
                "DAL-SQL-001",
                Encryption::Required,
                &Auth::Integrated,
                false
            )
        );
    }

    #[test]
    fn instance_settings_are_read_as_written() {
        type Getter = fn(&Instance) -> String;
        let cases: &[(&str, Getter, &str)] = &[
            (
                "data_center = \"DAL\"\ninstance = \"PCHAT\"",
                |i| i.server_name.clone(),
                "DAL-SQL-001\\PCHAT",
            ),
            (
                "data_center = \"DAL\"\nserver_name = \"DALSQL\"",
                |i| i.server_name.clone(),
                "DALSQL",
            ),
            (
                "data_center = \"DAL\"\nencryption = \"not_supported\"",
                |i| i.encryption.key().to_owned(),
                "not_supported",
            ),
            (
                "data_center = \"DAL\"\ntrust_server_certificate = true",
                |i| i.trust_server_certificate.to_string(),
                "true",
            ),
            (
                "data_center = \"DAL\"\nauth = \"sql\"\nuser = \"sa\"\npassword_env = \"PW\"",
                |i| format!("{:?}", i.auth),
                "Sql { user: \"sa\", password_env: \"PW\" }",
            ),
        ];
        for (to, get, expected) in cases {
            // `data_center = "DAL"` occurs first in the backup's table: the edit adds keys there.
            let text = BASE.replacen("data_center = \"DAL\"", to, 1);
            let runbook =
                parse(Path::new("rb.toml"), &text).unwrap_or_else(|d| panic!("{to}: {d:?}"));
            assert_eq!(get(&runbook.instances[&Role::Backup]), *expected, "{to}");
        }
    }

    #[test]
    fn topology_problems_are_reported_with_their_place() {
        let cases: &[((&str, &str), &str)] = &[
            (
                (
                    "fqdn = \"atl-cs-001.litwareinc.com\"",
                    "fqdn = \"atl-cs-001\"",
                ),
                "rb.toml:3:8: error: `atl-cs-001` is not a fully qualified domain name",
            ),
            (
                ("[failback]", "[powershell]\nmodule = \"Teams\"\n[failback]"),
                "rb.toml:28:10: error: `module` must be `SkypeForBusiness` or `Lync`, found `Teams`",
            ),
            (
                (
                    "data_center = \"DAL\"",
                    "data_center = \"DAL\"\nport = 1433\ninstance = \"X\"",
                ),
                "rb.toml:13:8: error: `instances.backup` sets both `port` and `instance`; use one",
            ),
            (
                (
                    "data_center = \"DAL\"",
                    "data_center = \"DAL\"\nmirroring_endpoint = \"dal:5022\"",
                ),
                "rb.toml:13:22: error: `dal:5022` is not a mirroring endpoint address; write `TCP://<host>:<port>`",
            ),
            (
                (
                    "data_center = \"DAL\"",
                    "data_center = \"DAL\"\npassword_env = \"PW\"",
                ),
                "rb.toml:13:1: error: `password_env` in `instances.backup` needs `auth = \"sql\"` or `auth = \"windows\"`",
            ),
            (
                (
                    "state = \"Normal\"",
                    "state = \"Normal\"\ntimeout = \"soon\"",
                ),
                "rb.toml:32:11: error: `soon` is not a duration; write a number and a unit, e.g. `90s`, `15m`, `1h30m`",
            ),
        ];
        for ((from, to), expected) in cases {
            let got = load("", (from, to)).err().unwrap_or_default();
            let expected: Vec<String> = if expected.is_empty() {
                vec![]
            } else {
                vec![(*expected).to_owned()]
            };
            assert_eq!(got, expected, "edit {from:?} -> {to:?}");
        }
    }

    #[test]
    fn a_remote_session_is_read_and_its_problems_located() {
        let remote = |lines: &str| {
            (
                "[failback]",
                format!("[powershell.remote]\n{lines}\n[failback]"),
            )
        };
        let text = BASE.replacen(
            "[failback]",
            "[powershell.remote]\ncomputer = \"dal-fe-001.litwareinc.com\"\nauthentication = \"kerberos\"\nuse_ssl = true\nuser = \"LITWAREINC\\\\pcfail\"\npassword_env = \"FE_PW\"\n[failback]",
            1,
        );
        let runbook = parse(Path::new("rb.toml"), &text).unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(
            runbook.powershell.remote,
            Some(Remote {
                computer: "dal-fe-001.litwareinc.com".into(),
                authentication: RemoteAuthentication::Kerberos,
                use_ssl: true,
                port: None,
                configuration_name: None,
                credential: Some(RemoteCredential {
                    user: "LITWAREINC\\pcfail".into(),
                    password_env: "FE_PW".into(),
                }),
            })
        );
        let cases: &[(&str, &str)] = &[
            (
                "computer = \"fe\"\nauthentication = \"Basic\"",
                "rb.toml:29:18: error: `authentication` must be `Default`, `Kerberos`, `Negotiate` or `CredSSP`, found `Basic` (Basic sends the password in the clear and, like Digest, is off on a default WinRM service)",
            ),
            (
                "computer = \"fe\"\nuser = \"LITWAREINC\\\\pcfail\"",
                "rb.toml:29:8: error: `user` and `password_env` in `[powershell.remote]` go together: the account and the environment variable holding its password (leave both out to connect as yourself)",
            ),
            (
                "computer = \"10.0.0.7\"\nauthentication = \"Kerberos\"",
                "rb.toml:28:12: error: `computer = \"10.0.0.7\"` is an IP address, which Kerberos cannot authenticate: use the computer's DNS name",
            ),
            (
                "computer = \"fe\"\nauthentication = \"CredSSP\"",
                "rb.toml:27:1: error: `authentication = \"CredSSP\"` needs an explicit account: set `user` and `password_env` in `[powershell.remote]`",
            ),
            (
                "computer = \"fe\"\nport = 0",
                "rb.toml:29:8: error: `port` must be from 1 to 65535, found 0",
            ),
            (
                "computer = \"fe\"\nuser = \"pcfail\"\npassword_env = \"PW\"",
                "rb.toml:29:8: error: `pcfail` is not a Windows account: write it `DOMAIN\\name` (e.g. `LITWAREINC\\pcfail`)",
            ),
        ];
        for (lines, expected) in cases {
            let (from, to) = remote(lines);
            let got = load("", (from, &to)).err().unwrap_or_default();
            assert_eq!(got, [*expected], "{lines}");
        }
    }

    #[test]
    fn a_misspelt_role_is_reported_with_what_follows_from_it() {
        assert_eq!(
            load("", ("[instances.backup]", "[instances.bakup]"))
                .err()
                .unwrap_or_default(),
            [
                "rb.toml:1:1: error: missing instance `backup` in `[instances]`",
                "rb.toml:10:12: error: unknown instance `bakup` in `[instances]`; did you mean `backup`?",
                "rb.toml:23:1: error: step 1 of `failover` needs instance `backup`, which is not defined in `[instances]`",
            ]
        );
    }

    #[test]
    fn a_failover_server_outside_the_backup_data_center_is_refused() {
        let got = load(
            "",
            (
                "after_failover = [\"dal-pc-001.litwareinc.com\"]",
                "after_failover = [\"atl-pc-001.litwareinc.com\", \"nope.litwareinc.com\"]",
            ),
        );
        assert_eq!(
            got.err().unwrap_or_default(),
            [
                "rb.toml:20:19: error: active server `atl-pc-001.litwareinc.com` is in data center `ATL`, but after failover the active servers must be in data center `DAL`",
                "rb.toml:20:48: error: active server `nope.litwareinc.com` is not one of the `persistent_chat_servers`",
            ]
        );
    }

    #[test]
    fn mirroring_endpoints_are_tcp_host_port() {
        let cases = [
            (
                "TCP://dal-sql-001.litwareinc.com:5022",
                Some(("dal-sql-001.litwareinc.com", 5022)),
            ),
            ("tcp://127.0.0.1:5022", Some(("127.0.0.1", 5022))),
            ("TCP://host", None),
            ("http://host:5022", None),
            ("TCP://a;b:5022", None),
            ("TCP://host:0", None),
            ("TCP://host:70000", None),
        ];
        for (text, expected) in cases {
            let got = parse_endpoint(text).ok();
            assert_eq!(
                got.as_ref().map(|e| (e.host.as_str(), e.port)),
                expected,
                "endpoint {text:?}"
            );
        }
    }
}
