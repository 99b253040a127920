//! `pcfail lab status --format json`: the promised fields, and a readable text report.

use pcfail_lab::Role;

use crate::support::start_fast_lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_has_the_promised_fields() {
    let (dir, lab) = start_fast_lab().await;
    std::fs::write(
        dir.path().join("cms.json"),
        r#"{"pool":"atl-cs-001.litwareinc.com","pool_state":"FailedOver","active_servers":["dal-pc-001.litwareinc.com"]}"#,
    )
    .unwrap();
    let json = serde_json::to_value(lab.status().await).unwrap();

    for key in [
        "dir",
        "running",
        "pid",
        "control",
        "clock_speed",
        "lab_time_ms",
        "lab_time",
        "pool",
        "login_user",
        "password_env",
        "world",
    ] {
        assert!(json.get(key).is_some(), "status has `{key}`: {json}");
    }
    assert_eq!(json["running"], true);
    assert_eq!(json["pool_state"], "FailedOver", "read from cms.json");
    assert_eq!(
        json["active_servers"],
        serde_json::json!(["dal-pc-001.litwareinc.com"])
    );
    let instances = json["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 4);
    for (i, role) in instances.iter().zip(Role::ALL) {
        assert_eq!(i["role"], role.as_str());
        for key in [
            "name",
            "fqdn",
            "address",
            "data_center",
            "login_user",
            "password_env",
            "up",
            "sql",
        ] {
            assert!(i.get(key).is_some(), "instance has `{key}`: {i}");
        }
        assert_eq!(i["password_env"], "PCFAIL_LAB_PASSWORD");
        assert_eq!(i["up"], true);
        assert!(
            i["sql"].is_object(),
            "the engine's view of {}: {}",
            role.as_str(),
            i["sql"]
        );
    }
    assert!(json["share"].is_array() && json["copy_folder"].is_array());

    let text = lab.status().await.render_text();
    assert!(
        text.contains("pool      atl-cs-001.litwareinc.com (FailedOver)"),
        "{text}"
    );
    assert!(text.contains("ATL-SQL-001"), "{text}");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cms_json_status_shows_the_initial_pool_state() {
    let (_dir, lab) = start_fast_lab().await;
    let status = lab.status().await;
    assert_eq!(status.pool_state, "Normal");
    assert_eq!(
        status.active_servers,
        ["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"]
    );
    lab.shutdown().await.unwrap();
}
