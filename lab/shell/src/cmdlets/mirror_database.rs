//! `Install-CsMirrorDatabase` and `Uninstall-CsMirrorDatabase` (reference H.4, H.5, E.2, E.3): real
//! database mirroring through SQL, the T-SQL the cmdlets' effect needs, run with tiberius against the
//! instance named by `-SqlServerFqdn` and its topology mirror (lab.json `mirror`).
//!
//! Install, per database: full backup and log backup to `-FileShare` on the principal, restore both
//! `WITH NORECOVERY` on the mirror (`REPLACE` under `-DropExistingDatabasesOnMirror`), then
//! `SET PARTNER` on the mirror first and on the principal second (E.2's required order). Uninstall:
//! `SET PARTNER OFF` on the named instance, and `DROP DATABASE` on the mirror copy under
//! `-DropExistingDatabasesOnMirror`. The first SQL error stops the cmdlet and becomes its error, with
//! the SQL error number and text in the message. Not simulated: `-DatabasePathMap` (the lab's
//! instances share one file layout, so no MOVE is needed) and witness configuration.

use std::fmt::Write as _;

use crate::binding::{CmdletSpec, EnumType, ParamSpec, ParamType};
use crate::cmdlets::Invocation;
use crate::error::ErrorRecord;
use crate::manifest::{Instance, LabManifest};
use crate::sql::{Connection, SqlFailure, identifier, string_literal};

/// UNVERIFIED: the enum's full name; the members are the documented ones (reference H.4).
static DATABASE_TYPE: EnumType = EnumType {
    full_name: "Microsoft.Rtc.Management.Deployment.DatabaseNameType",
    names: &[
        "ActiveMonitoring",
        "Application",
        "Archiving",
        "CentralMgmt",
        "Edge",
        "Lyss",
        "Monitoring",
        "PersistentChat",
        "PersistentChatCompliance",
        "Provision",
        "Registrar",
        "SigninTelemetry",
        "User",
    ],
};

const FQDN: &str = "Microsoft.Rtc.Management.Deployment.Core.Fqdn";

pub(crate) static INSTALL_SPEC: CmdletSpec = CmdletSpec {
    name: "Install-CsMirrorDatabase",
    type_name: "Microsoft.Rtc.Management.Deployment.InstallMirrorDatabaseCmdlet",
    params: &[
        ParamSpec {
            sets: &["ByConfigured"],
            mandatory: true,
            ..ParamSpec::switch("ConfiguredDatabases")
        },
        ParamSpec {
            sets: &["ByDatabase"],
            mandatory: true,
            ..ParamSpec::optional(
                "DatabaseType",
                ParamType::Enum(&DATABASE_TYPE),
                DATABASE_TYPE.full_name,
            )
        },
        ParamSpec {
            mandatory: true,
            ..ParamSpec::optional("FileShare", ParamType::String, "System.String")
        },
        ParamSpec {
            mandatory: true,
            ..ParamSpec::optional("SqlServerFqdn", ParamType::String, FQDN)
        },
        ParamSpec::optional(
            "DatabasePathMap",
            ParamType::Hashtable,
            "System.Collections.Hashtable",
        ),
        ParamSpec::switch("DropExistingDatabasesOnMirror"),
        ParamSpec::optional(
            "ExcludeDatabaseList",
            ParamType::StringArray,
            "System.String[]",
        ),
        ParamSpec {
            sets: &["ByConfigured"],
            ..ParamSpec::switch("ForDefaultInstance")
        },
        ParamSpec {
            sets: &["ByConfigured"],
            ..ParamSpec::optional("ForInstance", ParamType::String, "System.String")
        },
        ParamSpec::optional("Report", ParamType::String, "System.String"),
        ParamSpec {
            sets: &["ByDatabase"],
            ..ParamSpec::optional("SqlInstanceName", ParamType::String, "System.String")
        },
    ],
    // UNVERIFIED: no default set, so naming neither -ConfiguredDatabases nor -DatabaseType cannot be
    // resolved, like naming both.
    default_set: None,
    supports_should_process: true,
};

pub(crate) static UNINSTALL_SPEC: CmdletSpec = CmdletSpec {
    name: "Uninstall-CsMirrorDatabase",
    type_name: "Microsoft.Rtc.Management.Deployment.UninstallMirrorDatabaseCmdlet",
    params: &[
        ParamSpec {
            mandatory: true,
            ..ParamSpec::optional(
                "DatabaseType",
                ParamType::Enum(&DATABASE_TYPE),
                DATABASE_TYPE.full_name,
            )
        },
        ParamSpec {
            mandatory: true,
            ..ParamSpec::optional("SqlServerFqdn", ParamType::String, FQDN)
        },
        ParamSpec::optional("SqlInstanceName", ParamType::String, "System.String"),
        ParamSpec::switch("DropExistingDatabasesOnMirror"),
        ParamSpec::optional("Report", ParamType::String, "System.String"),
    ],
    default_set: None,
    supports_should_process: true,
};

