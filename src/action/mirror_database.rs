//! Failover step 6 by T-SQL: mirror a database of the new principal (the backup instance) onto its
//! mirror instance, in the order SQL Server requires (reference E.2).
//!
//! The prerequisites first, checked or set before the irreversible restore on the mirror (reference
//! E.2, J.5): an endpoint on each side (created only where none exists: an instance has at most one
//! mirroring endpoint), STARTED (an existing one that is not is started), listening on the runbook's
//! port (a different one stops the step: it is shared, so pcfail does not move it), a login and
//! `CONNECT` on each endpoint for the other partner's service account where the two run under
//! different accounts (1418 otherwise), and the FULL recovery model on the principal (1465 otherwise).
//! Then a full and a log backup into one file
//! restored WITH NORECOVERY on the mirror, then SET PARTNER on the mirror first and the principal
//! second. Every statement is a single plain statement; conditions are carried as `when` and checked
//! live rather than written as T-SQL `IF`. Where the mirror keeps its files in other directories
//! than the principal (its SERVERPROPERTY defaults), the full restore MOVEs each file there (reference
//! J.3; 5133/3156 otherwise).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{MirroringEndpoint, Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorDatabase {
    pub principal: Role,
    pub mirror: Role,
    pub database: String,
    /// A file both instances can reach (a share); holds the full backup (FILE = 1) and log (FILE = 2).
    pub backup_file: String,
    pub principal_endpoint: MirroringEndpoint,
    pub mirror_endpoint: MirroringEndpoint,
}

