//! Losing the primary data center and getting it back rebuilt.

use std::time::Duration;

use pcfail_lab::{Disaster, Lab, Role};

use crate::support::{
    address, connect, eventually, fast_options, query_strings, start_fast_lab, trn_files,
};

async fn refuses_connections(lab: &Lab, role: Role) -> bool {
    let addr = address(lab.manifest(), role);
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// A login attempt that gets no answer at all within `wait`: the TCP connection is accepted (by the
/// kernel), but nothing ever comes back. Absence is what is asserted, so a slow machine cannot make
/// this fail.
async fn login_goes_unanswered(lab: &Lab, role: Role, wait: Duration) -> bool {
    tokio::time::timeout(wait, connect(lab.manifest(), role))
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disaster_leaves_the_primary_data_center_silent_while_the_backup_answers() {
    let (_dir, lab) = start_fast_lab().await;
    let mut before = connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary answers before");
    query_strings(&mut before, "SELECT 1").await;

    lab.disaster().await.unwrap();
    for role in [Role::Primary, Role::PrimaryMirror] {
        assert!(!refuses_connections(&lab, role).await, "{role:?} refused");
        assert!(
            login_goes_unanswered(&lab, role, Duration::from_millis(500)).await,
            "{role:?} answered a login"
        );
    }
    // A session opened before the disaster neither answers nor is closed: the client times out.
    let hung =
        tokio::time::timeout(Duration::from_millis(500), before.simple_query("SELECT 1")).await;
    assert!(hung.is_err(), "the old primary session answered: {hung:?}");

    let mut backup = connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers");
    let rows = query_strings(&mut backup, "SELECT 1").await;
    assert_eq!(rows, vec![vec![Some("1".to_owned())]]);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_disaster_makes_the_primary_refuse_connections() {
    let (_dir, lab) = start_fast_lab().await;
    let mut before = connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary answers before");
    lab.disaster_with(Disaster {
        silent: false,
        share_lost: false,
    })
    .await
    .unwrap();
    assert!(refuses_connections(&lab, Role::Primary).await);
    assert!(refuses_connections(&lab, Role::PrimaryMirror).await);
    // A session opened before the disaster is closed.
    let broken =
        tokio::time::timeout(Duration::from_secs(5), before.simple_query("SELECT 1")).await;
    assert!(
        matches!(broken, Ok(Err(_))),
        "the old primary session still answered"
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_refuses_at_once_and_comes_back_with_its_databases() {
    let (_dir, lab) = start_fast_lab().await;
    lab.stop_instance(Role::BackupMirror).await.unwrap();
    assert!(refuses_connections(&lab, Role::BackupMirror).await);
    lab.start_instance(Role::BackupMirror).await.unwrap();
    let mut mirror = connect(lab.manifest(), Role::BackupMirror)
        .await
        .expect("answers again");
    assert_eq!(
        query_strings(&mut mirror, "SELECT COUNT(*) FROM sys.databases").await,
        vec![vec![Some("4".to_owned())]]
    );
    // A lost instance can be started again too, and answers; the sessions its vanished host left
    // hanging are closed then, as a restarted server's are.
    let mut before = connect(lab.manifest(), Role::Primary).await.unwrap();
    lab.disaster().await.unwrap();
    lab.start_instance(Role::Primary).await.unwrap();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), before.simple_query("SELECT 1")).await;
    assert!(matches!(closed, Ok(Err(_))), "the old session: {closed:?}");
    let mut primary = connect(lab.manifest(), Role::Primary)
        .await
        .expect("a started instance answers");
    query_strings(&mut primary, "SELECT 1").await;
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_share_cannot_be_listed_or_restored_from_until_the_primary_is_rebuilt() {
    let (_dir, lab) = start_fast_lab().await;
    let share = lab.manifest().share.clone();
    let trn = eventually(Duration::from_secs(30), "a log backup in the share", || {
        let share = share.clone();
        async move { trn_files(&share).first().cloned() }
    })
    .await;
    lab.disaster_with(Disaster {
        silent: true,
        share_lost: true,
    })
    .await
    .unwrap();
    assert!(std::fs::read_dir(&share).is_err(), "the share still lists");
    let mut backup = connect(lab.manifest(), Role::Backup).await.unwrap();
    let path = share.join(&trn);
    let err = backup
        .simple_query(format!(
            "RESTORE HEADERONLY FROM DISK = N'{}'",
            path.display()
        ))
        .await
        .map(drop)
        .unwrap_err();
    let tiberius::error::Error::Server(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code(), 3201);
    assert!(
        e.message()
            .ends_with("Operating system error 3(The system cannot find the path specified.)."),
        "{}",
        e.message()
    );
    lab.rebuild_primary().await.unwrap();
    assert!(
        trn_files(&share).contains(&trn),
        "the share's files are back"
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_fault_rule_makes_the_share_unreachable_while_it_lasts() {
    let (dir, lab) = start_fast_lab().await;
    let share = lab.manifest().share.clone();
    let faults = dir.path().join("faults.json");
    std::fs::write(
        &faults,
        r#"{ "rules": [ { "kind": "share", "unreachable": true } ] }"#,
    )
    .unwrap();
    eventually(Duration::from_secs(30), "the share to go away", || {
        let gone = std::fs::read_dir(&share).is_err();
        async move { gone.then_some(()) }
    })
    .await;
    std::fs::remove_file(&faults).unwrap();
    eventually(Duration::from_secs(30), "the share to come back", || {
        let back = std::fs::read_dir(&share).is_ok();
        async move { back.then_some(()) }
    })
    .await;
    lab.set_share_reachable(false);
    assert!(std::fs::read_dir(&share).is_err());
    lab.set_share_reachable(true);
    assert!(std::fs::read_dir(&share).is_ok());
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_brings_the_primary_back_on_the_same_port_with_empty_databases() {
    let (_dir, lab) = start_fast_lab().await;
    lab.disaster().await.unwrap();
    lab.rebuild_primary().await.unwrap();

    let mut primary = connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary answers again");
    let rows = query_strings(
        &mut primary,
        "SELECT name, state_desc, recovery_model_desc FROM sys.databases WHERE name IN (N'mgc', N'mgccomp') ORDER BY name",
    )
    .await;
    let online_full = |name: &str| {
        vec![
            Some(name.to_owned()),
            Some("ONLINE".to_owned()),
            Some("FULL".to_owned()),
        ]
    };
    assert_eq!(rows, vec![online_full("mgc"), online_full("mgccomp")]);
    let shipping = query_strings(
        &mut primary,
        "SELECT primary_database FROM msdb.dbo.log_shipping_primary_databases",
    )
    .await;
    assert!(
        shipping.is_empty(),
        "no log-shipping configuration after a rebuild: {shipping:?}"
    );

    let mut mirror = connect(lab.manifest(), Role::PrimaryMirror)
        .await
        .expect("primary mirror answers again");
    let rows = query_strings(
        &mut mirror,
        "SELECT name FROM sys.databases WHERE database_id > 4",
    )
    .await;
    assert!(
        rows.is_empty(),
        "the rebuilt primary mirror holds no user databases: {rows:?}"
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disaster_survives_a_lab_restart() {
    let (dir, lab) = start_fast_lab().await;
    lab.disaster().await.unwrap();
    lab.shutdown().await.unwrap();

    let lab = Lab::start(fast_options(dir.path())).await.unwrap();
    assert!(!refuses_connections(&lab, Role::Primary).await);
    assert!(login_goes_unanswered(&lab, Role::Primary, Duration::from_millis(500)).await);
    connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers");
    lab.rebuild_primary().await.unwrap();
    connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary comes back on its recorded port");
    lab.shutdown().await.unwrap();
}