/// The Persistent Chat store's databases, in the order they are mirrored.
const CONFIGURED: &[(&str, &str)] = &[
    ("PersistentChat", "mgc"),
    ("PersistentChatCompliance", "mgccomp"),
];

fn deployment_error(
    inv: &Invocation<'_>,
    id: &str,
    category: &str,
    message: String,
    target: &str,
) -> ErrorRecord {
    // UNVERIFIED: exception type and error ids of the deployment cmdlets' failures.
    ErrorRecord::new(
        "Microsoft.Rtc.Management.Deployment.DeploymentException",
        message,
        format!("{id},{}", inv.spec.type_name),
        category,
        Some(target.to_owned()),
    )
}

fn instance<'m>(
    inv: &Invocation<'_>,
    manifest: &'m LabManifest,
    fqdn: &str,
) -> Result<&'m Instance, ErrorRecord> {
    manifest.instance_by_fqdn(fqdn).ok_or_else(|| {
        deployment_error(
            inv,
            "SqlServerNotFound",
            "ObjectNotFound",
            format!("SQL Server \"{fqdn}\" is not defined in the topology."),
            fqdn,
        )
    })
}

/// The databases `-DatabaseType` (or `-ConfiguredDatabases`) selects on a Persistent Chat store.
fn databases(inv: &Invocation<'_>, fqdn: &str) -> Result<Vec<&'static str>, ErrorRecord> {
    let excluded = inv.bound.strings("ExcludeDatabaseList");
    let selected: Vec<&'static str> = match inv.bound.string("DatabaseType") {
        None => CONFIGURED.iter().map(|(_, db)| *db).collect(),
        Some(kind) => match CONFIGURED.iter().find(|(k, _)| *k == kind) {
            Some((_, db)) => vec![*db],
            None => {
                // The lab's stores hold only Persistent Chat databases. UNVERIFIED wording.
                return Err(deployment_error(
                    inv,
                    "DatabaseNotInstalled",
                    "ObjectNotFound",
                    format!(
                        "No database of type \"{kind}\" is installed on SQL Server \"{fqdn}\"."
                    ),
                    fqdn,
                ));
            }
        },
    };
    Ok(selected
        .into_iter()
        .filter(|db| !excluded.iter().any(|e| e.eq_ignore_ascii_case(db)))
        .collect())
}

fn sql_error(inv: &Invocation<'_>, failure: SqlFailure, statement: Option<&str>) -> ErrorRecord {
    let fqdn = failure.fqdn().to_owned();
    match (&failure, statement) {
        (SqlFailure::Connect { .. }, _) | (_, None) => deployment_error(
            inv,
            "SqlConnectionFailed",
            "ConnectionError",
            format!("Cannot connect to SQL Server \"{fqdn}\": {failure}"),
            &fqdn,
        ),
        (_, Some(statement)) => deployment_error(
            inv,
            "SqlCommandFailed",
            "InvalidOperation",
            format!("Running \"{statement}\" on SQL Server \"{fqdn}\" failed: {failure}"),
            &fqdn,
        ),
    }
}

