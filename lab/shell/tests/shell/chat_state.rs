//! Get-CsPersistentChatState and Set-CsPersistentChatState over cms.json.

use std::io::{BufRead, BufReader, Write};

use serde_json::json;

use crate::support::{Lab, POOL, error_of, powershell_args, request};

const SET_TYPE: &str = "Microsoft.Rtc.Management.Internal.SetPersistentChatStateCmdlet";

#[test]
fn the_pool_starts_normal_and_cms_json_is_created_from_lab_json() {
    let lab = Lab::new();
    let response =
        lab.after_import("Get-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com'");
    assert_eq!(
        response["output"],
        json!([{"Identity": format!("service:{POOL}"), "PoolState": "Normal"}])
    );
    assert_eq!(
        lab.cms(),
        json!({"pool": POOL, "pool_state": "Normal", "active_servers": ["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"]})
    );
}

#[test]
fn setting_the_pool_state_is_stored_and_read_back() {
    let identities = [
        "service:atl-cs-001.litwareinc.com",
        "PersistentChatServer:atl-cs-001.litwareinc.com",
        "SERVICE: atl-cs-001.LITWAREINC.com",
    ];
    for identity in identities {
        let lab = Lab::new();
        let run = lab.run(&[
            "Import-Module SkypeForBusiness",
            &format!("Set-CsPersistentChatState -Identity '{identity}' -PoolState 'FailedOver' -Confirm:$false"),
            "Get-CsPersistentChatState",
        ]);
        let responses = run.responses();
        assert_eq!(
            responses[1],
            json!({"id": 2, "ok": true, "output": [], "warnings": [], "verbose": []}),
            "{identity}"
        );
        assert_eq!(
            responses[2]["output"][0]["PoolState"], "FailedOver",
            "{identity}"
        );
        assert_eq!(lab.cms()["pool_state"], "FailedOver");
    }
}

#[test]
fn force_also_suppresses_the_confirmation() {
    let lab = Lab::new();
    let response = lab.after_import("Set-CsPersistentChatState 'service:atl-cs-001.litwareinc.com' -PoolState failedover -Force");
    assert_eq!(response["ok"], true);
    assert_eq!(lab.cms()["pool_state"], "FailedOver");
}

#[test]
fn without_force_or_confirm_false_the_prompt_fails_in_non_interactive_mode() {
    let lab = Lab::new();
    let response = lab.after_import("Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.Management.Automation.PSInvalidOperationException",
            "message": "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
            "fully_qualified_error_id": format!("InvalidOperation,{SET_TYPE}"),
            "category": "InvalidOperation",
            "target": null,
        })
    );
    assert!(
        !lab.dir().join("cms.json").exists(),
        "the store was not touched"
    );
}

#[test]
fn a_bad_pool_state_lists_the_valid_values() {
    let lab = Lab::new();
    let response =
        lab.after_import("Set-CsPersistentChatState -PoolState 'Failover' -Confirm:$false");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.Management.Automation.ParameterBindingException",
            "message": "Cannot bind parameter 'PoolState'. Cannot convert value \"Failover\" to type \"Microsoft.Rtc.Management.WritableConfig.Settings.PersistentChat.PoolState\". Error: \"Unable to match the identifier name Failover to a valid enumerator name. Specify one of the following enumerator names and try again:\r\nNormal, FailedOver\"",
            "fully_qualified_error_id": format!("CannotConvertArgumentNoMessage,{SET_TYPE}"),
            "category": "InvalidArgument",
            "target": null,
        })
    );
}

#[test]
fn an_unknown_pool_identity_is_not_found() {
    let lab = Lab::new();
    let response = lab.after_import("Set-CsPersistentChatState -Identity 'service:dal-cs-001.litwareinc.com' -PoolState Normal -Confirm:$false");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "Microsoft.Rtc.Management.ManagementException",
            "message": "Management object not found for identity \"service:dal-cs-001.litwareinc.com\".",
            "fully_qualified_error_id": format!("IdentityNotFound,{SET_TYPE}"),
            "category": "ObjectNotFound",
            "target": "service:dal-cs-001.litwareinc.com",
        })
    );
}

