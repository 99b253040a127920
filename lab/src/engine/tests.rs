//! Engine behaviour tested through the session API directly (no TCP), where the exact event order
//! matters: errors before 3013, INFO messages, DONE flags. Over-TCP tests live in
//! `lab/tests/engine_over_tds.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pcfail_lab_tds::{Backend, Event, Login, RpcCall, RpcParam, Session, SqlType, Value};

use super::*;

const START: LabTime = LabTime(1_709_251_200_000); // 2024-03-01 00:00:00 UTC

fn instance(role: Role, name: &str, dc: &str, mirror: Option<&str>) -> InstanceConfig {
    let fqdn = format!("{}.litwareinc.com", name.to_lowercase());
    InstanceConfig {
        role,
        name: name.to_owned(),
        endpoint: format!("TCP://{fqdn}:5022"),
        fqdn,
        data_center: dc.to_owned(),
        mirror_fqdn: mirror.map(str::to_owned),
    }
}

pub(crate) fn config(dir: &Path) -> WorldConfig {
    for sub in ["share", "backup-copy", "backups"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    WorldConfig {
        lab_dir: dir.to_path_buf(),
        instances: vec![
            instance(
                Role::Primary,
                "ATL-SQL-001",
                "ATL",
                Some("atl-sql-002.litwareinc.com"),
            ),
            instance(Role::PrimaryMirror, "ATL-SQL-002", "ATL", None),
            instance(
                Role::Backup,
                "DAL-SQL-001",
                "DAL",
                Some("dal-sql-002.litwareinc.com"),
            ),
            instance(Role::BackupMirror, "DAL-SQL-002", "DAL", None),
        ],
        login_user: "sa".to_owned(),
        login_password: "Lab-Pa55word".to_owned(),
        windows_login: None,
        share: dir.join("share"),
        copy_folder: dir.join("backup-copy"),
        backups: dir.join("backups"),
        backup_every_min: 5,
        copy_every_min: 15,
        restore_every_min: 15,
        standby_secondary: false,
        distinct_service_accounts: false,
        data_paths_per_instance: false,
        chat_messages_per_min: 6,
        chat_servers: [
            ("atl-pc-001.litwareinc.com", "ATL"),
            ("atl-pc-002.litwareinc.com", "ATL"),
            ("dal-pc-001.litwareinc.com", "DAL"),
            ("dal-pc-002.litwareinc.com", "DAL"),
        ]
        .map(|(f, d)| (f.to_owned(), d.to_owned()))
        .to_vec(),
        initial_active_servers: vec![
            "atl-pc-001.litwareinc.com".to_owned(),
            "atl-pc-002.litwareinc.com".to_owned(),
        ],
        windows: None,
        variants: Default::default(),
        io_mb_per_s: None,
    }
}

struct Harness {
    world: SharedWorld,
    clock: Arc<Clock>,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let world = World::new_hadr(config(dir.path()), START);
        Harness {
            world: Arc::new(Mutex::new(world)),
            clock: Arc::new(Clock::new(START, 1.0)),
            dir,
        }
    }

    fn backend(&self, role: Role) -> InstanceBackend {
        InstanceBackend::new(self.world.clone(), role, self.clock.clone())
    }

    fn login(&self, role: Role) -> EngineSession {
        let login = Login {
            user: "sa".into(),
            password: "Lab-Pa55word".into(),
            database: String::new(),
            app_name: "engine-tests".into(),
            host_name: "test-host".into(),
            server_name: String::new(),
            tds_version: 0x7400_0004,
            windows: false,
        };
        self.backend(role)
            .login(&login, "127.0.0.1:1".parse().unwrap())
            .map(|(s, _)| s)
            .unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// (number, text) of every ERROR and INFO, in order.
fn messages(events: &[Event]) -> Vec<(u32, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error(m) | Event::Info(m) => Some((m.number, m.message.clone())),
            _ => None,
        })
        .collect()
}

fn error_numbers(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::Error(m) = e {
                Some(m.number)
            } else {
                None
            }
        })
        .collect()
}

