//! Cmdlet fault injection from faults.json: error, hang, crash, and `times`.

use std::time::Duration;

use serde_json::json;

use crate::support::{Lab, error_of};

#[test]
fn an_error_rule_fails_the_cmdlet_with_its_message_and_counts_down() {
    let lab = Lab::new();
    lab.write_faults(json!({"rules": [
        {"kind": "sql", "instance": "backup", "pattern": "RESTORE LOG", "times": 1, "error": 3201},
        {"kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "error": "The pool is busy.", "times": 1},
    ]}));
    let run = lab.run(&[
        "Import-Module SkypeForBusiness",
        "Set-CsPersistentChatState -PoolState FailedOver -Confirm:$false",
        "Set-CsPersistentChatState -PoolState FailedOver -Confirm:$false",
    ]);
    let responses = run.responses();
    assert_eq!(
        error_of(&responses[1]),
        &json!({
            "type": "Microsoft.Rtc.Management.ManagementException",
            "message": "The pool is busy.",
            "fully_qualified_error_id": "Microsoft.Rtc.Management.ManagementException,Microsoft.Rtc.Management.Internal.SetPersistentChatStateCmdlet",
            "category": "NotSpecified",
            "target": null,
        })
    );
    assert_eq!(responses[2]["ok"], true, "the rule fired only once");
    assert_eq!(lab.cms()["pool_state"], "FailedOver");
    let faults = lab.faults();
    assert_eq!(faults["rules"][1]["times"], 0);
    assert_eq!(
        faults["rules"][0],
        json!({"kind": "sql", "instance": "backup", "pattern": "RESTORE LOG", "times": 1, "error": 3201})
    );
}

#[test]
fn a_crash_rule_exits_with_code_one_without_answering() {
    let lab = Lab::new();
    lab.write_faults(json!({"rules": [{"kind": "cmdlet", "cmdlet": "Get-CsPersistentChatState", "crash": true}]}));
    let run = lab.run(&[
        "Import-Module SkypeForBusiness",
        "Get-CsPersistentChatState",
        "Get-Command",
    ]);
    assert_eq!(run.code, 1);
    let ids: Vec<_> = run.responses().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        vec![json!(1)],
        "nothing after the crashed request is answered"
    );
}

#[test]
fn a_hang_rule_never_answers() {
    let lab = Lab::new();
    lab.write_faults(json!({"rules": [{"kind": "cmdlet", "cmdlet": "Set-CsPersistentChatActiveServer", "hang": true, "times": 1}]}));
    let out = lab.spawn(&[
        "Import-Module SkypeForBusiness",
        "Set-CsPersistentChatActiveServer -ActiveServers $null",
        "Get-Command",
    ]);
    let text = out.wait_for_responses(3, Duration::from_millis(700));
    let answered = text
        .lines()
        .filter(|l| l.starts_with("PCFAIL-RESULT "))
        .count();
    assert_eq!(answered, 1, "only the import was answered:\n{text}");
    assert_eq!(lab.faults()["rules"][0]["times"], 0);
    assert!(
        !lab.dir().join("cms.json").exists(),
        "the hung cmdlet changed nothing"
    );
}

#[test]
fn a_broken_faults_file_is_reported_on_stderr_and_ignored() {
    let lab = Lab::new();
    std::fs::write(lab.dir().join("faults.json"), "{ not json").unwrap();
    let run = lab.run(&["Get-Command -Name Get-Command"]);
    assert_eq!(run.response()["ok"], true);
    assert!(
        run.stderr
            .starts_with("pcfail lab shell: ignoring fault rules: `"),
        "{}",
        run.stderr
    );
}
