//! Test-CsPersistentChatMessage: a TestResult object, Failure when the state's databases are down.

use serde_json::json;

use crate::support::{Lab, POOL};

#[test]
fn the_test_fails_when_the_active_store_and_its_mirror_are_unreachable() {
    let lab = Lab::new();
    let refused = "A network-related or instance-specific error occurred while establishing a connection to SQL Server. The server was not found or was not accessible. Verify that the instance name is correct and that SQL Server is configured to allow remote connections. (provider: TCP Provider, error: 0 - No connection could be made because the target machine actively refused it.)";
    let cases = [
        (
            "Normal",
            "atl-sql-001.litwareinc.com",
            "atl-sql-002.litwareinc.com",
        ),
        (
            "FailedOver",
            "dal-sql-001.litwareinc.com",
            "dal-sql-002.litwareinc.com",
        ),
    ];
    for (state, store, mirror) in cases {
        lab.write_cms(json!({"pool": POOL, "pool_state": state, "active_servers": []}));
        let response = lab
            .after_import("Test-CsPersistentChatMessage -TargetFqdn 'atl-cs-001.litwareinc.com'");
        assert_eq!(
            response["ok"], true,
            "a failed synthetic transaction is a result, not an error"
        );
        let result = &response["output"][0];
        assert_eq!(result["TargetFqdn"], POOL);
        assert_eq!(result["Result"], "Failure");
        assert_eq!(
            result["Error"],
            format!(
                "The Persistent Chat database \"mgc\" for pool state {state} is not available. {store}: {refused} {mirror}: {refused}"
            )
        );
        assert_eq!(result["Diagnosis"], json!(null));
        assert!(
            result["Latency"].as_str().unwrap().starts_with("00:00:"),
            "{result}"
        );
    }
}