fn rows(events: &[Event]) -> Vec<Vec<Value>> {
    events
        .iter()
        .find_map(|e| {
            if let Event::Rows { rows, .. } = e {
                Some(rows.clone())
            } else {
                None
            }
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Numeric(n, _) => n.to_string(),
        Value::Bit(b) => (*b as u8).to_string(),
        Value::Null => "NULL".into(),
        other => format!("{other:?}"),
    }
}

/// Two log backups of the primary's mgc, with chat in between: (path1, path2).
async fn two_log_backups(h: &Harness) -> (String, String) {
    let mut p = h.login(Role::Primary);
    let (one, two) = (h.path("share/one.trn"), h.path("share/two.trn"));
    let ev = p
        .batch(format!("BACKUP LOG [mgc] TO DISK = N'{one}'"))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    h.world.lock().unwrap().tick(LabTime(START.0 + 60_000));
    let ev = p
        .batch(format!("BACKUP LOG [mgc] TO DISK = N'{two}'"))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    (one, two)
}

#[tokio::test]
async fn restore_errors_come_before_3013_and_successes_print_4035_then_3014() {
    let h = Harness::new();
    let (one, two) = two_log_backups(&h).await;
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch(format!(
            "RESTORE LOG [mgc] FROM DISK = N'{two}' WITH NORECOVERY"
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![4305, 3013]);
    assert_eq!(messages(&ev)[1].1, "RESTORE LOG is terminating abnormally.");
    assert_eq!(
        ev.last(),
        Some(&Event::Done {
            row_count: None,
            error: true
        })
    );

    let ev = b
        .batch(format!(
            "RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"
        ))
        .await;
    let got: Vec<u32> = messages(&ev).iter().map(|m| m.0).collect();
    assert_eq!(got, vec![4035, 3014], "{ev:?}");
    assert!(
        messages(&ev)[1]
            .1
            .starts_with("RESTORE LOG successfully processed "),
        "{:?}",
        messages(&ev)
    );

    let ev = b
        .batch(format!(
            "RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![4326, 3013]);
    let missing = h.path("share/missing.trn");
    let ev = b
        .batch(format!("RESTORE LOG [mgc] FROM DISK = N'{missing}'"))
        .await;
    assert_eq!(error_numbers(&ev), vec![3201, 3013]);
    let ev = b
        .batch(format!("RESTORE LOG [mgccomp] FROM DISK = N'{two}'"))
        .await;
    assert_eq!(error_numbers(&ev), vec![3117, 3013]);
    let ev = b
        .batch("RESTORE DATABASE [mgccomp] WITH RECOVERY".into())
        .await;
    assert_eq!(error_numbers(&ev), vec![3153, 3013]);
    let ev = b
        .batch(format!("RESTORE LOG [nosuch] FROM DISK = N'{two}'"))
        .await;
    assert_eq!(error_numbers(&ev), vec![3118, 3013]);
}

#[tokio::test]
async fn backup_errors_come_before_3013() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let nowhere = h.path("nowhere/x.bak");
    let cases = [
        (
            format!("BACKUP DATABASE [mgc] TO DISK = N'{nowhere}'"),
            vec![3201, 3013],
            "BACKUP DATABASE is terminating abnormally.",
        ),
        (
            format!("BACKUP LOG [nosuch] TO DISK = N'{nowhere}'"),
            vec![911, 3013],
            "BACKUP LOG is terminating abnormally.",
        ),
        (
            format!("BACKUP LOG [msdb] TO DISK = N'{nowhere}'"),
            vec![4208, 3013],
            "BACKUP LOG is terminating abnormally.",
        ),
        (
            format!("BEGIN TRAN; BACKUP LOG [mgc] TO DISK = N'{nowhere}'"),
            vec![3021, 3013],
            "BACKUP LOG is terminating abnormally.",
        ),
    ];
    for (sql, numbers, last) in cases {
        let ev = p.batch(sql.clone()).await;
        assert_eq!(error_numbers(&ev), numbers, "{sql}");
        assert_eq!(messages(&ev).last().unwrap().1, last);
        let _ = p.batch("ROLLBACK".into()).await;
    }
    // A database created in the lab without any full backup: 4214.
    h.world
        .lock()
        .unwrap()
        .create_user_db(Role::Primary, "fresh", START);
    let ev = p
        .batch(format!(
            "BACKUP LOG [fresh] TO DISK = N'{}'",
            h.path("backups/f.trn")
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![4214, 3013]);
}

#[tokio::test]
async fn several_backup_sets_share_a_file_and_headeronly_lists_them() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let file = h.path("backups/multi.bak");
    for sql in [
        format!(
            "BACKUP DATABASE [mgc] TO DISK = N'{file}' WITH INIT, COPY_ONLY, CHECKSUM, COMPRESSION"
        ),
        format!("BACKUP LOG [mgc] TO DISK = N'{file}' WITH NOINIT"),
        format!("BACKUP LOG [mgc] TO DISK = N'{file}'"),
    ] {
        let ev = p.batch(sql).await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    }
    let ev = p
        .batch(format!("RESTORE HEADERONLY FROM DISK = N'{file}'"))
        .await;
    let Some(Event::Rows { columns, rows }) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(columns.len(), 56);
    assert_eq!(rows.len(), 3);
    let col = |name: &str| columns.iter().position(|c| c.name == name).unwrap();
    let kinds: Vec<String> = rows.iter().map(|r| text(&r[col("BackupType")])).collect();
    assert_eq!(kinds, ["1", "2", "2"]);
    let positions: Vec<String> = rows.iter().map(|r| text(&r[col("Position")])).collect();
    assert_eq!(positions, ["1", "2", "3"]);
    // An unbroken chain: each log's FirstLSN is the previous log's LastLSN.
    assert_eq!(rows[2][col("FirstLSN")], rows[1][col("LastLSN")]);
    assert_eq!(rows[0][col("IsCopyOnly")], Value::Bit(true));
    assert_eq!(rows[0][col("Compressed")], Value::Bit(true));

    let ev = p
        .batch(format!(
            "RESTORE FILELISTONLY FROM DISK = N'{file}' WITH FILE = 1"
        ))
        .await;
    let names: Vec<String> = rows_of(&ev).iter().map(|r| text(&r[0])).collect();
    assert_eq!(names, ["mgc", "mgc_log"]);
    let ev = p.batch(format!("RESTORE HEADERONLY FROM DISK = N'{file}' WITH FILE = 9; RESTORE VERIFYONLY FROM DISK = N'{file}' WITH FILE = 9")).await;
    assert_eq!(error_numbers(&ev), vec![4038, 3013]);
}

/// A set damaged on the media still shows its header; only VERIFYONLY WITH CHECKSUM finds it before a
/// RESTORE does (3189, then 3013 "VERIFY DATABASE ..."), and the RESTORE fails with 3183.
#[tokio::test]
async fn a_damaged_backup_set_is_found_by_verifyonly_with_checksum_only() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let file = h.path("backups/damaged.trn");
    let ev = p
        .batch(format!(
            "BACKUP LOG [mgc] TO DISK = N'{file}' WITH CHECKSUM"
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let (magic, body) = text.split_once('\n').unwrap();
    let mut json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["sets"][0]["damaged"] = serde_json::Value::Bool(true);
    std::fs::write(&file, format!("{magic}\n{json}")).unwrap();
    let cases: [(String, Vec<u32>); 4] = [
        (format!("RESTORE HEADERONLY FROM DISK = N'{file}'"), vec![]),
        (format!("RESTORE VERIFYONLY FROM DISK = N'{file}'"), vec![]),
        (
            format!("RESTORE VERIFYONLY FROM DISK = N'{file}' WITH FILE = 1, CHECKSUM"),
            vec![3189, 3013],
        ),
        (
            format!("RESTORE LOG [mgc] FROM DISK = N'{file}' WITH NORECOVERY"),
            vec![3183, 3013],
        ),
    ];
    for (sql, expected) in cases {
        let ev = p.batch(sql.clone()).await;
        assert_eq!(error_numbers(&ev), expected, "{sql}");
    }
    let ev = p
        .batch(format!(
            "RESTORE VERIFYONLY FROM DISK = N'{file}' WITH CHECKSUM"
        ))
        .await;
    assert!(
        messages(&ev)
            .iter()
            .any(|(n, t)| *n == 3013 && t == "VERIFY DATABASE is terminating abnormally."),
        "{ev:?}"
    );
}

fn rows_of(ev: &[Event]) -> Vec<Vec<Value>> {
    rows(ev)
}

#[tokio::test]
async fn full_restore_checks_family_tail_and_move_names_unless_replace() {
    let h = Harness::new();
    let full = h.path("backups/mgc_init.bak");
    let mut m = h.login(Role::BackupMirror);
    let ev = m
        .batch(format!(
            "RESTORE DATABASE [copy] FROM DISK = N'{full}' WITH MOVE N'nope' TO N'/x.mdf'"
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![3234, 3013]);
    let ev = m.batch(format!("RESTORE DATABASE [copy] FROM DISK = N'{full}' WITH MOVE N'mgc' TO N'D:\\copy.mdf', RECOVERY")).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let ev = m
        .batch(format!("RESTORE DATABASE [copy] FROM DISK = N'{full}'"))
        .await;
    assert_eq!(error_numbers(&ev), vec![3159, 3013]);
    let ev = m
        .batch(format!(
            "RESTORE DATABASE [copy] FROM DISK = N'{full}' WITH REPLACE, NORECOVERY"
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let comp = h.path("backups/mgccomp_init.bak");
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch(format!(
            "RESTORE DATABASE [mgccomp] FROM DISK = N'{comp}' WITH NORECOVERY"
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![3154, 3013]);
    // On the primary, mgc is mirrored: 3104 whatever else is true.
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch(format!(
            "RESTORE DATABASE [mgc] FROM DISK = N'{full}' WITH REPLACE"
        ))
        .await;
    assert_eq!(error_numbers(&ev), vec![3104, 3013]);
}

#[tokio::test]
async fn restore_needs_exclusive_access_3101_for_others_3102_for_yourself() {
    let h = Harness::new();
    let (one, _) = two_log_backups(&h).await;
    let mut b = h.login(Role::Backup);
    let undo = h.path("backup-copy/undo.bak");
    let ev = b
        .batch(format!(
            "RESTORE LOG [mgc] FROM DISK = N'{one}' WITH STANDBY = N'{undo}'"
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert!(Path::new(&undo).exists(), "the undo file is written");
    let mut reader = h.login(Role::Backup);
    let ev = reader.batch("USE [mgc]".into()).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::DatabaseChanged { new, .. } if new == "mgc")),
        "{ev:?}"
    );
    let ev = b
        .batch(format!("RESTORE LOG [mgc] FROM DISK = N'{one}'"))
        .await;
    assert_eq!(error_numbers(&ev), vec![3101, 3013]);
    reader.close();
    let _ = b.batch("USE mgc".into()).await;
    let ev = b.batch("RESTORE DATABASE [mgc] WITH RECOVERY".into()).await;
    assert_eq!(error_numbers(&ev), vec![3102, 3013]);
    assert!(
        messages(&ev)[0].1.starts_with(
            "RESTORE cannot process database 'mgc' because it is in use by this session."
        ),
        "{:?}",
        messages(&ev)
    );
}

#[tokio::test]
async fn use_of_a_restoring_database_is_927_and_a_missing_one_911() {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    assert_eq!(error_numbers(&b.batch("USE [mgc]".into()).await), vec![927]);
    assert_eq!(
        error_numbers(&b.batch("USE [nosuch]".into()).await),
        vec![911]
    );
    let ev = b.batch("USE msdb; SELECT DB_NAME()".into()).await;
    assert_eq!(rows(&ev), vec![vec![Value::String("msdb".into())]]);
    let info: Vec<u32> = messages(&ev).iter().map(|m| m.0).collect();
    assert_eq!(info, vec![5701]);
}

#[tokio::test]
async fn anything_outside_the_model_is_a_clear_error() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let cases = [
        ("SELEC 1", 102),
        ("SELECT * FROM sys.nosuch", 208),
        ("SELECT nosuch FROM sys.databases", 207),
        ("EXEC sp_nosuch", 2812),
        ("EXEC sp_add_schedule @schedule_name = N'x'", 2812), // lives in msdb
        ("SELECT NOSUCHFN(1)", 195),
        ("SELECT @undeclared", 137),
        ("SET FANCY ON", 195),
        (
            "EXEC sp_delete_log_shipping_secondary_database @nosuch = 1",
            8145,
        ),
        ("EXEC sp_delete_log_shipping_secondary_database", 201),
        // Real T-SQL the lab does not model: the lab's own error, never a SQL Server number.
        ("INSERT INTO t VALUES (1)", 59999),
        ("IF 1 = 1 SELECT 1", 59999),
        ("WAITFOR DELAY '00:00:01'", 59999),
        ("CREATE TABLE t (a int)", 59999),
        ("DROP DATABASE mgc", 59999),
        ("ALTER DATABASE mgc SET OFFLINE", 59999),
        ("BEGIN TRY SELECT 1 END TRY BEGIN CATCH END CATCH", 59999),
        ("SELECT * FROM sys.objects", 59999),
        ("SELECT 1 FROM sys.databases GROUP BY name", 59999),
        ("SELECT (SELECT 1)", 59999),
        ("EXEC sp_helpdb", 59999),
        ("SELECT OBJECT_ID(N'x')", 59999),
        ("RESTORE LABELONLY FROM DISK = N'x.bak'", 59999),
    ];
    for (sql, number) in cases {
        let ev = p.batch(sql.into()).await;
        assert_eq!(error_numbers(&ev), vec![number], "{sql}: {ev:?}");
        assert_eq!(
            ev.last(),
            Some(&Event::Done {
                row_count: None,
                error: true
            }),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn selects_evaluate_joins_filters_order_top_and_aggregates() {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch(
            "SELECT s.primary_server, d.secondary_database, d.restore_mode FROM msdb.dbo.log_shipping_secondary AS s \
             JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = N'MGC'"
                .into(),
        )
        .await;
    assert_eq!(
        rows(&ev),
        vec![vec![
            Value::String("ATL-SQL-001".into()),
            Value::String("mgc".into()),
            Value::Bit(false)
        ]]
    );
    let ev = b.batch("SELECT TOP (2) name FROM sys.databases WHERE database_id > 1 AND NOT name LIKE 'm%' OR name IN ('mgc') ORDER BY name DESC".into()).await;
    let names: Vec<String> = rows(&ev).iter().map(|r| text(&r[0])).collect();
    assert_eq!(names, ["tempdb", "mgc"]);
    let ev = b
        .batch("SELECT COUNT(*) AS n, MAX(database_id) FROM sys.databases".into())
        .await;
    assert_eq!(rows(&ev), vec![vec![Value::Int(6), Value::Int(6)]]);
    let ev = b.batch("DECLARE @n int = 5; SET @n = @n + 1; SELECT @n AS six, ISNULL(DB_ID(N'nosuch'), -1), CAST(DATABASEPROPERTYEX(N'mgc', 'Status') AS nvarchar(60))".into()).await;
    assert_eq!(
        rows(&ev),
        vec![vec![
            Value::Int(6),
            Value::Int(-1),
            Value::String("RESTORING".into())
        ]]
    );
    let ev = b.batch("SELECT j.name FROM msdb.dbo.sysjobs j LEFT JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id WHERE js.schedule_id IS NOT NULL ORDER BY j.name".into()).await;
    let names: Vec<String> = rows(&ev).iter().map(|r| text(&r[0])).collect();
    assert_eq!(
        names,
        ["LSCopy_ATL-SQL-001_mgc", "LSRestore_ATL-SQL-001_mgc"]
    );
}

#[tokio::test]
async fn sp_executesql_in_a_batch_binds_its_parameters_in_their_own_scope() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch("DECLARE @outer int = 1; EXEC sp_executesql N'SELECT name FROM sys.databases WHERE name = @n', N'@n sysname', @n = N'mgccomp'; SELECT @outer".into())
        .await;
    let all: Vec<Vec<Value>> = ev
        .iter()
        .filter_map(|e| {
            if let Event::Rows { rows, .. } = e {
                Some(rows.clone())
            } else {
                None
            }
        })
        .flatten()
        .collect();
    assert_eq!(
        all,
        vec![vec![Value::String("mgccomp".into())], vec![Value::Int(1)]]
    );
    let ev = p
        .batch("DECLARE @outer int = 1; EXEC sp_executesql N'SELECT @outer'".into())
        .await;
    assert_eq!(
        error_numbers(&ev),
        vec![137],
        "the caller's variables are not visible"
    );
}

#[tokio::test]
async fn sp_who2_has_thirteen_columns_and_kill_ends_sessions() {
    let h = Harness::new();
    let mut admin = h.login(Role::Backup);
    let mut victim = h.login(Role::Backup);
    let ev = admin.batch("EXEC sp_who2".into()).await;
    let Some(Event::Rows { columns, rows }) = ev.first() else {
        panic!("{ev:?}")
    };
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SPID",
            "Status",
            "Login",
            "HostName",
            "BlkBy",
            "DBName",
            "Command",
            "CPUTime",
            "DiskIO",
            "LastBatch",
            "ProgramName",
            "SPID",
            "REQUESTID"
        ]
    );
    assert!(
        rows.iter()
            .any(|r| text(&r[0]).trim() == victim.spid().to_string())
    );
    let own = admin.spid();
    let cases = [
        (format!("KILL {own}"), 6104),
        ("KILL 1".into(), 6107),
        ("KILL 0".into(), 6101),
        ("KILL 999".into(), 6106),
    ];
    for (sql, number) in cases {
        assert_eq!(
            error_numbers(&admin.batch(sql.clone()).await),
            vec![number],
            "{sql}"
        );
    }
    let ev = admin.batch(format!("KILL {}", victim.spid())).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        victim.batch("SELECT 1".into()).await,
        vec![Event::Disconnect]
    );
    // The race: the session is gone by the time KILL arrives.
    assert_eq!(
        error_numbers(&admin.batch(format!("KILL {}", victim.spid())).await),
        vec![6106]
    );
}

#[tokio::test]
async fn spids_start_at_51_and_are_reused_after_close() {
    let h = Harness::new();
    let mut a = h.login(Role::Primary);
    let b = h.login(Role::Primary);
    assert_eq!((a.spid(), b.spid()), (51, 52));
    a.close();
    assert_eq!(h.login(Role::Primary).spid(), 51);
}

#[tokio::test]
async fn application_locks_conflict_time_out_and_die_with_their_session() {
    let h = Harness::new();
    let mut a = h.login(Role::Primary);
    let mut b = h.login(Role::Primary);
    let get = "DECLARE @rc int; EXEC @rc = sp_getapplock @Resource = N'pcfail-failover', @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @rc";
    assert_eq!(rows(&a.batch(get.into()).await), vec![vec![Value::Int(0)]]);
    assert_eq!(rows(&b.batch(get.into()).await), vec![vec![Value::Int(-1)]]);
    let waiting = "DECLARE @rc int; EXEC @rc = sp_getapplock @Resource = N'pcfail-failover', @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 5000; SELECT @rc";
    let world = h.world.clone();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let _ = world;
        a.close();
    });
    assert_eq!(
        rows(&b.batch(waiting.into()).await),
        vec![vec![Value::Int(1)]],
        "granted after waiting"
    );
    releaser.await.unwrap();
    let ev = b.batch("DECLARE @rc int; EXEC @rc = sp_releaseapplock @Resource = N'other', @LockOwner = 'Session'; SELECT @rc".into()).await;
    assert_eq!(error_numbers(&ev), vec![1223]);
    assert_eq!(rows(&ev), vec![vec![Value::Int(-999)]]);
    let ev = b.batch("DECLARE @rc int; EXEC @rc = sp_getapplock @Resource = N'x', @LockMode = 'Exclusive'; SELECT @rc".into()).await;
    assert_eq!(
        rows(&ev),
        vec![vec![Value::Int(-999)]],
        "a Transaction-owned lock needs a transaction"
    );
}

#[tokio::test]
async fn deleting_the_log_shipping_secondary_removes_jobs_and_config_but_leaves_the_database_restoring()
 {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let ev = b.batch("EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'".into()).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    for table in [
        "log_shipping_secondary",
        "log_shipping_secondary_databases",
        "log_shipping_monitor_secondary",
        "sysjobs",
        "sysjobschedules",
    ] {
        let ev = b
            .batch(format!("SELECT COUNT(*) FROM msdb.dbo.{table}"))
            .await;
        assert_eq!(rows(&ev), vec![vec![Value::Int(0)]], "{table}");
    }
    let ev = b
        .batch("SELECT state_desc FROM sys.databases WHERE name = 'mgc'".into())
        .await;
    assert_eq!(rows(&ev), vec![vec![Value::String("RESTORING".into())]]);
    let ev = b.batch("DECLARE @rc int; EXEC @rc = sp_delete_log_shipping_secondary_database N'mgc'; SELECT @rc".into()).await;
    assert_eq!(
        messages(&ev)[0],
        (
            32014,
            "Database mgc does not exist as log shipping secondary.".to_owned()
        )
    );
    assert_eq!(rows(&ev), vec![vec![Value::Int(1)]]);
}

#[tokio::test]
async fn log_shipping_setup_procs_return_ids_and_jobs_start_disabled() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch(
            "DECLARE @job uniqueidentifier, @id uniqueidentifier, @rc int; \
             EXEC @rc = master.dbo.sp_add_log_shipping_primary_database @database = N'mgccomp', @backup_directory = N'/s', \
               @backup_share = N'\\\\atl\\s', @backup_job_name = N'LSBackup_mgccomp', @backup_retention_period = 4320, \
               @backup_job_id = @job OUTPUT, @primary_id = @id OUTPUT, @overwrite = 1; \
             SELECT @rc, j.enabled FROM msdb.dbo.sysjobs j WHERE j.job_id = @job"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(rows(&ev), vec![vec![Value::Int(0), Value::Int(0)]]);
    let ev = p.batch("EXEC sp_add_log_shipping_primary_database N'mgccomp', N'/s', N'/s', N'LSBackup_mgccomp', 60".into()).await;
    assert_eq!(error_numbers(&ev), vec![32009]);
    let ev = p
        .batch(
            "USE msdb; DECLARE @sid int; EXEC sp_add_schedule @schedule_name = N'every5', @freq_type = 4, @freq_interval = 1, \
             @freq_subday_type = 4, @freq_subday_interval = 5, @schedule_id = @sid OUTPUT; \
             EXEC sp_attach_schedule @job_name = N'LSBackup_mgccomp', @schedule_id = @sid; \
             EXEC sp_update_job @job_name = N'LSBackup_mgccomp', @enabled = 1; \
             SELECT s.freq_subday_interval, js.next_run_date FROM sysschedules s JOIN sysjobschedules js ON js.schedule_id = s.schedule_id \
             WHERE s.schedule_id = @sid"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(rows(&ev), vec![vec![Value::Int(5), Value::Int(20240301)]]);
    let ev = p
        .batch("SELECT enabled FROM sysjobs WHERE name = N'LSBackup_mgccomp'".into())
        .await;
    assert_eq!(rows(&ev), vec![vec![Value::Int(1)]]);
    // Three tables in one FROM are outside the model: the lab's own error, and nothing in the batch runs.
    let ev = p.batch("EXEC sp_update_job @job_name = N'LSBackup_mgccomp', @enabled = 0; SELECT 1 FROM sysjobs a JOIN sysjobs b ON 1 = 1 JOIN sysjobs c ON 1 = 1".into()).await;
    assert_eq!(
        messages(&ev),
        vec![(
            59999,
            "the lab does not model: joins of three or more tables".to_owned()
        )]
    );
    let ev = p
        .batch("SELECT enabled FROM sysjobs WHERE name = N'LSBackup_mgccomp'".into())
        .await;
    assert_eq!(rows(&ev), vec![vec![Value::Int(1)]]);
}

/// Reference J.4: sp_add_schedule allows two schedules of one name; attaching by that name is then
/// ambiguous (14371), attaching by id works.
#[tokio::test]
async fn a_duplicated_schedule_name_cannot_be_attached_by_name() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch(
            "EXEC sp_add_log_shipping_primary_database N'mgccomp', N'/s', N'/s', N'LSBackup_mgccomp', 60, @overwrite = 1"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let add = "EXEC msdb.dbo.sp_add_schedule @schedule_name = N'twice', @freq_type = 4, @freq_interval = 1";
    for _ in 0..2 {
        let ev = p.batch(add.into()).await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    }
    let ev = p
        .batch("EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgccomp', @schedule_name = N'twice'".into())
        .await;
    assert_eq!(
        messages(&ev),
        vec![(
            14371,
            "There are two or more schedules named \"twice\". Specify @schedule_id instead of @schedule_name to uniquely identify the schedule.".to_owned()
        )]
    );
    let ev = p
        .batch("SELECT MAX(schedule_id) FROM msdb.dbo.sysschedules WHERE name = N'twice'".into())
        .await;
    let id = match rows(&ev).as_slice() {
        [row] => text(&row[0]),
        other => panic!("{other:?}"),
    };
    let ev = p
        .batch(format!(
            "EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgccomp', @schedule_id = {id}"
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
}

#[tokio::test]
async fn ticks_ship_every_log_backup_to_the_secondary_exactly_once() {
    let h = Harness::new();
    for minute in (1..=95).step_by(2) {
        h.world
            .lock()
            .unwrap()
            .tick(LabTime(START.0 + minute * 60_000));
    }
    let w = h.world.lock().unwrap();
    let primary = &w.inst(Role::Primary).unwrap().db("mgc").unwrap().records;
    let mirror = &w
        .inst(Role::PrimaryMirror)
        .unwrap()
        .db("mgc")
        .unwrap()
        .records;
    let secondary = &w.inst(Role::Backup).unwrap().db("mgc").unwrap().records;
    assert!(
        primary.len() > 250,
        "chat traffic flowed: {}",
        primary.len()
    );
    assert_eq!(mirror, primary, "the mirror is synchronous");
    assert!(
        secondary.len() > 200 && secondary.len() < primary.len(),
        "{} of {}",
        secondary.len(),
        primary.len()
    );
    assert_eq!(
        &primary[..secondary.len()],
        secondary.as_slice(),
        "a prefix, each record once"
    );
    let share: Vec<String> = std::fs::read_dir(h.dir.path().join("share"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        share
            .iter()
            .all(|n| n.starts_with("mgc_20240301") && n.ends_with(".trn")),
        "{share:?}"
    );
    assert!(share.len() >= 18, "{share:?}");
    let status = w.status();
    let last = &status["instances"]["backup"]["log_shipping"]["secondary"][0]["databases"][0]["last_restored_file"];
    assert!(
        last.as_str().is_some_and(|f| f.contains("backup-copy")),
        "{status}"
    );
}

#[tokio::test]
async fn the_world_survives_a_round_trip_through_json() {
    let h = Harness::new();
    let text = serde_json::to_string(&*h.world.lock().unwrap()).unwrap();
    assert!(
        !text.contains("Lab-Pa55word"),
        "the password is never persisted"
    );
    let mut back: World = serde_json::from_str(&text).unwrap();
    back.restore_runtime("Lab-Pa55word");
    assert_eq!(back.status(), h.world.lock().unwrap().status());
}

#[tokio::test]
async fn rebuild_primary_leaves_empty_online_databases_and_no_log_shipping() {
    let h = Harness::new();
    let mut w = h.world.lock().unwrap();
    w.set_instance_up(Role::Primary, false);
    w.set_instance_up(Role::PrimaryMirror, false);
    w.rebuild_primary(LabTime(START.0 + 3_600_000));
    let p = w.inst(Role::Primary).unwrap();
    assert!(p.up && w.is_up(Role::PrimaryMirror));
    let mgc = p.db("mgc").unwrap();
    assert_eq!(
        (mgc.state.desc(), mgc.records.len(), mgc.mirroring.is_none()),
        ("ONLINE", 0, true)
    );
    assert!(p.msdb.ls_primary_databases.is_empty() && p.msdb.jobs.is_empty());
    assert!(w.inst(Role::PrimaryMirror).unwrap().db("mgc").is_none());
}

#[tokio::test]
async fn partner_failover_swaps_roles_and_chat_follows_the_new_principal() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let mut reader = h.login(Role::Primary);
    let _ = reader.batch("USE mgc".into()).await;
    let ev = p
        .batch("ALTER DATABASE [mgc] SET PARTNER SAFETY OFF".into())
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        error_numbers(
            &p.batch("ALTER DATABASE [mgc] SET PARTNER FAILOVER".into())
                .await
        ),
        vec![1477]
    );
    let _ = p
        .batch("ALTER DATABASE [mgc] SET PARTNER SAFETY FULL".into())
        .await;
    let mut m = h.login(Role::PrimaryMirror);
    assert_eq!(
        error_numbers(
            &m.batch("ALTER DATABASE [mgc] SET PARTNER FAILOVER".into())
                .await
        ),
        vec![1468]
    );
    let ev = p
        .batch("ALTER DATABASE [mgc] SET PARTNER FAILOVER".into())
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        reader.batch("SELECT 1".into()).await,
        vec![Event::Disconnect],
        "connections to the old principal's database drop"
    );
    let sql = "SELECT d.state_desc, m.mirroring_role_desc FROM sys.databases d JOIN sys.database_mirroring m ON m.database_id = d.database_id WHERE d.name = N'mgc'";
    let s = |x: &str| Value::String(x.into());
    assert_eq!(
        rows(&p.batch(sql.into()).await),
        vec![vec![s("RESTORING"), s("MIRROR")]]
    );
    assert_eq!(
        rows(&m.batch(sql.into()).await),
        vec![vec![s("ONLINE"), s("PRINCIPAL")]]
    );
    let mut w = h.world.lock().unwrap();
    assert_eq!(w.active_mgc(), Some(Role::PrimaryMirror));
    let records = |w: &World, role| w.inst(role).unwrap().db("mgc").unwrap().records.len();
    let before = records(&w, Role::PrimaryMirror);
    w.tick(LabTime(START.0 + 10 * 60_000));
    let after = records(&w, Role::PrimaryMirror);
    assert!(after > before);
    assert_eq!(
        records(&w, Role::Primary),
        after,
        "the new mirror is kept in sync"
    );
}

#[tokio::test]
async fn a_down_instance_refuses_logins_and_drops_its_sessions() {
    let h = Harness::new();
    let mut s = h.login(Role::BackupMirror);
    h.world
        .lock()
        .unwrap()
        .set_instance_up(Role::BackupMirror, false);
    assert_eq!(s.batch("SELECT 1".into()).await, vec![Event::Disconnect]);
    let login = Login {
        user: "sa".into(),
        password: "Lab-Pa55word".into(),
        database: String::new(),
        app_name: String::new(),
        host_name: String::new(),
        server_name: String::new(),
        tds_version: 0x7400_0004,
        windows: false,
    };
    let refused = h
        .backend(Role::BackupMirror)
        .login(&login, "127.0.0.1:1".parse().unwrap())
        .err()
        .unwrap();
    let numbers = |r: &[pcfail_lab_tds::Message]| -> Vec<(u32, u8)> {
        r.iter().map(|m| (m.number, m.class)).collect()
    };
    assert_eq!(numbers(&refused), [(17187, 16)]);
    let bad_db = Login {
        database: "mgc".into(),
        ..login
    };
    let refused = h
        .backend(Role::Backup)
        .login(&bad_db, "127.0.0.1:1".parse().unwrap())
        .err()
        .unwrap();
    assert_eq!(
        numbers(&refused),
        [(4060, 11), (18456, 14)],
        "mgc is RESTORING on the backup instance: 4060, then 18456 as SQL Server sends"
    );
}

#[tokio::test]
async fn a_fault_delay_does_not_hold_the_world() {
    let h = Harness::new();
    std::fs::write(
        h.dir.path().join("faults.json"),
        r#"{"rules":[{"kind":"sql","instance":"primary","pattern":"WAITFORME","delay_ms":1500}]}"#,
    )
    .unwrap();
    let mut slow = h.login(Role::Primary);
    let mut fast = h.login(Role::Primary);
    let started = std::time::Instant::now();
    let slow_task = tokio::spawn(async move { slow.batch("SELECT 'WAITFORME'".into()).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        rows(&fast.batch("SELECT 1".into()).await),
        vec![vec![Value::Int(1)]]
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "another session was not blocked"
    );
    let ev = slow_task.await.unwrap();
    assert_eq!(rows(&ev), vec![vec![Value::String("WAITFORME".into())]]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
}

fn param(name: &str, ty: SqlType, value: Value, output: bool) -> RpcParam {
    RpcParam {
        name: name.into(),
        output,
        ty,
        value,
    }
}

#[tokio::test]
async fn a_named_rpc_returns_output_parameters_and_its_status() {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let s = |x: &str| Value::String(x.into());
    let nv = SqlType::NVarChar(128);
    let guid_out = |n: &str| param(n, SqlType::UniqueIdentifier, Value::Null, true);
    let call = RpcCall {
        proc_id: None,
        proc_name: Some("master.dbo.sp_add_log_shipping_secondary_primary".into()),
        params: vec![
            param("@primary_server", nv.clone(), s("DAL-SQL-002"), false),
            param("@primary_database", nv.clone(), s("mgccomp"), false),
            param("@backup_source_directory", nv.clone(), s("/share"), false),
            param(
                "@backup_destination_directory",
                nv.clone(),
                s("/copy"),
                false,
            ),
            param("@copy_job_name", nv.clone(), s("LSCopy_comp"), false),
            param("@restore_job_name", nv.clone(), s("LSRestore_comp"), false),
            guid_out("@copy_job_id"),
            guid_out("@restore_job_id"),
            guid_out("@secondary_id"),
        ],
    };
    let ev = b.rpc(call.clone()).await;
    let outputs: Vec<&str> = ev
        .iter()
        .filter_map(|e| {
            if let Event::ReturnValue {
                name,
                value: Value::Guid(_),
                ..
            } = e
            {
                Some(name.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        outputs,
        ["@copy_job_id", "@restore_job_id", "@secondary_id"]
    );
    assert_eq!(ev.last(), Some(&Event::ReturnStatus(0)));
    let ev = b.rpc(call).await;
    assert_eq!(error_numbers(&ev), vec![32024]);
    assert_eq!(ev.last(), Some(&Event::ReturnStatus(1)));
    let unknown = RpcCall {
        proc_id: None,
        proc_name: Some("sp_nosuch".into()),
        params: vec![],
    };
    assert_eq!(error_numbers(&b.rpc(unknown).await), vec![2812]);
}

#[tokio::test]
async fn mirroring_refuses_a_mirror_that_missed_a_log_backup_1478() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let mut m = h.login(Role::PrimaryMirror);
    // Break the existing session, then take a log backup the mirror never sees.
    assert!(
        error_numbers(&p.batch("ALTER DATABASE [mgc] SET PARTNER OFF".into()).await).is_empty()
    );
    h.world.lock().unwrap().tick(LabTime(START.0 + 60_000));
    let trn = h.path("share/gap.trn");
    assert!(
        error_numbers(
            &p.batch(format!("BACKUP LOG [mgc] TO DISK = N'{trn}'"))
                .await
        )
        .is_empty()
    );
    let ev = m
        .batch("ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-001.litwareinc.com:5022'".into())
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let ev = p
        .batch("ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-002.litwareinc.com:5022'".into())
        .await;
    assert_eq!(error_numbers(&ev), vec![1478]);
    // Restoring the missing log on the mirror lets the session start.
    assert!(
        error_numbers(&m.batch("ALTER DATABASE [mgc] SET PARTNER OFF".into()).await).is_empty()
    );
    assert!(
        error_numbers(
            &m.batch(format!(
                "RESTORE LOG [mgc] FROM DISK = N'{trn}' WITH NORECOVERY"
            ))
            .await
        )
        .is_empty()
    );
    let _ = m
        .batch("ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-001.litwareinc.com:5022'".into())
        .await;
    let ev = p
        .batch("ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-002.litwareinc.com:5022'".into())
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    // A mirror copy that is ONLINE cannot join: 1464 from the principal.
    let mut b = h.login(Role::Backup);
    let _ = b.batch("CREATE ENDPOINT e STATE = STARTED AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = PARTNER)".into()).await;
    let mut bm = h.login(Role::BackupMirror);
    let _ = bm.batch("CREATE ENDPOINT e STATE = STARTED AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = PARTNER)".into()).await;
    h.world
        .lock()
        .unwrap()
        .create_user_db(Role::BackupMirror, "mgccomp", START);
    let ev = b
        .batch(
            "ALTER DATABASE [mgccomp] SET PARTNER = N'TCP://dal-sql-002.litwareinc.com:5022'"
                .into(),
        )
        .await;
    assert_eq!(error_numbers(&ev), vec![1464]);
}

#[tokio::test]
async fn fault_rules_can_drop_the_connection_or_take_the_instance_down() {
    let h = Harness::new();
    let rules = r#"{"rules":[
        {"kind":"sql","instance":"backup","pattern":"BACKUP DATABASE","drop_connection":true},
        {"kind":"sql","instance":"backup_mirror","pattern":"*","down":true}]}"#;
    std::fs::write(h.dir.path().join("faults.json"), rules).unwrap();
    let mut b = h.login(Role::Backup);
    assert_eq!(
        b.batch("BACKUP DATABASE [mgccomp] TO DISK = N'/x.bak'".into())
            .await,
        vec![Event::Disconnect]
    );
    assert_eq!(
        rows(&b.batch("SELECT 2".into()).await),
        vec![vec![Value::Int(2)]],
        "without `times`, only matching statements fail"
    );
    let mut m = h.login(Role::BackupMirror);
    assert_eq!(m.batch("SELECT 1".into()).await, vec![Event::Disconnect]);
    assert!(!h.world.lock().unwrap().is_up(Role::BackupMirror));
}

#[tokio::test]
async fn sp_add_jobschedule_attaches_a_new_schedule_and_sp_delete_job_removes_it() {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch(
            "USE msdb; DECLARE @id int; \
             EXEC sp_add_jobschedule @job_name = N'LSCopy_ATL-SQL-001_mgc', @name = N'extra', @freq_type = 4, \
             @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 1, @schedule_id = @id OUTPUT; \
             SELECT COUNT(*) FROM sysjobschedules WHERE schedule_id = @id"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(rows(&ev), vec![vec![Value::Int(1)]]);
    let ev = b.batch("EXEC sp_delete_job @job_name = N'LSCopy_ATL-SQL-001_mgc'; SELECT COUNT(*) FROM sysschedules".into()).await;
    assert_eq!(
        rows(&ev),
        vec![vec![Value::Int(1)]],
        "only the restore job's schedule is left"
    );
    let ev = b
        .batch("EXEC sp_delete_job @job_name = N'LSCopy_ATL-SQL-001_mgc'".into())
        .await;
    assert_eq!(
        messages(&ev)[0],
        (
            14262,
            "The specified @job_name ('LSCopy_ATL-SQL-001_mgc') does not exist.".to_owned()
        )
    );
}

/// Writes cms.json as the shell would.
fn write_cms(h: &Harness, pool_state: &str, active: &[&str]) {
    let cms = serde_json::json!({
        "pool": "atl-cs-001.litwareinc.com",
        "pool_state": pool_state,
        "active_servers": active,
    });
    std::fs::write(h.dir.path().join("cms.json"), cms.to_string()).unwrap();
}

#[tokio::test]
async fn chat_is_written_only_through_an_active_server_outside_a_lost_data_center() {
    let h = Harness::new();
    let mut w = h.world.lock().unwrap();
    // No cms.json yet: the servers lab.json starts with (ATL's) write to the primary.
    assert_eq!(w.active_mgc(), Some(Role::Primary));
    write_cms(&h, "Normal", &[]);
    assert_eq!(
        w.active_mgc(),
        None,
        "`-ActiveServers $Null` stops all writes"
    );
    write_cms(&h, "Normal", &["dal-pc-001.litwareinc.com"]);
    assert_eq!(
        w.active_mgc(),
        Some(Role::Primary),
        "a DAL server still writes to the pool's database"
    );
    write_cms(&h, "Normal", &["atl-pc-001.litwareinc.com"]);
    w.set_data_center_lost("ATL", true);
    assert_eq!(
        w.active_mgc(),
        None,
        "servers in a lost data center write nothing"
    );
    let records = |w: &World| {
        w.inst(Role::Primary)
            .unwrap()
            .db("mgc")
            .unwrap()
            .records
            .len()
    };
    let before = records(&w);
    w.tick(LabTime(START.0 + 30 * 60_000));
    assert_eq!(records(&w), before);
    w.set_data_center_lost("ATL", false);
    w.tick(LabTime(START.0 + 60 * 60_000));
    assert!(records(&w) > before);
}

#[tokio::test]
async fn a_tail_log_backup_needs_the_database_to_itself_and_no_mirroring() {
    let h = Harness::new();
    let tail = format!(
        "BACKUP LOG [mgc] TO DISK = N'{}' WITH NORECOVERY",
        h.path("backups/tail.trn")
    );
    let mut p = h.login(Role::Primary);
    // Mirrored (the HA/DR layout): refused, and the database stays ONLINE.
    let ev = p.batch(tail.clone()).await;
    assert_eq!(error_numbers(&ev), vec![1468, 3013], "{ev:?}");
    assert_eq!(
        messages(&ev)[0].1,
        "The operation cannot be performed on database \"mgc\" because it is involved in a database mirroring session."
    );
    let state = "SELECT state_desc FROM sys.databases WHERE name = N'mgc'";
    assert_eq!(
        rows(&p.batch(state.into()).await),
        vec![vec![Value::String("ONLINE".into())]]
    );
    let ev = p.batch("ALTER DATABASE [mgc] SET PARTNER OFF".into()).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    // Another session in mgc: 3101; this session in mgc: 3102.
    let mut user = h.login(Role::Primary);
    let _ = user.batch("USE mgc".into()).await;
    assert_eq!(
        error_numbers(&p.batch(tail.clone()).await),
        vec![3101, 3013]
    );
    user.close();
    let _ = p.batch("USE mgc".into()).await;
    assert_eq!(
        error_numbers(&p.batch(tail.clone()).await),
        vec![3102, 3013]
    );
    let _ = p.batch("USE master".into()).await;
    let ev = p.batch(tail).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        rows(&p.batch(state.into()).await),
        vec![vec![Value::String("RESTORING".into())]]
    );
}

#[tokio::test]
async fn the_old_reading_of_a_tail_log_backup_on_a_mirrored_database_is_a_variant() {
    let h = Harness::new();
    let chosen = [("tail_log_on_mirrored".to_owned(), "allowed".to_owned())].into();
    h.world.lock().unwrap().config.variants = super::Variants::new(&chosen).unwrap();
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch(format!(
            "BACKUP LOG [mgc] TO DISK = N'{}' WITH NORECOVERY",
            h.path("backups/tail.trn")
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
}

#[tokio::test]
async fn the_mirror_side_set_partner_needs_its_own_started_endpoint() {
    for (variant, expected) in [("1486", vec![1486]), ("accepted", vec![])] {
        let h = Harness::new();
        let chosen = [("partner_without_endpoint".to_owned(), variant.to_owned())].into();
        h.world.lock().unwrap().config.variants = super::Variants::new(&chosen).unwrap();
        let mut p = h.login(Role::Primary);
        let ev = p.batch("ALTER DATABASE [mgc] SET PARTNER OFF".into()).await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
        let mut m = h.login(Role::PrimaryMirror);
        let ev = m
            .batch("ALTER ENDPOINT [Mirroring] STATE = STOPPED".into())
            .await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
        let ev = m
            .batch(
                "ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-001.litwareinc.com:5022'"
                    .into(),
            )
            .await;
        assert_eq!(error_numbers(&ev), expected, "{variant}: {ev:?}");
    }
}

fn set_variant(h: &Harness, name: &str, value: &str) {
    let chosen = [(name.to_owned(), value.to_owned())].into();
    h.world.lock().unwrap().config.variants = super::Variants::new(&chosen).unwrap();
}

#[tokio::test]
async fn each_engine_variant_switches_its_reading() {
    // sp_delete_log_shipping_secondary_database on a database that is not a secondary.
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let delete = "EXEC sp_delete_log_shipping_secondary_database N'mgccomp'";
    assert_eq!(error_numbers(&b.batch(delete.into()).await), vec![32014]);
    set_variant(&h, "delete_secondary_not_configured", "silent");
    assert_eq!(
        error_numbers(&b.batch(delete.into()).await),
        Vec::<u32>::new()
    );

    // RESTORE LOG of a database that does not exist.
    let (one, _) = two_log_backups(&h).await;
    let missing = format!("RESTORE LOG [nosuch] FROM DISK = N'{one}'");
    set_variant(&h, "restore_missing_database", "911");
    assert_eq!(error_numbers(&b.batch(missing).await), vec![911, 3013]);

    // The restoring server's backupset: recorded, or absent (restorehistory joins to nothing).
    set_variant(&h, "restore_history_backupset", "absent");
    let ev = b
        .batch(format!(
            "RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"
        ))
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let join = "SELECT COUNT(*) FROM msdb.dbo.restorehistory r JOIN msdb.dbo.backupset b ON b.backup_set_id = r.backup_set_id WHERE r.restore_type = 'L'";
    assert_eq!(rows(&b.batch(join.into()).await), vec![vec![Value::Int(0)]]);

    // recovery_model_desc of a bulk-logged database.
    let bulk = "SELECT recovery_model_desc FROM sys.databases WHERE name = N'mgccomp'";
    let _ = b
        .batch("ALTER DATABASE [mgccomp] SET RECOVERY BULK_LOGGED".into())
        .await;
    assert_eq!(
        rows(&b.batch(bulk.into()).await),
        vec![vec![Value::String("BULK_LOGGED".into())]]
    );
    set_variant(&h, "bulk_logged_desc", "BULK-LOGGED");
    assert_eq!(
        rows(&b.batch(bulk.into()).await),
        vec![vec![Value::String("BULK-LOGGED".into())]]
    );

    // sp_who2's column types.
    set_variant(&h, "sp_who2_types", "varchar");
    let ev = b.batch("EXEC sp_who2".into()).await;
    let Some(Event::Rows { columns, .. }) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(columns[0].ty, SqlType::VarChar(5));

    // mirroring_partner_name: the endpoint address, or the server name.
    let mut p = h.login(Role::Primary);
    let partner = "SELECT m.mirroring_partner_name FROM sys.database_mirroring m WHERE m.database_id = DB_ID(N'mgc')";
    assert_eq!(
        rows(&p.batch(partner.into()).await),
        vec![vec![Value::String(
            "TCP://atl-sql-002.litwareinc.com:5022".into()
        )]]
    );
    set_variant(&h, "mirroring_partner_name", "server");
    assert_eq!(
        rows(&p.batch(partner.into()).await),
        vec![vec![Value::String("ATL-SQL-002".into())]]
    );
}

#[tokio::test]
async fn a_standby_database_reads_as_read_only_unless_the_variant_says_not() {
    for (variant, read_only) in [("1", true), ("0", false)] {
        let h = Harness::new();
        set_variant(&h, "standby_read_only", variant);
        let (one, _) = two_log_backups(&h).await;
        let mut b = h.login(Role::Backup);
        let undo = h.path("backup-copy/undo.tuf");
        let ev = b
            .batch(format!(
                "RESTORE LOG [mgc] FROM DISK = N'{one}' WITH STANDBY = N'{undo}'"
            ))
            .await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
        let ev = b
            .batch(
                "SELECT is_read_only, is_in_standby FROM sys.databases WHERE name = N'mgc'".into(),
            )
            .await;
        assert_eq!(
            rows(&ev),
            vec![vec![Value::Bit(read_only), Value::Bit(true)]],
            "{variant}"
        );
    }
}

#[tokio::test]
async fn log_backup_names_carry_utc_or_the_primarys_local_time() {
    for (variant, name) in [
        ("utc", "mgc_20240301000500.trn"),
        ("local", "mgc_20240229190500.trn"),
    ] {
        let h = Harness::new();
        std::fs::create_dir_all(h.dir.path().join("share")).unwrap();
        set_variant(&h, "trn_name_time", variant);
        let mut w = h.world.lock().unwrap();
        w.tick(LabTime(START.0 + 60_000));
        w.tick(LabTime(START.0 + 5 * 60_000));
        assert!(
            h.dir.path().join("share").join(name).exists(),
            "{variant}: {:?}",
            std::fs::read_dir(h.dir.path().join("share"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn the_restore_job_takes_files_by_name_or_by_their_first_lsn() {
    for (variant, restored) in [("name", false), ("lsn", true)] {
        let h = Harness::new();
        set_variant(&h, "restore_job_order", variant);
        let (one, two) = two_log_backups(&h).await;
        // Names in the opposite order of the log chain.
        let copy = h.dir.path().join("backup-copy");
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(&two, copy.join("mgc_1.trn")).unwrap();
        std::fs::copy(&one, copy.join("mgc_2.trn")).unwrap();
        let mut b = h.login(Role::Backup);
        let ev = b
            .batch("EXEC msdb.dbo.sp_start_job @job_name = N'LSRestore_ATL-SQL-001_mgc'".into())
            .await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
        let count = "SELECT COUNT(*) FROM msdb.dbo.restorehistory WHERE restore_type = 'L'";
        let expected = if restored { 2 } else { 0 };
        assert_eq!(
            rows(&b.batch(count.into()).await),
            vec![vec![Value::Int(expected)]],
            "{variant}"
        );
    }
}

/// `SET SINGLE_USER WITH ROLLBACK IMMEDIATE` (reference J.3) is one statement: its ROLLBACK is not a
/// ROLLBACK statement, and the other sessions in the database are ended.
#[tokio::test]
async fn single_user_with_rollback_immediate_ends_the_other_sessions() {
    let h = Harness::new();
    let mut other = h.login(Role::Primary);
    let ev = other.batch("USE mgccomp".into()).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let mut p = h.login(Role::Primary);
    let ev = p
        .batch(
            "ALTER DATABASE [mgccomp] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; SELECT user_access_desc FROM sys.databases WHERE name = N'mgccomp'"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        rows(&ev).iter().map(|r| text(&r[0])).collect::<Vec<_>>(),
        ["SINGLE_USER"]
    );
    let ev = other.batch("SELECT 1".into()).await;
    assert!(
        ev.iter().any(|e| matches!(e, Event::Disconnect)),
        "the other session was ended: {ev:?}"
    );
}

/// xp_logevent writes to the error log; sp_readerrorlog reads it back, filtered by its search
/// strings (how pcfail anchors a journal's final hash on the backup instance).
#[tokio::test]
async fn xp_logevent_lines_are_read_back_by_sp_readerrorlog() {
    let h = Harness::new();
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch(
            "EXEC master.dbo.xp_logevent 60000, N'pcfail anchor run=r1 sha256=ab', 'informational'"
                .into(),
        )
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let ev = b
        .batch("EXEC master.dbo.xp_logevent 60000, N'something else'".into())
        .await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let ev = b
        .batch("EXEC sp_readerrorlog 0, 1, N'pcfail anchor', N'run=r1'".into())
        .await;
    let texts: Vec<String> = rows(&ev).iter().map(|r| text(&r[2])).collect();
    assert_eq!(texts, ["pcfail anchor run=r1 sha256=ab"]);
    // Older logs and the Agent log hold nothing in the lab.
    let ev = b.batch("EXEC sp_readerrorlog 1, 1, N'pcfail'".into()).await;
    assert!(rows(&ev).is_empty());
    let ev = b
        .batch("EXEC master.dbo.xp_logevent 50000, N'x'".into())
        .await;
    assert_eq!(error_numbers(&ev), vec![59999]);
}

/// Partners under different service accounts (reference J.5): the principal's SET PARTNER cannot
/// start the session (1418) until each account has a login and CONNECT on the other's endpoint; the
/// catalog shows the accounts, the logins and the grants a client checks.
#[tokio::test]
async fn partners_under_other_accounts_need_connect_on_each_others_endpoint_1418() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.distinct_service_accounts = true;
    let h = Harness {
        world: Arc::new(Mutex::new(World::new_hadr(cfg, START))),
        clock: Arc::new(Clock::new(START, 1.0)),
        dir,
    };
    let mut p = h.login(Role::Primary);
    let mut m = h.login(Role::PrimaryMirror);
    // The deployed pair was granted: its session stands, and the catalog says why.
    let ev = m
        .batch("SELECT sp.name, p.permission_name, p.state_desc FROM sys.server_permissions AS p JOIN sys.server_principals AS sp ON sp.principal_id = p.grantee_principal_id WHERE p.class = 105 AND p.major_id = 65536".into())
        .await;
    assert_eq!(
        rows(&ev)
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        vec![vec![
            "LITWAREINC\\svc-atl-sql-001".to_owned(),
            "CONNECT".to_owned(),
            "GRANT".to_owned()
        ]]
    );
    let ev = p
        .batch("SELECT service_account FROM sys.dm_server_services WHERE servicename = N'SQL Server (MSSQLSERVER)'".into())
        .await;
    assert_eq!(text(&rows(&ev)[0][0]), "LITWAREINC\\svc-atl-sql-001");

    // The backup pair: endpoints made, no grants yet.
    let mut b = h.login(Role::Backup);
    let mut bm = h.login(Role::BackupMirror);
    for s in [&mut b, &mut bm] {
        let ev = s.batch("CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = PARTNER)".into()).await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    }
    let full = h.path("share/mgccomp_full.bak");
    let log = h.path("share/mgccomp_log.bak");
    for text in [
        format!("BACKUP DATABASE [mgccomp] TO DISK = N'{full}' WITH INIT"),
        format!("BACKUP LOG [mgccomp] TO DISK = N'{log}' WITH INIT"),
    ] {
        let ev = b.batch(text).await;
        assert!(
            !error_numbers(&ev).iter().any(|n| *n != 3014 && *n != 4035),
            "{ev:?}"
        );
    }
    for text in [
        format!("RESTORE DATABASE [mgccomp] FROM DISK = N'{full}' WITH NORECOVERY"),
        format!("RESTORE LOG [mgccomp] FROM DISK = N'{log}' WITH NORECOVERY"),
        "ALTER DATABASE [mgccomp] SET PARTNER = N'TCP://dal-sql-001.litwareinc.com:5022'"
            .to_owned(),
    ] {
        let ev = bm.batch(text).await;
        assert!(
            !error_numbers(&ev).iter().any(|n| *n != 3014 && *n != 4035),
            "{ev:?}"
        );
    }
    let partner = "ALTER DATABASE [mgccomp] SET PARTNER = N'TCP://dal-sql-002.litwareinc.com:5022'";
    assert_eq!(error_numbers(&b.batch(partner.into()).await), vec![1418]);

    // A grant to a login that does not exist names it; a login made twice is 15025.
    let ev = bm
        .batch("GRANT CONNECT ON ENDPOINT::[Mirroring] TO [LITWAREINC\\svc-dal-sql-001]".into())
        .await;
    assert_eq!(
        messages(&ev),
        vec![(15151, "Cannot find the login 'LITWAREINC\\svc-dal-sql-001', because it does not exist or you do not have permission.".to_owned())]
    );
    for (session, account) in [(&mut bm, "svc-dal-sql-001"), (&mut b, "svc-dal-sql-002")] {
        let ev = session
            .batch(format!("CREATE LOGIN [LITWAREINC\\{account}] FROM WINDOWS"))
            .await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
        let ev = session
            .batch(format!(
                "GRANT CONNECT ON ENDPOINT::[Mirroring] TO [LITWAREINC\\{account}]"
            ))
            .await;
        assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    }
    let ev = b
        .batch("CREATE LOGIN [LITWAREINC\\svc-dal-sql-002] FROM WINDOWS".into())
        .await;
    assert_eq!(
        messages(&ev),
        vec![(
            15025,
            "The server principal 'LITWAREINC\\svc-dal-sql-002' already exists.".to_owned()
        )]
    );
    let ev = b.batch(partner.into()).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
}

/// With one data directory per instance, a full restore that would put a file in another instance's
/// directory fails while it is planned: 5133 and 3156 per file, 3119, 3013; MOVE into the instance's
/// default directory (SERVERPROPERTY) restores it.
#[tokio::test]
async fn a_restore_into_another_instances_directory_needs_move_5133_3156_3119() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.data_paths_per_instance = true;
    let h = Harness {
        world: Arc::new(Mutex::new(World::new_hadr(cfg, START))),
        clock: Arc::new(Clock::new(START, 1.0)),
        dir,
    };
    let mut b = h.login(Role::Backup);
    let mut bm = h.login(Role::BackupMirror);
    let full = h.path("share/mgccomp_full.bak");
    let ev = b
        .batch(format!(
            "BACKUP DATABASE [mgccomp] TO DISK = N'{full}' WITH INIT"
        ))
        .await;
    assert!(
        !error_numbers(&ev).iter().any(|n| *n != 3014 && *n != 4035),
        "{ev:?}"
    );
    let ev = b
        .batch("SELECT name, physical_name FROM sys.master_files WHERE database_id = DB_ID(N'mgccomp')".into())
        .await;
    let files: Vec<(String, String)> = rows(&ev)
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let restore = format!("RESTORE DATABASE [mgccomp] FROM DISK = N'{full}' WITH NORECOVERY");
    let ev = bm.batch(restore.clone()).await;
    assert_eq!(
        error_numbers(&ev),
        vec![5133, 3156, 5133, 3156, 3119, 3013],
        "{:?}",
        messages(&ev)
    );
    assert_eq!(
        messages(&ev)[0].1,
        format!(
            "Directory lookup for the file \"{}\" failed with the operating system error 3(The system cannot find the path specified.).",
            files[0].1
        )
    );
    let ev = bm
        .batch("SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260))".into())
        .await;
    let home = text(&rows(&ev)[0][0]);
    assert!(home.ends_with("\\DAL-SQL-002\\"), "{home}");
    let moves: String = files
        .iter()
        .map(|(logical, physical)| {
            let name = physical.rsplit('\\').next().unwrap();
            format!(", MOVE N'{logical}' TO N'{home}{name}'")
        })
        .collect();
    let ev = bm.batch(format!("{restore}{moves}")).await;
    assert!(
        !error_numbers(&ev).iter().any(|n| *n != 3014 && *n != 4035),
        "{ev:?}"
    );
}

/// sp_add_log_shipping_alert_job (Microsoft's page): creates `LSAlert_<@@SERVERNAME>` enabled, on a
/// two-minute schedule, records it in log_shipping_monitor_alert and returns its id; a second call
/// finds it and creates nothing. A non-log-shipping job of that name is refused (32022) with status 1.
#[tokio::test]
async fn the_alert_job_is_created_once_enabled_every_two_minutes() {
    let h = Harness::new();
    let mut p = h.login(Role::Primary);
    let add = "DECLARE @id uniqueidentifier, @rc int; EXEC @rc = master.dbo.sp_add_log_shipping_alert_job @alert_job_id = @id OUTPUT; \
               SELECT @rc, CONVERT(nvarchar(36), @id)";
    let ev = p.batch(add.into()).await;
    assert!(error_numbers(&ev).is_empty(), "{ev:?}");
    let first = rows(&ev);
    assert_eq!(text(&first[0][0]), "0");
    let id = text(&first[0][1]);
    let ev = p.batch(add.into()).await;
    assert_eq!(rows(&ev), first, "a second call returns the same job");
    let ev = p
        .batch(
            "SELECT CONVERT(nvarchar(36), job_id), name, enabled FROM msdb.dbo.sysjobs WHERE name LIKE N'LSAlert%'"
                .into(),
        )
        .await;
    let server = h
        .world
        .lock()
        .unwrap()
        .inst(Role::Primary)
        .unwrap()
        .config
        .name
        .clone();
    assert_eq!(
        rows(&ev)
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        vec![vec![
            id.clone(),
            format!("LSAlert_{server}"),
            "1".to_owned()
        ]]
    );
    let ev = p
        .batch(
            "SELECT CONVERT(nvarchar(36), alert_job_id) FROM msdb.dbo.log_shipping_monitor_alert"
                .into(),
        )
        .await;
    assert_eq!(text(&rows(&ev)[0][0]), id);
    let ev = p
        .batch(
            format!("SELECT s.name, s.freq_subday_type, s.freq_subday_interval FROM msdb.dbo.sysschedules s JOIN msdb.dbo.sysjobschedules js ON js.schedule_id = s.schedule_id WHERE js.job_id = '{id}'"),
        )
        .await;
    assert_eq!(
        rows(&ev)
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        vec![vec![
            "Log shipping alert job schedule.".to_owned(),
            "4".to_owned(),
            "2".to_owned()
        ]]
    );

    // A job of that name in another category (the lab has no sp_add_job: put it in msdb directly).
    {
        let mut world = h.world.lock().unwrap();
        let inst = world.inst_mut(Role::Backup).unwrap();
        let name = format!("LSAlert_{}", inst.config.name);
        let job = super::model::Job::new(
            super::guid::Guid::parse("00000000-0000-0000-0000-0000000000aa").unwrap(),
            &name,
            super::model::JobKind::Other,
            None,
            START,
        );
        inst.msdb.jobs.push(job);
    }
    let mut b = h.login(Role::Backup);
    let ev = b
        .batch("DECLARE @rc int; EXEC @rc = sp_add_log_shipping_alert_job; SELECT @rc".into())
        .await;
    assert_eq!(error_numbers(&ev), vec![32022]);
    assert_eq!(text(&rows(&ev)[0][0]), "1");
}
