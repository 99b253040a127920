//! Install-/Uninstall-CsMirrorDatabase and Test-CsPersistentChatMessage against scripted SQL instances:
//! which statements go to which instance, in which order, and how SQL errors are reported.

use serde_json::json;

use crate::scripted_sql::{Failure, ScriptedSql};
use crate::support::{Lab, POOL, error_of};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

const DAL1: &str = "dal-sql-001.litwareinc.com";
const DAL2: &str = "dal-sql-002.litwareinc.com";

#[test]
fn install_backs_up_restores_and_sets_partners_mirror_first() {
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    let response = lab.after_import(
        "Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare '/lab/share/' -SqlServerFqdn 'DAL-SQL-001.litwareinc.com' -DropExistingDatabasesOnMirror",
    );
    assert_eq!(
        response,
        json!({"id": 2, "ok": true, "output": [], "warnings": [], "verbose": []})
    );
    assert_eq!(
        sql.transcript(),
        pairs(&[
            (
                DAL1,
                "BACKUP DATABASE [mgc] TO DISK = N'/lab/share/mgc.bak' WITH INIT"
            ),
            (
                DAL1,
                "BACKUP LOG [mgc] TO DISK = N'/lab/share/mgc_log.bak' WITH INIT"
            ),
            (
                DAL2,
                "RESTORE DATABASE [mgc] FROM DISK = N'/lab/share/mgc.bak' WITH NORECOVERY, REPLACE"
            ),
            (
                DAL2,
                "RESTORE LOG [mgc] FROM DISK = N'/lab/share/mgc_log.bak' WITH NORECOVERY"
            ),
            (
                DAL2,
                "ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-001.litwareinc.com:5022'"
            ),
            (
                DAL1,
                "ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-002.litwareinc.com:5022'"
            ),
        ])
    );
}

#[test]
fn configured_databases_mirror_mgc_and_mgccomp_minus_exclusions() {
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    let response = lab.after_import("Install-CsMirrorDatabase -ConfiguredDatabases -FileShare '/s' -SqlServerFqdn 'atl-sql-001.litwareinc.com'");
    assert_eq!(response["ok"], true);
    let restores: Vec<String> = sql
        .transcript()
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.starts_with("RESTORE DATABASE"))
        .collect();
    assert_eq!(
        restores,
        vec![
            "RESTORE DATABASE [mgc] FROM DISK = N'/s/mgc.bak' WITH NORECOVERY",
            "RESTORE DATABASE [mgccomp] FROM DISK = N'/s/mgccomp.bak' WITH NORECOVERY"
        ]
    );
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    let response = lab.after_import(
        "Install-CsMirrorDatabase -ConfiguredDatabases -FileShare '/s' -SqlServerFqdn 'atl-sql-001.litwareinc.com' -ExcludeDatabaseList 'MGCCOMP'",
    );
    assert_eq!(response["ok"], true);
    assert!(
        sql.transcript().iter().all(|(_, s)| !s.contains("mgccomp")),
        "{:?}",
        sql.transcript()
    );
}

#[test]
fn the_first_sql_error_stops_install_and_is_reported_with_its_number_and_text() {
    let sql = ScriptedSql::start();
    sql.fail(Failure {
        instance: "dal-sql-002",
        prefix: "RESTORE DATABASE",
        number: 3154,
        message:
            "The backup set holds a backup of a database other than the existing 'mgc' database."
                .to_owned(),
    });
    let lab = Lab::with_addresses(&sql.addresses);
    let response = lab.after_import("Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare '/s' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -Verbose");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "Microsoft.Rtc.Management.Deployment.DeploymentException",
            "message": "Running \"RESTORE DATABASE [mgc] FROM DISK = N'/s/mgc.bak' WITH NORECOVERY\" on SQL Server \"dal-sql-002.litwareinc.com\" failed: SQL Server error 3154, severity 16, state 1: The backup set holds a backup of a database other than the existing 'mgc' database.",
            "fully_qualified_error_id": "SqlCommandFailed,Microsoft.Rtc.Management.Deployment.InstallMirrorDatabaseCmdlet",
            "category": "InvalidOperation",
            "target": "dal-sql-002.litwareinc.com",
        })
    );
    assert_eq!(
        sql.transcript().len(),
        3,
        "nothing runs after the failed RESTORE"
    );
    assert_eq!(
        response["verbose"],
        json!([
            "Executing on \"dal-sql-001.litwareinc.com\": BACKUP DATABASE [mgc] TO DISK = N'/s/mgc.bak' WITH INIT",
            "Executing on \"dal-sql-001.litwareinc.com\": BACKUP LOG [mgc] TO DISK = N'/s/mgc_log.bak' WITH INIT",
            "Executing on \"dal-sql-002.litwareinc.com\": RESTORE DATABASE [mgc] FROM DISK = N'/s/mgc.bak' WITH NORECOVERY",
        ])
    );
}

#[test]
fn a_rejected_login_is_a_connection_error_with_the_sql_error() {
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    let manifest_path = lab.dir().join("lab.json");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace("lab-password", "wrong");
    std::fs::write(&manifest_path, text).unwrap();
    let response = lab.after_import("Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare '/s' -SqlServerFqdn 'dal-sql-001.litwareinc.com'");
    assert_eq!(
        error_of(&response)["message"],
        "Cannot connect to SQL Server \"dal-sql-001.litwareinc.com\": SQL Server error 18456, severity 14, state 1: Login failed for user 'sa'."
    );
}

#[test]
fn uninstall_turns_partner_off_and_drops_the_mirror_copy() {
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    let response = lab.after_import(
        "Uninstall-CsMirrorDatabase -DatabaseType PersistentChatCompliance -SqlServerFqdn 'dal-sql-001.litwareinc.com' -DropExistingDatabasesOnMirror -Confirm:$false",
    );
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(
        sql.transcript(),
        pairs(&[
            (DAL1, "ALTER DATABASE [mgccomp] SET PARTNER OFF"),
            (DAL2, "DROP DATABASE [mgccomp]")
        ])
    );
}

#[test]
fn the_chat_test_succeeds_when_the_state_databases_are_online() {
    let sql = ScriptedSql::start();
    let lab = Lab::with_addresses(&sql.addresses);
    // Normal: the primary store's mgc is restoring (a mirror after failover), its mirror is online.
    sql.set_mgc_state("atl-sql-001.litwareinc.com", "RESTORING");
    sql.set_mgc_state("atl-sql-002.litwareinc.com", "ONLINE");
    let response = lab.after_import("Test-CsPersistentChatMessage");
    let result = &response["output"][0];
    assert_eq!(result["Result"], "Success", "{response}");
    assert_eq!(result["TargetFqdn"], POOL);
    assert_eq!(result["Error"], json!(null));
    // FailedOver: the backup store has no mgc at all, and its mirror has none either.
    lab.write_cms(json!({"pool": POOL, "pool_state": "FailedOver", "active_servers": []}));
    let response = lab.after_import("Test-CsPersistentChatMessage");
    assert_eq!(
        response["output"][0]["Error"],
        "The Persistent Chat database \"mgc\" for pool state FailedOver is not available. dal-sql-001.litwareinc.com: database \"mgc\" does not exist. dal-sql-002.litwareinc.com: database \"mgc\" does not exist."
    );
}
