//! Failover step 6 as Microsoft documents it: `Install-CsMirrorDatabase` (reference H.4), the
//! alternative to [`super::MirrorDatabase`].
//!
//! `-SqlServerFqdn` is the *primary* SQL Server (here the backup instance, now principal); the mirror
//! comes from the published topology. `-DatabaseType` and `-ConfiguredDatabases` are different
//! parameter sets, so only `-DatabaseType` is used, with `-SqlInstanceName` for a named instance.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError, probe};
use crate::quote::ps_string;
use crate::runbook::{Address, Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallMirrorDatabase {
    pub instance: Role,
    pub database_type: &'static str,
    pub sql_server_fqdn: String,
    pub sql_instance_name: Option<String>,
    pub file_share: String,
}

impl InstallMirrorDatabase {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database_type = r.choice(
            "database_type",
            &["PersistentChat", "PersistentChatCompliance"],
        );
        let file_share = r.text("file_share");
        let instance = instance?;
        let info = r.instance_info(instance)?;
        let sql_instance_name = match &info.address {
            Address::Named(name) => Some(name.clone()),
            Address::Port(_) => None,
        };
        let sql_server_fqdn = info.host.clone();
        Some(Self {
            instance,
            database_type: database_type?,
            sql_server_fqdn,
            sql_instance_name,
            file_share: file_share?,
        })
    }

    pub fn name(&self) -> &'static str {
        "install_mirror_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Mirror the {} database of the {} instance with Install-CsMirrorDatabase",
            self.database_type, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        let instance = self
            .sql_instance_name
            .as_deref()
            .map(|n| format!(" -SqlInstanceName {}", ps_string(n)))
            .unwrap_or_default();
        vec![Command::powershell(format!(
            "Install-CsMirrorDatabase -DatabaseType {} -SqlServerFqdn {}{instance} -FileShare {} -DropExistingDatabasesOnMirror -Confirm:$false",
            ps_string(self.database_type),
            ps_string(&self.sql_server_fqdn),
            ps_string(&self.file_share)
        ))]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    /// `-DropExistingDatabasesOnMirror` deletes the mirror's copy.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: the cmdlet does the work; SQL tells whether the database is mirrored before and after.
impl InstallMirrorDatabase {
    fn database<'a>(&self, s: &'a Session<'_>) -> &'a str {
        if self.database_type == "PersistentChatCompliance" {
            &s.runbook.compliance_database
        } else {
            &s.runbook.chat_database
        }
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let db = self.database(s).to_owned();
        Ok(probe::mirroring(s, self.instance, &db)
            .await?
            .is_some_and(|m| m.role_desc.eq_ignore_ascii_case("PRINCIPAL")))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if self.check_done(s).await? {
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "Install-CsMirrorDatabase returned, but `{}` on `{}` is not a mirroring principal",
                self.database(s),
                self.instance
            )))
        }
    }
}
