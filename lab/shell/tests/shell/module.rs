//! Import-Module, command lookup and Get-Command.

use serde_json::json;

use crate::support::{Lab, error_of};

const NOT_RECOGNIZED: &str = "is not recognized as the name of a cmdlet, function, script file, or operable program. \
                              Check the spelling of the name, or if a path was included, verify that the path is correct and try again.";

const UNAPPROVED_VERBS: &str = "WARNING: The names of some imported commands from the module 'SkypeForBusiness' include unapproved verbs that might make them less discoverable. To find the commands with unapproved verbs, run the Import-Module command again with the Verbose parameter. For a list of approved verbs, type Get-Verb.\n";

#[test]
fn cs_cmdlets_are_not_recognized_before_the_module_is_imported() {
    let lab = Lab::new();
    let response = lab.run(&["Get-CsPersistentChatState"]).response();
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.Management.Automation.CommandNotFoundException",
            "message": format!("The term 'Get-CsPersistentChatState' {NOT_RECOGNIZED}"),
            "fully_qualified_error_id": "CommandNotFoundException",
            "category": "ObjectNotFound",
            "target": "Get-CsPersistentChatState",
        })
    );
}

#[test]
fn importing_the_module_case_insensitively_warns_on_stderr_once() {
    let lab = Lab::new();
    let run = lab.run(&[
        "import-module skypeforbusiness",
        "Import-Module SkypeForBusiness",
        "Get-CsPersistentChatState",
    ]);
    let responses = run.responses();
    assert_eq!(
        responses[0],
        json!({"id": 1, "ok": true, "output": [], "warnings": [], "verbose": []})
    );
    assert_eq!(responses[2]["ok"], true);
    assert_eq!(run.stderr, UNAPPROVED_VERBS);
}

#[test]
fn disable_name_checking_suppresses_the_import_warning() {
    let lab = Lab::new();
    let run = lab.run(&["Import-Module SkypeForBusiness -DisableNameChecking"]);
    assert_eq!(run.response()["ok"], true);
    assert_eq!(run.stderr, "");
}

#[test]
fn an_unknown_module_is_not_loaded() {
    let lab = Lab::new();
    let response = lab
        .run(&["Import-Module 'SkypeForBusinessServer'"])
        .response();
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.IO.FileNotFoundException",
            "message": "The specified module 'SkypeForBusinessServer' was not loaded because no valid module file was found in any module directory.",
            "fully_qualified_error_id": "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
            "category": "ResourceUnavailable",
            "target": "SkypeForBusinessServer",
        })
    );
}

#[test]
fn get_command_describes_a_cmdlet_with_its_real_and_common_parameters() {
    let lab = Lab::new();
    let response = lab.after_import("Get-Command -Name 'Set-CsPersistentChatState'");
    assert_eq!(
        response["output"],
        json!([{
            "Name": "Set-CsPersistentChatState",
            "CommandType": "Cmdlet",
            "Source": "SkypeForBusiness",
            "Parameters": ["Identity", "Instance", "PoolState", "Force", "Verbose", "Debug", "ErrorAction", "WarningAction",
                "InformationAction", "ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer",
                "PipelineVariable", "WhatIf", "Confirm"],
        }])
    );
}

#[test]
fn install_cs_mirror_database_has_no_update_parameter() {
    let lab = Lab::new();
    let response = lab.after_import("Get-Command Install-CsMirrorDatabase");
    let parameters = response["output"][0]["Parameters"].as_array().unwrap();
    assert!(parameters.contains(&json!("DropExistingDatabasesOnMirror")));
    assert!(!parameters.contains(&json!("Update")));
}

#[test]
fn the_lync_module_name_is_accepted_and_shown_as_source() {
    let lab = Lab::new();
    let run = lab.run(&[
        "Import-Module Lync",
        "Get-Command Get-CsPersistentChatState",
    ]);
    assert_eq!(run.responses()[1]["output"][0]["Source"], "Lync");
}

#[test]
fn get_cs_persistent_chat_active_server_does_not_exist_even_after_import() {
    let lab = Lab::new();
    let response = lab.after_import("Get-CsPersistentChatActiveServer");
    assert_eq!(
        error_of(&response)["type"],
        "System.Management.Automation.CommandNotFoundException"
    );
    assert_eq!(
        error_of(&response)["message"],
        format!("The term 'Get-CsPersistentChatActiveServer' {NOT_RECOGNIZED}")
    );
    let response = lab.after_import("Get-Command -Name Get-CsPersistentChatActiveServer");
    assert_eq!(
        error_of(&response)["fully_qualified_error_id"],
        "CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand"
    );
}

#[test]
fn get_command_with_a_wildcard_that_matches_nothing_returns_nothing() {
    let lab = Lab::new();
    let response = lab.run(&["Get-Command -Name 'Set-Cs*'"]).response();
    assert_eq!(
        response,
        json!({"id": 1, "ok": true, "output": [], "warnings": [], "verbose": []})
    );
    let response = lab.after_import("Get-Command -Name 'Set-CsPersistentChat*'");
    let names: Vec<_> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            json!("Set-CsPersistentChatActiveServer"),
            json!("Set-CsPersistentChatState")
        ]
    );
}

#[test]
fn real_module_cmdlets_the_lab_does_not_simulate_say_so() {
    let lab = Lab::new();
    let response = lab.after_import("Get-CsService -PersistentChatServer");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "pcfail.NotSimulated",
            "message": "The lab shell does not simulate 'Get-CsService'.",
            "fully_qualified_error_id": "pcfail.NotSimulated",
            "category": "NotImplemented",
            "target": "Get-CsService",
        })
    );
}
