//! Install-CsMirrorDatabase and Uninstall-CsMirrorDatabase: parameter sets and SQL failures. The full
//! mirroring path needs the lab's SQL engine and is tested with it.

use serde_json::json;

use crate::support::{Lab, error_of};

const INSTALL: &str = "Microsoft.Rtc.Management.Deployment.InstallMirrorDatabaseCmdlet";
const UNINSTALL: &str = "Microsoft.Rtc.Management.Deployment.UninstallMirrorDatabaseCmdlet";

const REFUSED: &str = "A network-related or instance-specific error occurred while establishing a connection to SQL Server. The server was not found or was not accessible. Verify that the instance name is correct and that SQL Server is configured to allow remote connections. (provider: TCP Provider, error: 0 - No connection could be made because the target machine actively refused it.)";

#[test]
fn an_unreachable_sql_server_is_reported_as_a_cmdlet_error() {
    let lab = Lab::new();
    let commands = [
        "Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare '\\\\dal-fs\\share' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -DropExistingDatabasesOnMirror",
        "Install-CsMirrorDatabase -ConfiguredDatabases -FileShare '\\\\dal-fs\\share' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -Verbose",
    ];
    for command in commands {
        let response = lab.after_import(command);
        assert_eq!(
            error_of(&response),
            &json!({
                "type": "Microsoft.Rtc.Management.Deployment.DeploymentException",
                "message": format!("Cannot connect to SQL Server \"dal-sql-001.litwareinc.com\": {REFUSED}"),
                "fully_qualified_error_id": format!("SqlConnectionFailed,{INSTALL}"),
                "category": "ConnectionError",
                "target": "dal-sql-001.litwareinc.com",
            }),
            "{command}"
        );
    }
}

#[test]
fn configured_databases_and_database_type_cannot_be_combined() {
    let lab = Lab::new();
    for command in [
        "Install-CsMirrorDatabase -ConfiguredDatabases -DatabaseType PersistentChat -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com'",
        "Install-CsMirrorDatabase -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com'",
        "Install-CsMirrorDatabase -ConfiguredDatabases -SqlInstanceName 'x' -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com'",
    ] {
        let response = lab.after_import(command);
        assert_eq!(
            error_of(&response),
            &json!({
                "type": "System.Management.Automation.ParameterBindingException",
                "message": "Parameter set cannot be resolved using the specified named parameters.",
                "fully_qualified_error_id": format!("AmbiguousParameterSet,{INSTALL}"),
                "category": "InvalidArgument",
                "target": null,
            }),
            "{command}"
        );
    }
}

#[test]
fn update_and_the_documented_misspelling_are_not_parameters() {
    let lab = Lab::new();
    for (command, name) in [
        (
            "Install-CsMirrorDatabase -ConfiguredDatabases -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -Update",
            "Update",
        ),
        (
            "Install-CsMirrorDatabase -ConfiguredDatabases -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -DropExisitingDatabasesOnMirror",
            "DropExisitingDatabasesOnMirror",
        ),
    ] {
        let response = lab.after_import(command);
        assert_eq!(
            error_of(&response)["message"],
            format!("A parameter cannot be found that matches parameter name '{name}'.")
        );
        assert_eq!(
            error_of(&response)["fully_qualified_error_id"],
            format!("NamedParameterNotFound,{INSTALL}")
        );
    }
}

#[test]
fn a_missing_mandatory_file_share_is_reported() {
    let lab = Lab::new();
    let response = lab.after_import("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'dal-sql-001.litwareinc.com'");
    assert_eq!(
        error_of(&response)["message"],
        "Cannot process command because of one or more missing mandatory parameters: FileShare."
    );
}

#[test]
fn topology_problems_are_reported_before_connecting() {
    let lab = Lab::new();
    let cases = [
        (
            "Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare 's' -SqlServerFqdn 'nowhere.litwareinc.com'",
            "SQL Server \"nowhere.litwareinc.com\" is not defined in the topology.",
            "SqlServerNotFound",
        ),
        (
            "Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare 's' -SqlServerFqdn 'dal-sql-002.litwareinc.com'",
            "No mirror SQL store is defined in the topology for SQL Server \"dal-sql-002.litwareinc.com\".",
            "MirrorNotDefined",
        ),
        (
            "Install-CsMirrorDatabase -DatabaseType User -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com'",
            "No database of type \"User\" is installed on SQL Server \"dal-sql-001.litwareinc.com\".",
            "DatabaseNotInstalled",
        ),
    ];
    for (command, message, id) in cases {
        let response = lab.after_import(command);
        assert_eq!(error_of(&response)["message"], message, "{command}");
        assert_eq!(
            error_of(&response)["fully_qualified_error_id"],
            format!("{id},{INSTALL}"),
            "{command}"
        );
    }
}

#[test]
fn a_bad_database_type_lists_the_valid_values() {
    let lab = Lab::new();
    let response = lab.after_import("Install-CsMirrorDatabase -DatabaseType Chat -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com'");
    assert_eq!(
        error_of(&response)["message"],
        "Cannot bind parameter 'DatabaseType'. Cannot convert value \"Chat\" to type \"Microsoft.Rtc.Management.Deployment.DatabaseNameType\". Error: \"Unable to match the identifier name Chat to a valid enumerator name. Specify one of the following enumerator names and try again:\r\nActiveMonitoring, Application, Archiving, CentralMgmt, Edge, Lyss, Monitoring, PersistentChat, PersistentChatCompliance, Provision, Registrar, SigninTelemetry, User\""
    );
}

#[test]
fn uninstall_asks_for_confirmation_and_then_reaches_sql() {
    let lab = Lab::new();
    let response = lab.after_import("Uninstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'dal-sql-001.litwareinc.com'");
    assert_eq!(
        error_of(&response)["fully_qualified_error_id"],
        format!("InvalidOperation,{UNINSTALL}")
    );
    let response = lab.after_import(
        "Uninstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'dal-sql-001.litwareinc.com' -DropExistingDatabasesOnMirror -Confirm:$false",
    );
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "Microsoft.Rtc.Management.Deployment.DeploymentException",
            "message": format!("Cannot connect to SQL Server \"dal-sql-001.litwareinc.com\": {REFUSED}"),
            "fully_qualified_error_id": format!("SqlConnectionFailed,{UNINSTALL}"),
            "category": "ConnectionError",
            "target": "dal-sql-001.litwareinc.com",
        })
    );
}

#[test]
fn report_is_written_even_when_the_cmdlet_fails() {
    let lab = Lab::new();
    let report = lab.dir().join("report.html");
    let response = lab.after_import(&format!(
        "Install-CsMirrorDatabase -DatabaseType PersistentChat -FileShare 's' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -Report '{}'",
        report.display()
    ));
    assert_eq!(response["ok"], false);
    let html = std::fs::read_to_string(report).unwrap();
    assert!(
        html.starts_with("<html><head><title>Install-CsMirrorDatabase</title>"),
        "{html}"
    );
}
