//! Set-CsPersistentChatActiveServer over cms.json.

use serde_json::json;

use crate::support::{Lab, POOL, error_of};

const TYPE: &str = "Microsoft.Rtc.Management.Internal.SetPersistentChatActiveServerCmdlet";

fn active_after(lab: &Lab, command: &str) -> serde_json::Value {
    let response = lab.after_import(command);
    assert_eq!(
        response,
        json!({"id": 2, "ok": true, "output": [], "warnings": [], "verbose": []}),
        "{command}"
    );
    lab.cms()["active_servers"].clone()
}

#[test]
fn list_modifiers_edit_the_active_servers() {
    let cases: &[(&str, serde_json::Value)] = &[
        (
            "Set-CsPersistentChatActiveServer -ActiveServers $null",
            json!([]),
        ),
        (
            "Set-CsPersistentChatActiveServer -Identity 'PChatServerCollection' -ActiveServers $null",
            json!([]),
        ),
        (
            "Set-CsPersistentChatActiveServer -ActiveServers @{Add='DAL-PC-001.litwareinc.com'}",
            json!([
                "atl-pc-001.litwareinc.com",
                "atl-pc-002.litwareinc.com",
                "dal-pc-001.litwareinc.com"
            ]),
        ),
        (
            "Set-CsPersistentChatActiveServer -ActiveServers @{Remove='atl-pc-001.litwareinc.com','atl-pc-002.litwareinc.com'}",
            json!([]),
        ),
        (
            "Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('dal-pc-001.litwareinc.com','dal-pc-002.litwareinc.com') -Force",
            json!(["dal-pc-001.litwareinc.com", "dal-pc-002.litwareinc.com"]),
        ),
        (
            "Set-CsPersistentChatActiveServer -ActiveServers 'dal-pc-002.litwareinc.com'",
            json!(["dal-pc-002.litwareinc.com"]),
        ),
        (
            "Set-CsPersistentChatActiveServer -Swap",
            json!(["dal-pc-001.litwareinc.com", "dal-pc-002.litwareinc.com"]),
        ),
        (
            "Set-CsPersistentChatActiveServer -ActiveServers @{Add='atl-pc-001.litwareinc.com'}",
            json!(["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"]),
        ),
    ];
    for (command, expected) in cases {
        let lab = Lab::new();
        assert_eq!(&active_after(&lab, command), expected, "{command}");
    }
}

#[test]
fn a_server_outside_the_pool_is_refused() {
    let lab = Lab::new();
    let response = lab.after_import(
        "Set-CsPersistentChatActiveServer -ActiveServers @{Add='atl-fe-001.litwareinc.com'}",
    );
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "Microsoft.Rtc.Management.ManagementException",
            "message": format!("\"atl-fe-001.litwareinc.com\" is not a Persistent Chat Server in pool \"{POOL}\"."),
            "fully_qualified_error_id": format!("InvalidActiveServer,{TYPE}"),
            "category": "InvalidArgument",
            "target": "atl-fe-001.litwareinc.com",
        })
    );
    assert_eq!(
        lab.cms()["active_servers"],
        json!(["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"])
    );
}

#[test]
fn active_servers_is_mandatory() {
    let lab = Lab::new();
    let response = lab.after_import(
        "Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com'",
    );
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.Management.Automation.ParameterBindingException",
            "message": "Cannot process command because of one or more missing mandatory parameters: ActiveServers.",
            "fully_qualified_error_id": format!("MissingMandatoryParameter,{TYPE}"),
            "category": "InvalidArgument",
            "target": null,
        })
    );
}

#[test]
fn an_unknown_list_modifier_key_cannot_be_converted() {
    let lab = Lab::new();
    let response = lab.after_import(
        "Set-CsPersistentChatActiveServer -ActiveServers @{Append='dal-pc-001.litwareinc.com'}",
    );
    assert_eq!(
        error_of(&response)["message"],
        "Cannot bind parameter 'ActiveServers'. Cannot convert the \"System.Collections.Hashtable\" value of type \"System.Collections.Hashtable\" to type \"Microsoft.Rtc.Management.Xds.PSListModifier`1[Microsoft.Rtc.Management.Deployment.Core.Fqdn]\"."
    );
}
