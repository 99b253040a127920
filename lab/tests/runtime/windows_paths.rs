//! File names as SQL Server sees them: with `windows_paths`, each instance's drives and the UNC shares
//! are mounted onto the lab's folders and log shipping runs on them; in either mode a Windows path the
//! instance does not have answers 3201 with the OS error SQL Server quotes, and no file is created.

use std::path::Path;
use std::time::Duration;

use pcfail_lab::{Lab, Role};

use crate::support::{SqlClient, connect, fast_options, query_strings};

/// The first error of a batch: (number, message).
async fn error(c: &mut SqlClient, sql: &str) -> (u32, String) {
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        c.simple_query(sql).await?.into_results().await
    })
    .await
    .expect("answered in time");
    match result {
        Err(tiberius::error::Error::Server(e)) => (e.code(), e.message().to_owned()),
        other => panic!("{sql}: expected a server error, got {other:?}"),
    }
}

/// Files anywhere under `dir` whose name holds a backslash (a Windows path taken literally).
fn backslashed_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains('\\') {
            out.push(name);
        }
        if entry.path().is_dir() {
            out.extend(backslashed_files(&entry.path()));
        }
    }
    out
}

const PATH_NOT_FOUND: &str =
    "Operating system error 3(The system cannot find the path specified.).";
const NETWORK_PATH_NOT_FOUND: &str = "Operating system error 53(The network path was not found.).";

/// What every lab answers, whichever the option: paths the instance does not have.
async fn unknown_windows_paths_are_3201(c: &mut SqlClient) {
    let cases = [
        (r"Z:\x.bak", PATH_NOT_FOUND),
        (r"\\nosuchserver\share\x.bak", NETWORK_PATH_NOT_FOUND),
    ];
    for (path, os) in cases {
        let (number, message) =
            error(c, &format!("BACKUP DATABASE [mgccomp] TO DISK = N'{path}'")).await;
        assert_eq!(number, 3201, "{path}");
        assert_eq!(
            message,
            format!("Cannot open backup device '{path}'. {os}"),
            "{path}"
        );
        let (number, _) = error(c, &format!("RESTORE HEADERONLY FROM DISK = N'{path}'")).await;
        assert_eq!(number, 3201, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_windows_paths_a_windows_path_is_one_the_instance_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(fast_options(dir.path())).await.unwrap();
    assert!(lab.manifest().windows_paths.is_none());
    let mut p = connect(lab.manifest(), Role::Primary).await.unwrap();
    unknown_windows_paths_are_3201(&mut p).await;
    let (number, message) = error(
        &mut p,
        r"BACKUP DATABASE [mgccomp] TO DISK = N'\\atl-sql-001\LogShipping\x.bak'",
    )
    .await;
    assert_eq!(
        (number, message.ends_with(NETWORK_PATH_NOT_FOUND)),
        (3201, true),
        "no Windows names exist without the option: {message}"
    );
    assert_eq!(backslashed_files(dir.path()), Vec::<String>::new());
    assert_eq!(
        backslashed_files(&std::env::current_dir().unwrap()),
        Vec::<String>::new()
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_paths_mount_drives_and_shares_and_log_shipping_runs_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let opts = pcfail_lab::LabOptions {
        windows_paths: true,
        ..fast_options(dir.path())
    };
    let lab = Lab::start(opts).await.unwrap();
    let names = lab
        .manifest()
        .windows_paths
        .clone()
        .expect("declared in lab.json");
    assert_eq!(names.share, r"\\atl-sql-001\LogShipping");
    assert_eq!(names.copy_folder, r"D:\LogShippingCopy");
    assert_eq!(
        lab.manifest().share,
        dir.path().canonicalize().unwrap().join("share")
    );

    let mut b = connect(lab.manifest(), Role::Backup).await.unwrap();
    let rows = query_strings(
        &mut b,
        "SELECT backup_source_directory, backup_destination_directory FROM msdb.dbo.log_shipping_secondary",
    )
    .await;
    assert_eq!(
        rows,
        vec![vec![
            Some(r"\\atl-sql-001\LogShipping".to_owned()),
            Some(r"D:\LogShippingCopy".to_owned())
        ]]
    );
    // The jobs work through those names: a restored file is named by the copy folder's drive path.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let restored = loop {
        let r = query_strings(
            &mut b,
            "SELECT last_restored_file FROM msdb.dbo.log_shipping_secondary_databases",
        )
        .await;
        if let Some(file) = r.into_iter().next().and_then(|row| row[0].clone()) {
            break file;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log backup was restored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        restored.starts_with(r"D:\LogShippingCopy\mgc_"),
        "{restored}"
    );

    // A full backup to the backup share, by FQDN, is readable from the other data center by short name.
    let mut p = connect(lab.manifest(), Role::Primary).await.unwrap();
    query_strings(
        &mut p,
        r"BACKUP DATABASE [mgccomp] TO DISK = N'\\dal-sql-001.litwareinc.com\Backups\comp.bak'",
    )
    .await;
    assert!(dir.path().join("backups/comp.bak").exists());
    let header = query_strings(
        &mut b,
        r"RESTORE HEADERONLY FROM DISK = N'\\DAL-SQL-001\Backups\comp.bak'",
    )
    .await;
    assert_eq!(header.len(), 1);

    unknown_windows_paths_are_3201(&mut p).await;
    let (number, message) = error(
        &mut p,
        r"BACKUP DATABASE [mgccomp] TO DISK = N'\\atl-sql-001\NoSuchShare\x.bak'",
    )
    .await;
    assert_eq!(
        (number, message.as_str()),
        (
            3201,
            r"Cannot open backup device '\\atl-sql-001\NoSuchShare\x.bak'. Operating system error 67(The network name cannot be found.)."
        )
    );
    // The primary has a D: drive, but no copy folder on it.
    let (number, message) = error(
        &mut p,
        r"BACKUP DATABASE [mgccomp] TO DISK = N'D:\LogShippingCopy\x.bak'",
    )
    .await;
    assert_eq!(
        (number, message.ends_with(PATH_NOT_FOUND)),
        (3201, true),
        "{message}"
    );
    assert_eq!(backslashed_files(dir.path()), Vec::<String>::new());
    lab.shutdown().await.unwrap();
}