impl MirrorDatabase {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let principal = r.instance_or("instance", Role::Backup);
        let mirror = r.instance_or("mirror", Role::BackupMirror);
        let database = r.database("database");
        let backup_file = r.text("backup_file");
        let (principal, mirror) = (principal?, mirror?);
        if principal == mirror {
            r.d.error(
                r.table.span(),
                format!(
                    "{} mirrors `{principal}` onto itself; `mirror` must be another instance",
                    r.table.context()
                ),
            );
            return None;
        }
        let principal_endpoint = r.endpoint(principal);
        let mirror_endpoint = r.endpoint(mirror);
        Some(Self {
            principal,
            mirror,
            database: database?,
            backup_file: backup_file?,
            principal_endpoint: principal_endpoint?,
            mirror_endpoint: mirror_endpoint?,
        })
    }

    pub fn name(&self) -> &'static str {
        "mirror_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Mirror `{}` from the {} instance to the {} instance",
            self.database, self.principal, self.mirror
        )
    }

    fn endpoint(role: Role, port: u16) -> Command {
        Command::Sql {
            instance: role,
            database: "master".to_owned(),
            // Microsoft's examples name the endpoint freely; `Mirroring` is what SSMS's wizard uses.
            text: format!(
                "CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = {port}) FOR DATABASE_MIRRORING (ROLE = PARTNER)"
            ),
            when: Some(format!(
                "only if {role} has no DATABASE_MIRRORING endpoint (sys.database_mirroring_endpoints)"
            )),
        }
    }

    /// Clears a half-made session a stopped attempt left on the mirror (RESTORE would refuse it, 3104).
    fn clear_mirror(&self) -> Command {
        Command::Sql {
            instance: self.mirror,
            database: "master".to_owned(),
            text: format!("ALTER DATABASE {} SET PARTNER OFF", ident(&self.database)),
            when: Some(
                "only when this step runs again after an earlier attempt stopped part-way (1416, not configured, and 5011, no such database, mean there is nothing to clear)"
                    .to_owned(),
            ),
        }
    }

    /// An existing endpoint is checked, and started if it is not (reference J.5: both partners'
    /// endpoints must be STARTED, 1418 otherwise); its port is never changed, since every database
    /// mirrored on the instance shares it.
    fn existing_endpoints(&self) -> Command {
        Command::Computed {
            what: format!(
                "ALTER ENDPOINT [<name>] STATE = STARTED on {} and on {} where the existing DATABASE_MIRRORING endpoint is not STARTED; the step stops before any backup if an existing endpoint listens on another port than the runbook's `mirroring_endpoint` ({} and {})",
                self.mirror, self.principal, self.mirror_endpoint, self.principal_endpoint
            ),
            from: "sys.database_mirroring_endpoints joined to sys.tcp_endpoints".to_owned(),
        }
    }

    /// Each partner connects to the other's endpoint as its SQL Server service account; another
    /// account than the endpoint's own instance's needs a login there and CONNECT on the endpoint
    /// (reference J.5), or the principal's SET PARTNER fails with 1418.
    fn connect_grants(&self) -> Command {
        Command::Computed {
            what: format!(
                "CREATE LOGIN [<account>] FROM WINDOWS where it does not exist, and GRANT CONNECT ON ENDPOINT::[<name>] TO [<account>], on {} for {}'s service account and on {} for {}'s, where the partners' services run under different accounts and the grant is missing",
                self.mirror, self.principal, self.principal, self.mirror
            ),
            from: "sys.dm_server_services, sys.server_principals and sys.server_permissions on both partners".to_owned(),
        }
    }

    /// A restore puts each file where it was on the principal (reference J.3); where the mirror keeps
    /// its files elsewhere, MOVE puts them in the mirror's default directories.
    fn relocation(&self) -> Command {
        Command::Computed {
            what: format!(
                "`, MOVE N'<logical>' TO N'<path>'` added to the RESTORE DATABASE on {} for each file of `{}` whose directory on {} is not {}'s default data or log directory, which it is moved to",
                self.mirror, self.database, self.principal, self.mirror
            ),
            from: format!(
                "sys.master_files on {}, SERVERPROPERTY('InstanceDefaultDataPath') and ('InstanceDefaultLogPath') on {}",
                self.principal, self.mirror
            ),
        }
    }

    /// Mirroring needs the FULL recovery model on both partners (1465); the mirror's copy is restored
    /// from the principal's backups, so it follows the principal's model.
    fn full_recovery(&self) -> Command {
        Command::Sql {
            instance: self.principal,
            database: "master".to_owned(),
            text: format!("ALTER DATABASE {} SET RECOVERY FULL", ident(&self.database)),
            when: Some(format!(
                "only if `{}` on {} is not in the FULL recovery model (sys.databases.recovery_model_desc); the full backup that follows starts its log chain",
                self.database, self.principal
            )),
        }
    }

    /// The backups, the restores on the mirror (REPLACE: the irreversible part), and the partners,
    /// mirror first (reference E.2).
    fn establish(&self) -> Vec<Command> {
        self.establish_with("")
    }

    /// [`Self::establish`] with `moves` (`, MOVE N'..' TO N'..'`...) added to the full restore.
    fn establish_with(&self, moves: &str) -> Vec<Command> {
        let db = ident(&self.database);
        let file = sql_string(&self.backup_file);
        vec![
            Command::sql(
                self.principal,
                format!("BACKUP DATABASE {db} TO DISK = {file} WITH INIT, FORMAT, CHECKSUM"),
            ),
            Command::sql(
                self.principal,
                format!("BACKUP LOG {db} TO DISK = {file} WITH NOINIT, CHECKSUM"),
            ),
            Command::sql(
                self.mirror,
                format!(
                    "RESTORE DATABASE {db} FROM DISK = {file} WITH FILE = 1, NORECOVERY, REPLACE{moves}"
                ),
            ),
            Command::sql(
                self.mirror,
                format!("RESTORE LOG {db} FROM DISK = {file} WITH FILE = 2, NORECOVERY"),
            ),
            self.partner_on_mirror(),
            self.partner_on_principal(),
        ]
    }

    fn partner_on_mirror(&self) -> Command {
        Command::sql(
            self.mirror,
            format!(
                "ALTER DATABASE {} SET PARTNER = {}",
                ident(&self.database),
                sql_string(&self.principal_endpoint.to_string())
            ),
        )
    }

    fn partner_on_principal(&self) -> Command {
        Command::sql(
            self.principal,
            format!(
                "ALTER DATABASE {} SET PARTNER = {}",
                ident(&self.database),
                sql_string(&self.mirror_endpoint.to_string())
            ),
        )
    }

    pub fn render(&self) -> Vec<Command> {
        let mut commands = vec![
            self.clear_mirror(),
            Self::endpoint(self.mirror, self.mirror_endpoint.port),
            Self::endpoint(self.principal, self.principal_endpoint.port),
            self.existing_endpoints(),
            self.connect_grants(),
            self.full_recovery(),
            self.relocation(),
        ];
        commands.extend(self.establish());
        commands
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.principal)
    }

    /// RESTORE ... REPLACE overwrites whatever copy of the database the mirror instance held.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: endpoints are created only where missing; if an earlier attempt already made the mirror
