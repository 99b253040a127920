//! Losing the primary data center and getting it back rebuilt.

use std::time::Duration;

use pcfail_lab::{Lab, Role};

use crate::support::{address, connect, fast_options, query_strings, start_fast_lab};

async fn refuses_connections(lab: &Lab, role: Role) -> bool {
    let addr = address(lab.manifest(), role);
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disaster_makes_the_primary_refuse_connections_while_the_backup_answers() {
    let (_dir, lab) = start_fast_lab().await;
    let mut before = connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary answers before");
    query_strings(&mut before, "SELECT 1").await;

    lab.disaster().await.unwrap();
    assert!(refuses_connections(&lab, Role::Primary).await);
    assert!(refuses_connections(&lab, Role::PrimaryMirror).await);
    // A session opened before the disaster is gone too.
    let broken =
        tokio::time::timeout(Duration::from_secs(5), before.simple_query("SELECT 1")).await;
    assert!(
        matches!(broken, Ok(Err(_))),
        "the old primary session still answered"
    );

    let mut backup = connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers");
    let rows = query_strings(&mut backup, "SELECT 1").await;
    assert_eq!(rows, vec![vec![Some("1".to_owned())]]);
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
    assert!(refuses_connections(&lab, Role::Primary).await);
    connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers");
    lab.rebuild_primary().await.unwrap();
    connect(lab.manifest(), Role::Primary)
        .await
        .expect("primary comes back on its recorded port");
    lab.shutdown().await.unwrap();
}