#[test]
fn the_pool_identity_variant_restricts_the_accepted_form() {
    let set = |identity: &str| {
        format!(
            "Set-CsPersistentChatState -Identity '{identity}:{POOL}' -PoolState Normal -Confirm:$false"
        )
    };
    for (variant, accepted, refused) in [
        ("service", "service", "PersistentChatServer"),
        ("persistentchatserver", "PersistentChatServer", "service"),
    ] {
        let lab = Lab::new();
        lab.set_variant("pool_identity", variant);
        let ok = lab.after_import(&set(accepted));
        assert!(
            ok.get("error").is_none_or(serde_json::Value::is_null),
            "{variant}: {ok}"
        );
        let refused = lab.after_import(&set(refused));
        assert_eq!(
            error_of(&refused)["category"],
            "ObjectNotFound",
            "{variant}: {refused}"
        );
    }
}

#[test]
fn an_unknown_parameter_is_a_binding_error() {
    let lab = Lab::new();
    let response = lab.after_import(
        "Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -State FailedOver",
    );
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "System.Management.Automation.ParameterBindingException",
            "message": "A parameter cannot be found that matches parameter name 'State'.",
            "fully_qualified_error_id": format!("NamedParameterNotFound,{SET_TYPE}"),
            "category": "InvalidArgument",
            "target": null,
        })
    );
}

#[test]
fn filter_matches_identities_with_wildcards() {
    let lab = Lab::new();
    let matching = lab.after_import("Get-CsPersistentChatState -Filter '*.litwareinc.com'");
    assert_eq!(matching["output"].as_array().unwrap().len(), 1);
    let other = lab.after_import("Get-CsPersistentChatState -Filter '*.contoso.com'");
    assert_eq!(other["output"], json!([]));
    let both = lab.after_import(
        "Get-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -Filter '*'",
    );
    assert_eq!(
        error_of(&both)["fully_qualified_error_id"],
        "AmbiguousParameterSet,Microsoft.Rtc.Management.Internal.GetPersistentChatStateCmdlet"
    );
}

#[test]
fn what_if_changes_nothing_and_says_so_on_the_host() {
    let lab = Lab::new();
    let run = lab.run(&[
        "Import-Module SkypeForBusiness",
        "Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver -WhatIf",
    ]);
    assert_eq!(run.responses()[1]["ok"], true);
    assert_eq!(
        run.stray_stdout(),
        vec![
            "What if: Performing the operation \"Set-CsPersistentChatState\" on target \"service:atl-cs-001.litwareinc.com\"."
        ]
    );
    assert!(
        !lab.dir().join("cms.json").exists(),
        "the store was not touched"
    );
}

#[test]
fn verbose_records_are_returned_only_under_verbose() {
    let lab = Lab::new();
    let response =
        lab.after_import("Set-CsPersistentChatState -PoolState FailedOver -Force -Verbose");
    assert_eq!(
        response["verbose"],
        json!([format!(
            "Setting pool state of \"service:{POOL}\" to \"FailedOver\"."
        )])
    );
}

#[test]
fn cms_json_is_re_read_for_every_request() {
    let lab = Lab::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let (out_reader, out_writer) = std::io::pipe().unwrap();
    let dir = lab.dir().to_path_buf();
    let args = powershell_args(lab.host_script());
    let shell = std::thread::spawn(move || {
        pcfail_lab_shell::run(
            &dir,
            &args,
            BufReader::new(reader),
            out_writer,
            std::io::sink(),
        )
    });
    let mut out = BufReader::new(out_reader).lines();
    let mut next = || out.next().unwrap().unwrap();
    assert!(next().starts_with("PCFAIL-READY "));
    writeln!(writer, "{}", request(1, "Import-Module SkypeForBusiness")).unwrap();
    next();
    writeln!(writer, "{}", request(2, "Get-CsPersistentChatState")).unwrap();
    assert!(next().contains(r#""PoolState":"Normal""#));
    // Another process (pcfail lab, another shell) changes the store between two requests.
    lab.write_cms(json!({"pool": POOL, "pool_state": "FailedOver", "active_servers": []}));
    writeln!(writer, "{}", request(3, "Get-CsPersistentChatState")).unwrap();
    assert!(next().contains(r#""PoolState":"FailedOver""#));
    drop(writer);
    assert_eq!(shell.join().unwrap(), 0);
}