/// a partner of the principal, only the principal's SET PARTNER is left to do (restoring the mirror
/// again would fail with 3104). Done when both sides report the session.
impl MirrorDatabase {
    async fn sides(
        &self,
        s: &mut Session<'_>,
    ) -> Result<(Option<probe::Mirroring>, Option<probe::Mirroring>), StepError> {
        let principal = probe::mirroring(s, self.principal, &self.database).await?;
        let mirror = probe::mirroring(s, self.mirror, &self.database).await?;
        Ok((principal, mirror))
    }

    /// Whether `side` is in `role` with `partner`. sys.database_mirroring.mirroring_partner_name is
    /// the partner's TCP:// address in practice, but that is UNVERIFIED (reference E.4): a server
    /// that names the partner by its server name (the endpoint host's first label, `HOST` or
    /// `HOST\INSTANCE`) is partnered just the same.
    fn partnered(side: &Option<probe::Mirroring>, role: &str, partner: &MirroringEndpoint) -> bool {
        let address = partner.to_string();
        let host = partner.host.split('.').next().unwrap_or_default();
        side.as_ref().is_some_and(|m| {
            let name = m.partner_name.as_str();
            let server = name.split('\\').next().unwrap_or_default();
            m.role_desc.eq_ignore_ascii_case(role)
                && (name.eq_ignore_ascii_case(&address)
                    || (!host.is_empty() && server.eq_ignore_ascii_case(host)))
        })
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let (p, m) = self.sides(s).await?;
        Ok(Self::partnered(&p, "PRINCIPAL", &self.mirror_endpoint)
            && Self::partnered(&m, "MIRROR", &self.principal_endpoint))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let (p, m) = self.sides(s).await?;
        if let Some(p) = &p {
            return Err(StepError::Failed(format!(
                "`{}` on `{}` is already mirrored ({} with partner {}); remove that mirroring first",
                self.database, self.principal, p.role_desc, p.partner_name
            )));
        }
        // If an earlier attempt already made the mirror a partner of the principal, only the
        // principal's SET PARTNER is left to do.
        if Self::partnered(&m, "MIRROR", &self.principal_endpoint) {
            return s.run_command(&self.partner_on_principal()).await;
        }
        if s.retrying() {
            match s.run_unconditionally(&self.clear_mirror()).await {
                Err(e) if matches!(e.sql_number(), Some(1416 | 5011)) => {}
                other => other?,
            }
        }
        // The prerequisites, before the irreversible restore on the mirror.
        for (role, endpoint) in [
            (self.mirror, &self.mirror_endpoint),
            (self.principal, &self.principal_endpoint),
        ] {
            self.endpoint_ready(s, role, endpoint).await?;
        }
        for (owner, partner) in [(self.mirror, self.principal), (self.principal, self.mirror)] {
            self.connect_granted(s, owner, partner).await?;
        }
        let model = probe::recovery_model(s, self.principal, &self.database).await?;
        if model.is_some_and(|m| !m.eq_ignore_ascii_case("FULL")) {
            s.progress(&format!(
                "`{}` on `{}` is not in the FULL recovery model, which mirroring needs (1465): setting it",
                self.database, self.principal
            ));
            s.run_unconditionally(&self.full_recovery()).await?;
        }
        let moves = self.moves(s).await?;
        for command in self.establish_with(&moves) {
            s.run_command(&command).await?;
        }
        Ok(())
    }

