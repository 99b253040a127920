//! Log shipping as the lab's scheduler runs it: log backups land in the share as `.trn` files with UTC
//! names (never half-written), the copy job copies them, the restore job applies them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pcfail_lab::Role;

use crate::support::{SqlClient, connect, eventually, query_strings, start_fast_lab, trn_files};

/// `mgc_YYYYMMDDhhmmss.trn` -> ms since the Unix epoch, reading the stamp as UTC.
fn utc_stamp_ms(name: &str) -> Option<i64> {
    let stamp = name.strip_prefix("mgc_")?.strip_suffix(".trn")?;
    if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (Howard Hinnant), the inverse of the lab's own formatting.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + n(8..10)) * 60 + n(10..12)) * 60_000 + n(12..14) * 1000)
}

#[test]
fn utc_stamps_parse_to_the_instant_they_name() {
    assert_eq!(utc_stamp_ms("mgc_19700101000000.trn"), Some(0));
    assert_eq!(
        utc_stamp_ms("mgc_20000229123000.trn"),
        Some(951_827_400_000)
    );
    assert_eq!(utc_stamp_ms("mgc_2000022912300.trn"), None);
    assert_eq!(utc_stamp_ms("mgccomp_20000229123000.trn"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_backups_appear_as_trn_files_with_utc_names_and_never_half_written() {
    let (_dir, lab) = start_fast_lab().await;
    let share = lab.manifest().share.clone();
    let started = lab.now().0;

    // Watch the share closely while several backups are written: a .trn must have its final size the
    // first time it is seen (the agent writes `.wrk` and renames), so a size never changes afterwards.
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while first_seen.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "only {} log backups appeared: {first_seen:?}",
            first_seen.len()
        );
        for entry in std::fs::read_dir(&share).unwrap().filter_map(|e| e.ok()) {
            let name = entry.file_name().into_string().unwrap();
            if !name.ends_with(".trn") {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                first_seen.entry(name).or_insert(meta.len());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let now = lab.now().0;
    for (name, size) in &first_seen {
        assert!(*size > 0, "{name} is empty");
        let final_size = std::fs::metadata(share.join(name)).map(|m| m.len());
        // The copy job may not delete from the share; if a file is still there it must be unchanged.
        if let Ok(final_size) = final_size {
            assert_eq!(
                final_size, *size,
                "{name} grew after it was visible as .trn"
            );
        }
        let stamp =
            utc_stamp_ms(name).unwrap_or_else(|| panic!("{name} is not mgc_<yyyymmddhhmmss>.trn"));
        // Names carry lab time in UTC, to the second.
        assert!(
            stamp >= started - 1000 && stamp <= now,
            "{name}: {stamp} not within [{started}, {now}]"
        );
    }
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_and_restore_jobs_advance() {
    let (_dir, lab) = start_fast_lab().await;
    let copy_folder = lab.manifest().copy_folder.clone();
    let copied = eventually(Duration::from_secs(10), "two copied log backups", || {
        let copy_folder = copy_folder.clone();
        async move {
            let files = trn_files(&copy_folder);
            (files.len() >= 2).then_some(files)
        }
    })
    .await;
    let share_files = trn_files(&lab.manifest().share);
    assert!(
        copied.iter().all(|f| share_files.contains(f)),
        "copied {copied:?} come from the share {share_files:?}"
    );

    let mut backup = connect(lab.manifest(), Role::Backup)
        .await
        .expect("backup answers");
    let first = restored_file_other_than(&mut backup, None).await;
    let later = restored_file_other_than(&mut backup, Some(&first)).await;
    let name = |path: &str| path.rsplit(['/', '\\']).next().unwrap().to_owned();
    assert!(
        name(&later) > name(&first),
        "restores move forward in file order: {first} then {later}"
    );

    let rows = query_strings(
        &mut backup,
        "SELECT state_desc FROM sys.databases WHERE name = N'mgc'",
    )
    .await;
    assert_eq!(
        rows,
        vec![vec![Some("RESTORING".to_owned())]],
        "the secondary stays in NORECOVERY"
    );
    lab.shutdown().await.unwrap();
}

/// Polls log_shipping_secondary_databases.last_restored_file on the backup until it names a file other
/// than `previous` (bounded: the restore job runs every ~100 ms real time here).
async fn restored_file_other_than(backup: &mut SqlClient, previous: Option<&str>) -> String {
    let sql = "SELECT last_restored_file FROM msdb.dbo.log_shipping_secondary_databases WHERE secondary_database = N'mgc'";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = query_strings(backup, sql)
            .await
            .first()
            .and_then(|row| row[0].clone());
        if let Some(file) = current.filter(|f| Some(f.as_str()) != previous) {
            return file;
        }
        assert!(
            Instant::now() < deadline,
            "no restore after {previous:?} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `make_backlog` is an outage of the restore job made at once: the log backups it takes are real
/// (taken, copied and restored by the jobs themselves), the restore job stays disabled, and the
/// pending backups continue the restored chain, so the first one restores and the next is the
/// following file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_leaves_copied_backups_that_continue_the_restored_chain() {
    let (_dir, lab) = start_fast_lab().await;
    let made = lab
        .make_backlog(&pcfail_lab::Backlog {
            pending: 30,
            applied: 5,
            copied: true,
            spacing_ms: 1_000,
        })
        .expect("backlog made");
    assert_eq!((made.pending, made.applied), (30, 5));

    let mut backup = connect(lab.manifest(), Role::Backup).await.unwrap();
    let restored = query_strings(
        &mut backup,
        "SELECT d.last_restored_file FROM msdb.dbo.log_shipping_secondary_databases AS d WHERE d.secondary_database = N'mgc'",
    )
    .await;
    let last_restored = restored[0][0].clone().expect("a file was restored");
    let disabled = query_strings(
        &mut backup,
        "SELECT name FROM msdb.dbo.sysjobs WHERE enabled = 0",
    )
    .await;
    assert!(
        disabled
            .iter()
            .any(|r| r[0].as_deref().is_some_and(|n| n.starts_with("LSRestore"))),
        "the restore job is disabled: {disabled:?}"
    );

    let copy_folder = lab.manifest().copy_folder.clone();
    let last_restored_name = std::path::Path::new(&last_restored)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name")
        .to_owned();
    let pending: Vec<String> = trn_files(&copy_folder)
        .into_iter()
        .filter(|n| n.starts_with("mgc_") && *n > last_restored_name)
        .collect();
    assert!(
        pending.len() >= 30,
        "30 pending copied backups: {pending:?}"
    );

    for name in &pending[..2] {
        let path = copy_folder.join(name);
        let sql = format!(
            "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
            path.display()
        );
        let answer = match backup.simple_query(sql.as_str()).await {
            Ok(stream) => stream.into_results().await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = answer {
            panic!("{name} continues the chain: {e}");
        }
    }
}
