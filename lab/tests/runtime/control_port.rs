//! The CLI-level functions (`pcfail lab status/disaster/rebuild-primary/transcript/down`) reaching a lab
//! through its control port, and what they say when there is no running lab.

use std::path::{Path, PathBuf};

use pcfail_lab::{Disaster, Lab, LabError, Role};

use crate::support::{connect, query_strings, start_fast_lab};

/// Runs a blocking CLI function off the runtime's workers, as the `pcfail` binary would in its own process.
async fn blocking<T: Send + 'static>(dir: &Path, f: impl FnOnce(&Path) -> T + Send + 'static) -> T {
    let dir: PathBuf = dir.to_path_buf();
    tokio::task::spawn_blocking(move || f(&dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_functions_drive_a_running_lab() {
    let (dir, lab) = start_fast_lab().await;

    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    assert!(status.running);
    assert_eq!(status.pid, Some(std::process::id()));
    assert!(status.instances.iter().all(|i| i.up));

    blocking(dir.path(), pcfail_lab::disaster).await.unwrap();
    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    let up: Vec<(Role, bool)> = status.instances.iter().map(|i| (i.role, i.up)).collect();
    assert_eq!(
        up,
        [
            (Role::Primary, false),
            (Role::PrimaryMirror, false),
            (Role::Backup, true),
            (Role::BackupMirror, true)
        ]
    );

    blocking(dir.path(), pcfail_lab::rebuild_primary)
        .await
        .unwrap();
    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    assert!(status.instances.iter().all(|i| i.up));

    blocking(dir.path(), pcfail_lab::clear_transcripts)
        .await
        .unwrap();
    let mut backup = connect(lab.manifest(), Role::Backup).await.unwrap();
    query_strings(&mut backup, "SELECT name FROM sys.databases").await;
    let transcript = blocking(dir.path(), |d| pcfail_lab::transcript(d, Role::Backup))
        .await
        .unwrap();
    assert!(
        transcript
            .iter()
            .any(|e| e.kind == "batch" && e.text == "SELECT name FROM sys.databases"),
        "{transcript:?}"
    );
    assert!(
        blocking(dir.path(), |d| pcfail_lab::transcript(
            d,
            Role::BackupMirror
        ))
        .await
        .unwrap()
        .is_empty()
    );

    // `down` waits until the lab has stopped; here the lab lives in this process, so stop it on request.
    let down = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || pcfail_lab::down(&dir)
    });
    lab.down_requested().await;
    lab.shutdown().await.unwrap();
    down.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_functions_choose_how_the_primary_is_lost_and_stop_single_instances() {
    let (dir, lab) = start_fast_lab().await;
    let how = Disaster {
        silent: false,
        share_lost: true,
    };
    blocking(dir.path(), move |d| pcfail_lab::disaster_with(d, how))
        .await
        .unwrap();
    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    assert_eq!(status.world["share_reachable"], false);
    assert_eq!(
        status.world["lost_data_centers"],
        serde_json::json!(["ATL"])
    );
    let lost: Vec<bool> = status
        .instances
        .iter()
        .map(|i| i.sql["lost"] == true)
        .collect();
    assert_eq!(lost, [false; 4], "refusing instances are stopped, not lost");
    blocking(dir.path(), pcfail_lab::rebuild_primary)
        .await
        .unwrap();
    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    assert_eq!(status.world["share_reachable"], true);

    blocking(dir.path(), |d| {
        pcfail_lab::stop_instance(d, Role::BackupMirror)
    })
    .await
    .unwrap();
    assert!(connect(lab.manifest(), Role::BackupMirror).await.is_err());
    blocking(dir.path(), |d| {
        pcfail_lab::start_instance(d, Role::BackupMirror)
    })
    .await
    .unwrap();
    assert!(connect(lab.manifest(), Role::BackupMirror).await.is_ok());
    blocking(dir.path(), |d| pcfail_lab::set_share_reachable(d, false))
        .await
        .unwrap();
    assert!(std::fs::read_dir(&lab.manifest().share).is_err());
    blocking(dir.path(), |d| pcfail_lab::set_share_reachable(d, true))
        .await
        .unwrap();
    assert!(std::fs::read_dir(&lab.manifest().share).is_ok());
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_stopped_lab_comes_from_state_json_with_every_instance_down() {
    let (dir, lab) = start_fast_lab().await;
    lab.shutdown().await.unwrap();
    let status = blocking(dir.path(), pcfail_lab::status).await.unwrap();
    assert!(!status.running);
    assert_eq!((status.pid, status.control), (None, None));
    assert_eq!(status.instances.len(), 4);
    assert!(status.instances.iter().all(|i| !i.up));
    assert!(
        status.render_text().contains(": not running\n"),
        "{}",
        status.render_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_without_a_running_lab_say_why() {
    let empty = tempfile::tempdir().unwrap();
    let err = blocking(empty.path(), pcfail_lab::status)
        .await
        .unwrap_err();
    let shown = empty.path().display();
    assert_eq!(
        err.to_string(),
        format!(
            "no lab in `{shown}` (lab.json not found); start one with `pcfail lab up --dir {shown}`"
        )
    );

    let (dir, lab) = start_fast_lab().await;
    lab.shutdown().await.unwrap();
    let err = blocking(dir.path(), pcfail_lab::disaster)
        .await
        .unwrap_err();
    assert!(matches!(err, LabError::Stopped { .. }), "{err}");
    // Stopping a stopped lab is not an error: the operator's intent already holds.
    blocking(dir.path(), pcfail_lab::down).await.unwrap();

    // A lab whose daemon crashed: lab.json names a process that is gone.
    let lab = Lab::start(crate::support::fast_options(dir.path()))
        .await
        .unwrap();
    let manifest_path = dir.path().join("lab.json");
    let mut stale = lab.manifest().clone();
    lab.shutdown().await.unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    stale.pid = Some(dead);
    std::fs::write(&manifest_path, serde_json::to_vec(&stale).unwrap()).unwrap();
    let err = blocking(dir.path(), pcfail_lab::rebuild_primary)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the lab in `{}` is not running (pid {dead})",
            dir.path().display()
        )
    );
}