/// Runs one statement, recording it for -Verbose and -Report.
fn execute(
    inv: &mut Invocation<'_>,
    report: &mut String,
    connection: &mut Connection<'_>,
    statement: &str,
) -> Result<(), ErrorRecord> {
    inv.verbose.push(format!(
        "Executing on \"{}\": {statement}",
        connection.fqdn()
    ));
    let result = connection.execute(statement);
    let _ = writeln!(
        report,
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        html(connection.fqdn()),
        html(statement),
        if result.is_ok() { "Success" } else { "Failure" }
    );
    result.map_err(|failure| sql_error(inv, failure, Some(statement)))
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes the -Report file (an HTML table of the statements run), whatever the outcome.
fn write_report(inv: &mut Invocation<'_>, rows: &str) {
    let Some(path) = inv.bound.string("Report") else {
        return;
    };
    let body = format!(
        "<html><head><title>{name}</title></head><body><h1>{name}</h1><table><tr><th>Server</th><th>Statement</th><th>Result</th></tr>\n{rows}</table></body></html>\n",
        name = inv.spec.name
    );
    if let Err(e) = std::fs::write(&path, body) {
        inv.warnings
            .push(format!("Cannot write report \"{path}\": {e}."));
    }
}

/// Joins a file name to the share path with the share's own separator.
fn share_file(share: &str, file: &str) -> String {
    let separator = if share.contains('\\') && !share.contains('/') {
        '\\'
    } else {
        '/'
    };
    format!("{}{separator}{file}", share.trim_end_matches(['/', '\\']))
}

pub(crate) fn run_install(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let principal_fqdn = inv.bound.string("SqlServerFqdn").unwrap_or_default();
    let principal = instance(inv, &manifest, &principal_fqdn)?;
    let Some(mirror_fqdn) = principal.mirror.clone() else {
        return Err(deployment_error(
            inv,
            "MirrorNotDefined",
            "ObjectNotFound",
            format!(
                "No mirror SQL store is defined in the topology for SQL Server \"{}\".",
                principal.fqdn
            ),
            &principal.fqdn,
        ));
    };
    let mirror = instance(inv, &manifest, &mirror_fqdn)?;
    let databases = databases(inv, &principal.fqdn)?;
    let share = inv.bound.string("FileShare").unwrap_or_default();
    let replace = inv.bound.switch("DropExistingDatabasesOnMirror");
    let mut report = String::new();
    let result = (|| {
        let sql = inv.sql;
        let mut on_principal = sql
            .connect(&manifest, principal)
            .map_err(|f| sql_error(inv, f, None))?;
        let mut on_mirror = sql
            .connect(&manifest, mirror)
            .map_err(|f| sql_error(inv, f, None))?;
        for db in &databases {
            let name = identifier(db);
            let full = string_literal(&share_file(&share, &format!("{db}.bak")));
            let log = string_literal(&share_file(&share, &format!("{db}_log.bak")));
            // INIT: a re-run overwrites the previous export instead of appending backup sets to it.
            // Plain (not COPY_ONLY) log backup: mirroring needs the mirror rolled forward past a log
            // backup of the principal (E.2). UNVERIFIED whether the real cmdlet uses COPY_ONLY.
            execute(
                inv,
                &mut report,
                &mut on_principal,
                &format!("BACKUP DATABASE {name} TO DISK = {full} WITH INIT"),
            )?;
            execute(
                inv,
                &mut report,
                &mut on_principal,
                &format!("BACKUP LOG {name} TO DISK = {log} WITH INIT"),
            )?;
            let options = if replace {
                "NORECOVERY, REPLACE"
            } else {
                "NORECOVERY"
            };
            execute(
                inv,
                &mut report,
                &mut on_mirror,
                &format!("RESTORE DATABASE {name} FROM DISK = {full} WITH {options}"),
            )?;
            execute(
                inv,
                &mut report,
                &mut on_mirror,
                &format!("RESTORE LOG {name} FROM DISK = {log} WITH NORECOVERY"),
            )?;
            execute(
                inv,
                &mut report,
                &mut on_mirror,
                &format!(
                    "ALTER DATABASE {name} SET PARTNER = {}",
                    string_literal(&principal.endpoint)
                ),
            )?;
            execute(
                inv,
                &mut report,
                &mut on_principal,
                &format!(
                    "ALTER DATABASE {name} SET PARTNER = {}",
                    string_literal(&mirror.endpoint)
                ),
            )?;
        }
        Ok(())
    })();
    write_report(inv, &report);
    result
}

pub(crate) fn run_uninstall(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let named_fqdn = inv.bound.string("SqlServerFqdn").unwrap_or_default();
    let named = instance(inv, &manifest, &named_fqdn)?;
    let databases = databases(inv, &named.fqdn)?;
    // The docs disagree on whether -SqlServerFqdn names the principal or the mirror (H.5); the
    // mirror copy is the topology mirror of the named instance, or the named instance itself when it
    // is some store's mirror.
    let mirror = match named.mirror.as_deref() {
        Some(fqdn) => instance(inv, &manifest, fqdn)?,
        None => named,
    };
    let drop = inv.bound.switch("DropExistingDatabasesOnMirror");
    let mut report = String::new();
    let result = (|| {
        let sql = inv.sql;
        let mut on_named = sql
            .connect(&manifest, named)
            .map_err(|f| sql_error(inv, f, None))?;
        for db in &databases {
            execute(
                inv,
                &mut report,
                &mut on_named,
                &format!("ALTER DATABASE {} SET PARTNER OFF", identifier(db)),
            )?;
        }
        if drop {
            let mut on_mirror = sql
                .connect(&manifest, mirror)
                .map_err(|f| sql_error(inv, f, None))?;
            for db in &databases {
                execute(
                    inv,
                    &mut report,
                    &mut on_mirror,
                    &format!("DROP DATABASE {}", identifier(db)),
                )?;
            }
        }
        Ok(())
    })();
    write_report(inv, &report);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_files_use_the_share_separator() {
        let cases: &[(&str, &str)] = &[
            ("/lab/share", "/lab/share/mgc.bak"),
            ("/lab/share/", "/lab/share/mgc.bak"),
            ("\\\\atl-fs\\share", "\\\\atl-fs\\share\\mgc.bak"),
            ("\\\\atl-fs\\share\\", "\\\\atl-fs\\share\\mgc.bak"),
        ];
        for (share, expected) in cases {
            assert_eq!(share_file(share, "mgc.bak"), *expected);
        }
    }
}
