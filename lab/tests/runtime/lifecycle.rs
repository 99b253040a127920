//! Starting, refusing, stopping and resuming a lab: lab.json, the folders, state.json.

use std::collections::HashSet;
use std::time::Duration;

use pcfail_lab::{Lab, LabError, LabState, Manifest, Role};

use crate::support::{
    connect, eventually, fast_options, find_values, query_strings, start_fast_lab, trn_files,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_writes_a_ready_manifest_and_the_lab_folders() {
    let (dir, lab) = start_fast_lab().await;
    let on_disk = Manifest::load(dir.path()).unwrap();
    assert_eq!(&on_disk.state, &LabState::Ready);
    assert_eq!(on_disk.pid, Some(std::process::id()));
    assert!(on_disk.control.is_some());
    assert_eq!(on_disk.instances, lab.manifest().instances);
    let ports: HashSet<u16> = on_disk.instances.iter().map(|i| i.address.port()).collect();
    assert_eq!(ports.len(), 4, "one distinct port per instance");
    assert!(
        on_disk
            .instances
            .iter()
            .all(|i| i.address.ip().is_loopback())
    );
    assert!(on_disk.login.password.len() >= 20);
    let root = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(on_disk.share, root.join("share"));
    for folder in [&on_disk.share, &on_disk.copy_folder, &on_disk.backups] {
        assert!(folder.is_dir(), "{} exists", folder.display());
    }
    assert!(root.join("state.json").is_file());
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_lab_in_the_same_directory_is_refused() {
    let (dir, lab) = start_fast_lab().await;
    let err = Lab::start(fast_options(dir.path()))
        .await
        .err()
        .expect("second start refused");
    assert!(
        matches!(err, LabError::AlreadyRunning { pid, .. } if pid == std::process::id()),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("a lab is already running in `"),
        "{err}"
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_manifest_whose_process_is_gone_is_taken_over() {
    let (dir, lab) = start_fast_lab().await;
    let before = lab.manifest().clone();
    lab.shutdown().await.unwrap();

    // Pretend the daemon crashed: lab.json still says ready, for a process that no longer exists.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut stale = Manifest::load(dir.path()).unwrap();
    stale.state = LabState::Ready;
    stale.pid = Some(dead);
    stale.control = before.control;
    std::fs::write(
        dir.path().join("lab.json"),
        serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();

    let status = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || pcfail_lab::status(&dir)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!status.running);

    let lab = Lab::start(fast_options(dir.path()))
        .await
        .expect("stale lab taken over");
    assert_eq!(lab.manifest().instances, before.instances);
    assert_eq!(lab.manifest().login, before.login);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_lab_keeps_its_ports_password_clock_and_databases() {
    let (dir, lab) = start_fast_lab().await;
    let copy_folder = lab.manifest().copy_folder.clone();
    eventually(Duration::from_secs(10), "a copied log backup", || {
        let copy_folder = copy_folder.clone();
        async move { (!trn_files(&copy_folder).is_empty()).then_some(()) }
    })
    .await;
    let before = lab.manifest().clone();
    let guids_before = family_guids(&lab).await;
    assert!(
        !guids_before.is_empty(),
        "the engine status names database family guids"
    );
    let time_before = lab.now();
    lab.shutdown().await.unwrap();

    let stopped = Manifest::load(dir.path()).unwrap();
    assert_eq!(
        (stopped.state, stopped.pid, stopped.control),
        (LabState::Stopped, None, None)
    );

    let lab = Lab::start(fast_options(dir.path()))
        .await
        .expect("lab resumes");
    assert_eq!(lab.manifest().instances, before.instances, "same ports");
    assert_eq!(lab.manifest().login, before.login, "same password");
    assert!(lab.now() >= time_before, "lab time does not go back");
    assert_eq!(
        family_guids(&lab).await,
        guids_before,
        "same databases, not recreated ones"
    );

    let mut backup = connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers after restart");
    let rows = query_strings(
        &mut backup,
        "SELECT name, state_desc FROM sys.databases WHERE name = N'mgc'",
    )
    .await;
    assert_eq!(
        rows,
        vec![vec![Some("mgc".to_owned()), Some("RESTORING".to_owned())]]
    );
    lab.shutdown().await.unwrap();
}

async fn family_guids(lab: &Lab) -> Vec<String> {
    let status = serde_json::to_value(lab.status().await).unwrap();
    let mut found = Vec::new();
    find_values(&status, "family_guid", &mut found);
    let mut guids: Vec<String> = found
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    guids.sort();
    guids
}

/// With the duration model a BACKUP takes time in proportion to its size: at a rate this slow it is
/// still running (and visible) when it is killed, and a killed backup writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_model_gives_a_backup_a_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let opts = pcfail_lab::LabOptions {
        io_mb_per_s: Some(1e-6),
        ..crate::support::fast_options(dir.path())
    };
    let lab = pcfail_lab::Lab::start(opts).await.unwrap();
    let mut a = crate::support::connect(lab.manifest(), pcfail_lab::Role::Primary)
        .await
        .unwrap();
    let mut b = crate::support::connect(lab.manifest(), pcfail_lab::Role::Primary)
        .await
        .unwrap();
    let file = dir.path().join("backups/slow.bak");
    let sql = format!("BACKUP DATABASE [mgccomp] TO DISK = N'{}'", file.display());
    let running = tokio::spawn(async move { a.simple_query(sql).await.map(drop) });
    let watch = "SELECT session_id FROM sys.dm_exec_requests WHERE command = N'BACKUP DATABASE'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let spid = loop {
        let rows = crate::support::query_strings(&mut b, watch).await;
        if let Some(row) = rows.first() {
            break row[0].clone().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never showed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    crate::support::query_strings(&mut b, &format!("KILL {spid}")).await;
    assert!(
        running.await.unwrap().is_err(),
        "the killed backup's connection closed"
    );
    assert!(!file.exists(), "a killed backup writes nothing");
    lab.shutdown().await.unwrap();
}