    /// The MOVE options the mirror's restore needs (empty when every file's directory on the
    /// principal is the mirror's default one too, or the mirror does not say where its defaults are).
    async fn moves(&self, s: &mut Session<'_>) -> Result<String, StepError> {
        let files = probe::database_files(s, self.principal, &self.database).await?;
        let (data, log) = probe::default_paths(s, self.mirror).await?;
        let (Some(data), Some(log)) = (data, log) else {
            s.progress(&format!(
                "`{}` does not give its default data and log directories (SERVERPROPERTY, SQL Server 2012 and later): `{}` is restored to the principal's paths",
                self.mirror, self.database
            ));
            return Ok(String::new());
        };
        let moves = crate::exec::relocate::relocations(&files, &data, &log);
        if moves.is_empty() {
            return Ok(String::new());
        }
        s.progress(&format!(
            "`{}` keeps its files elsewhere than `{}`: moving {} to {}",
            self.mirror,
            self.principal,
            moves
                .iter()
                .map(|(logical, _)| format!("`{logical}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if data.eq_ignore_ascii_case(&log) {
                data.clone()
            } else {
                format!("{data} and {log}")
            }
        ));
        Ok(crate::exec::relocate::options(&moves))
    }

    /// Lets `partner`'s service account connect to `owner`'s mirroring endpoint, where it is another
    /// account than `owner`'s own: a login, then CONNECT, each only if missing.
    async fn connect_granted(
        &self,
        s: &mut Session<'_>,
        owner: Role,
        partner: Role,
    ) -> Result<(), StepError> {
        let (Some(account), own) = (
            probe::service_account(s, partner).await?,
            probe::service_account(s, owner).await?,
        ) else {
            s.progress(&format!(
                "`{partner}` does not say which account its SQL Server service runs under (sys.dm_server_services), so its CONNECT permission on `{owner}`'s mirroring endpoint is not checked"
            ));
            return Ok(());
        };
        if own.is_some_and(|own| own.eq_ignore_ascii_case(&account)) {
            return Ok(());
        }
        if let Some(why) = local_account(&account) {
            return Err(StepError::Failed(format!(
                "`{partner}` runs SQL Server as `{account}`, {why}, which reaches `{owner}`'s mirroring endpoint as its computer account (`<DOMAIN>\\<computer>$`); pcfail does not guess that name. Grant it by hand on `{owner}` (CREATE LOGIN [<DOMAIN>\\<computer>$] FROM WINDOWS; GRANT CONNECT ON ENDPOINT::[<endpoint>] TO [<DOMAIN>\\<computer>$]) or run the service under a domain account, then run the same command again"
            )));
        }
        let Some(endpoint) = probe::mirroring_endpoint(s, owner).await? else {
            return Err(StepError::Failed(format!(
                "`{owner}` has no mirroring endpoint to grant CONNECT on"
            )));
        };
        let (login, granted) = probe::endpoint_connect(s, owner, &account, endpoint.id).await?;
        if granted {
            return Ok(());
        }
        s.progress(&format!(
            "`{partner}` runs SQL Server as `{account}`, which may not connect to the mirroring endpoint `{}` on `{owner}`: granting CONNECT",
            endpoint.name
        ));
        let quoted =
            crate::quote::sql_identifier(&account).map_err(|e| StepError::Failed(e.to_string()))?;
        if !login {
            s.run_command(&Command::sql(
                owner,
                format!("CREATE LOGIN {quoted} FROM WINDOWS"),
            ))
            .await?;
        }
        let name = crate::quote::sql_identifier(&endpoint.name)
            .map_err(|e| StepError::Failed(e.to_string()))?;
        s.run_command(&Command::sql(
            owner,
            format!("GRANT CONNECT ON ENDPOINT::{name} TO {quoted}"),
        ))
        .await
    }

    /// Creates the endpoint where none exists, starts one that is not STARTED, and stops the step when
    /// one listens on another port than the runbook's address.
    async fn endpoint_ready(
        &self,
        s: &mut Session<'_>,
        role: Role,
        address: &MirroringEndpoint,
    ) -> Result<(), StepError> {
        let Some(existing) = probe::mirroring_endpoint(s, role).await? else {
            return s
                .run_unconditionally(&Self::endpoint(role, address.port))
                .await;
        };
        if existing
            .port
            .is_some_and(|port| port != i64::from(address.port))
        {
            return Err(StepError::Failed(format!(
                "the mirroring endpoint `{}` on `{role}` listens on port {}, but the runbook gives `{role}`'s mirroring_endpoint as {address}; the partner would not reach it (1418). Set mirroring_endpoint to the endpoint's port (an instance has one mirroring endpoint, shared by every mirrored database, so pcfail does not move it)",
                existing.name,
                existing.port.unwrap_or_default()
            )));
        }
        if !existing.state_desc.eq_ignore_ascii_case("STARTED") {
            s.progress(&format!(
                "the mirroring endpoint `{}` on `{role}` is {}: starting it",
                existing.name, existing.state_desc
            ));
            let start = Command::sql(
                role,
                format!(
                    "ALTER ENDPOINT {} STATE = STARTED",
                    crate::quote::sql_identifier(&existing.name)
                        .map_err(|e| StepError::Failed(e.to_string()))?
                ),
            );
            s.run_command(&start).await?;
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if self.check_done(s).await? {
            return Ok(());
        }
        let (p, m) = self.sides(s).await?;
        let show = |x: &Option<probe::Mirroring>| {
            x.as_ref().map_or("not mirrored".to_owned(), |m| {
                format!("{} {} with {}", m.role_desc, m.state_desc, m.partner_name)
            })
        };
        Err(StepError::Failed(format!(
            "mirroring of `{}` is not established: principal `{}` is {}, mirror `{}` is {}",
            self.database,
            self.principal,
            show(&p),
            self.mirror,
            show(&m)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_is_recognised_by_its_address_or_its_server_name() {
        let partner = MirroringEndpoint {
            host: "dal-sql-002.litwareinc.com".to_owned(),
            port: 5022,
        };
        let side = |role: &str, name: &str| {
            Some(probe::Mirroring {
                role_desc: role.to_owned(),
                state_desc: "SYNCHRONIZED".to_owned(),
                partner_name: name.to_owned(),
            })
        };
        let cases = [
            (
                side("PRINCIPAL", "TCP://dal-sql-002.litwareinc.com:5022"),
                true,
            ),
            (
                side("Principal", "tcp://DAL-SQL-002.litwareinc.com:5022"),
                true,
            ),
            (side("PRINCIPAL", "DAL-SQL-002"), true),
            (side("PRINCIPAL", "DAL-SQL-002\\PCHAT"), true),
            (side("PRINCIPAL", "DAL-SQL-001"), false),
            (side("MIRROR", "DAL-SQL-002"), false),
            (None, false),
        ];
        for (m, expected) in cases {
            assert_eq!(
                MirrorDatabase::partnered(&m, "PRINCIPAL", &partner),
                expected,
                "{m:?}"
            );
        }
    }
}

/// Why `account` cannot be granted on another server by its own name, if it cannot: a virtual
/// service account (`NT SERVICE\...`) or a built-in one (`NT AUTHORITY\...`, `LocalSystem`) is
/// known on its own computer only, and authenticates elsewhere as the computer account.
fn local_account(account: &str) -> Option<&'static str> {
    let lower = account.trim().to_ascii_lowercase();
    if lower.starts_with("nt service\\") {
        Some("a virtual service account")
    } else if lower.starts_with("nt authority\\")
        || matches!(lower.as_str(), "localsystem" | ".\\localsystem")
    {
        Some("a built-in account")
    } else {
        None
    }
}

#[cfg(test)]
mod account_tests {
    use super::local_account;

    #[test]
    fn only_domain_accounts_are_granted_by_their_own_name() {
        for (account, local) in [
            ("LITWAREINC\\svc-sql", false),
            ("svc-sql@litwareinc.com", false),
            ("NT Service\\MSSQLSERVER", true),
            ("NT AUTHORITY\\NETWORK SERVICE", true),
            ("LocalSystem", true),
        ] {
            assert_eq!(local_account(account).is_some(), local, "{account}");
        }
    }
}
