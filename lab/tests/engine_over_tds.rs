//! The lab's SQL engine over real TDS: `pcfail_lab_tds::run` on 127.0.0.1:0 with an `InstanceBackend`
//! per instance, driven by tiberius (and FreeTDS `tsql`) the way pcfail and an operator would.
//!
//! Each test builds its own four-instance world in a temporary lab directory; nothing is shared.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pcfail_lab::engine::{
    Clock, InstanceBackend, InstanceConfig, LabTime, Role, SharedWorld, World, WorldConfig,
};
use tiberius::numeric::Numeric;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "Lab-Pa55word";
const START: LabTime = LabTime(1_709_251_200_000); // 2024-03-01 00:00:00 UTC
/// Every client call is bounded, so a protocol or engine bug fails fast instead of hanging 30 s.
const LIMIT: Duration = Duration::from_secs(10);

type Sql = Client<Compat<TcpStream>>;

struct Lab {
    world: SharedWorld,
    addrs: HashMap<Role, SocketAddr>,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn instance(role: Role, name: &str, dc: &str) -> InstanceConfig {
    let fqdn = format!("{}.litwareinc.com", name.to_lowercase());
    InstanceConfig {
        role,
        name: name.into(),
        endpoint: format!("TCP://{fqdn}:5022"),
        fqdn,
        data_center: dc.into(),
        mirror_fqdn: None,
    }
}

async fn start() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["share", "backup-copy", "backups"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let config = WorldConfig {
        lab_dir: dir.path().to_path_buf(),
        instances: vec![
            instance(Role::Primary, "ATL-SQL-001", "ATL"),
            instance(Role::PrimaryMirror, "ATL-SQL-002", "ATL"),
            instance(Role::Backup, "DAL-SQL-001", "DAL"),
            instance(Role::BackupMirror, "DAL-SQL-002", "DAL"),
        ],
        login_user: "sa".into(),
        login_password: PASSWORD.into(),
        windows_login: None,
        share: dir.path().join("share"),
        copy_folder: dir.path().join("backup-copy"),
        backups: dir.path().join("backups"),
        backup_every_min: 5,
        copy_every_min: 15,
        restore_every_min: 15,
        standby_secondary: false,
        distinct_service_accounts: false,
        data_paths_per_instance: false,
        chat_messages_per_min: 6,
        chat_servers: vec![
            ("atl-pc-001.litwareinc.com".into(), "ATL".into()),
            ("dal-pc-001.litwareinc.com".into(), "DAL".into()),
        ],
        initial_active_servers: vec!["atl-pc-001.litwareinc.com".into()],
        windows: None,
        variants: Default::default(),
        io_mb_per_s: None,
    };
    let world: SharedWorld = Arc::new(Mutex::new(World::new_hadr(config, START)));
    let clock = Arc::new(Clock::new(START, 1.0));
    let shutdown = CancellationToken::new();
    let mut addrs = HashMap::new();
    for role in [
        Role::Primary,
        Role::PrimaryMirror,
        Role::Backup,
        Role::BackupMirror,
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(role, listener.local_addr().unwrap());
        let backend = Arc::new(InstanceBackend::new(world.clone(), role, clock.clone()));
        tokio::spawn(pcfail_lab_tds::run(listener, backend, shutdown.clone()));
    }
    Lab {
        world,
        addrs,
        shutdown,
        dir,
    }
}

impl Lab {
    async fn connect_as(&self, role: Role, password: &str) -> tiberius::Result<Sql> {
        let addr = self.addrs[&role];
        let mut config = Config::new();
        config.host("127.0.0.1");
        config.port(addr.port());
        config.authentication(AuthMethod::sql_server("sa", password));
        config.encryption(EncryptionLevel::NotSupported);
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        tokio::time::timeout(LIMIT, Client::connect(config, tcp.compat_write()))
            .await
            .expect("login answered in time")
    }

    async fn connect(&self, role: Role) -> Sql {
        self.connect_as(role, PASSWORD).await.unwrap()
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }
}

/// Runs a batch; all rows of the first result set, or the first server error.
async fn rows(c: &mut Sql, sql: &str) -> tiberius::Result<Vec<Row>> {
    tokio::time::timeout(LIMIT, async {
        let stream = c.simple_query(sql).await?;
        stream.into_first_result().await
    })
    .await
    .expect("the batch answered in time")
}

/// Runs a parameterized query (tiberius sends it as an sp_executesql RPC) with @P1 = `p1`; all rows
/// of the first result set, or the first server error.
async fn query_rows(c: &mut Sql, sql: &str, p1: &str) -> tiberius::Result<Vec<Row>> {
    tokio::time::timeout(LIMIT, async {
        c.query(sql, &[&p1]).await?.into_first_result().await
    })
    .await
    .expect("the query answered in time")
}

/// The (number, message) of the error a batch raises; panics if it succeeds.
async fn error(c: &mut Sql, sql: &str) -> (u32, String) {
    let result = tokio::time::timeout(LIMIT, async {
        let stream = c.simple_query(sql).await?;
        stream.into_results().await
    })
    .await
    .expect("the batch answered in time");
    match result {
        Err(tiberius::error::Error::Server(e)) => (e.code(), e.message().to_owned()),
        other => panic!("expected a server error from {sql}, got {other:?}"),
    }
}

async fn ok(c: &mut Sql, sql: &str) {
    if let Err(e) = rows(c, sql).await {
        panic!("{sql}: {e}");
    }
}

async fn redo_start_lsn(c: &mut Sql) -> i128 {
    let r = rows(c, "SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID(N'mgc') AND file_id = 1").await.unwrap();
    r[0].get::<Numeric, _>(0)
        .expect("RESTORING: redo_start_lsn is set")
        .value()
}

/// Two log backups of the primary's mgc with chat traffic in between.
async fn two_log_backups(lab: &Lab) -> (String, String) {
    let mut p = lab.connect(Role::Primary).await;
    let (one, two) = (lab.path("share/mgc_1.trn"), lab.path("share/mgc_2.trn"));
    ok(&mut p, &format!("BACKUP LOG [mgc] TO DISK = N'{one}'")).await;
    lab.world.lock().unwrap().tick(LabTime(START.0 + 120_000));
    ok(&mut p, &format!("BACKUP LOG [mgc] TO DISK = N'{two}'")).await;
    (one, two)
}

#[tokio::test]
async fn sys_databases_columns_read_with_their_real_types() {
    let lab = start().await;
    let mut p = lab.connect(Role::Primary).await;
    let sql = "SELECT name, database_id, state, state_desc, is_in_standby, is_read_only, recovery_model_desc, user_access_desc FROM sys.databases WHERE name = @P1";
    let r = query_rows(&mut p, sql, "mgc").await.unwrap();
    assert_eq!(r.len(), 1);
    let row = &r[0];
    assert_eq!(row.get::<&str, _>("name"), Some("mgc"));
    assert_eq!(row.get::<i32, _>("database_id"), Some(5));
    assert_eq!(row.get::<u8, _>("state"), Some(0));
    assert_eq!(row.get::<&str, _>("state_desc"), Some("ONLINE"));
    assert_eq!(row.get::<bool, _>("is_in_standby"), Some(false));
    assert_eq!(row.get::<bool, _>("is_read_only"), Some(false));
    assert_eq!(row.get::<&str, _>("recovery_model_desc"), Some("FULL"));
    assert_eq!(row.get::<&str, _>("user_access_desc"), Some("MULTI_USER"));

    // DATABASEPROPERTYEX returns sql_variant; tiberius reads the base type.
    let sql = "SELECT DATABASEPROPERTYEX(N'mgc', 'Status'), DATABASEPROPERTYEX(N'mgc', 'Recovery'), DATABASEPROPERTYEX(N'nosuch', 'Status')";
    let r = rows(&mut p, sql).await.unwrap();
    let got = (
        r[0].get::<&str, _>(0),
        r[0].get::<&str, _>(1),
        r[0].get::<&str, _>(2),
    );
    assert_eq!(got, (Some("ONLINE"), Some("FULL"), None));

    let mut b = lab.connect(Role::Backup).await;
    let r = rows(
        &mut b,
        "SELECT state_desc, is_in_standby FROM sys.databases WHERE name = N'mgc'",
    )
    .await
    .unwrap();
    assert_eq!(
        (r[0].get::<&str, _>(0), r[0].get::<bool, _>(1)),
        (Some("RESTORING"), Some(false))
    );
    let r = rows(
        &mut b,
        "SELECT @@SERVERNAME, @@SPID, SERVERPROPERTY('ProductVersion')",
    )
    .await
    .unwrap();
    assert_eq!(r[0].get::<&str, _>(0), Some("DAL-SQL-001"));
    assert!(r[0].get::<i16, _>(1).is_some_and(|spid| spid >= 51));
}

#[tokio::test]
async fn a_bad_password_is_login_failed_18456() {
    let lab = start().await;
    match lab.connect_as(Role::Primary, "wrong").await {
        Err(tiberius::error::Error::Server(e)) => {
            assert_eq!(
                (e.code(), e.class(), e.message()),
                (18456, 14, "Login failed for user 'sa'.")
            );
        }
        Err(other) => panic!("expected 18456, got {other:?}"),
        Ok(_) => panic!("expected 18456, the login succeeded"),
    }
    let w = lab.world.lock().unwrap();
    assert!(
        w.transcript(Role::Primary).is_empty(),
        "a refused login is not a session"
    );
}

#[tokio::test]
async fn log_restores_follow_the_lsn_boundaries_of_4305_and_4326() {
    let lab = start().await;
    let (one, two) = two_log_backups(&lab).await;
    let mut b = lab.connect(Role::Backup).await;
    let header = rows(&mut b, &format!("RESTORE HEADERONLY FROM DISK = N'{two}'"))
        .await
        .unwrap();
    let first_two = header[0].get::<Numeric, _>("FirstLSN").unwrap().value();
    let redo = redo_start_lsn(&mut b).await;

    // FirstLSN > redo point: a gap, 4305 naming the redo LSN.
    let (number, message) = error(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{two}' WITH NORECOVERY"),
    )
    .await;
    assert_eq!(number, 4305);
    assert_eq!(
        message,
        format!(
            "The log in this backup set begins at LSN {first_two}, which is too recent to apply to the database. An earlier log backup that includes LSN {redo} can be restored."
        )
    );
    ok(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"),
    )
    .await;
    let redo = redo_start_lsn(&mut b).await;
    let header = rows(&mut b, &format!("RESTORE HEADERONLY FROM DISK = N'{one}'"))
        .await
        .unwrap();
    let last_one = header[0].get::<Numeric, _>("LastLSN").unwrap().value();
    assert_eq!(
        last_one, redo,
        "after a restore, the redo point is the file's LastLSN"
    );
    assert_eq!(first_two, redo, "the chain is unbroken");

    // LastLSN == redo point: already applied, 4326.
    let (number, message) = error(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"),
    )
    .await;
    assert_eq!(number, 4326);
    assert!(
        message.starts_with(&format!(
            "The log in this backup set terminates at LSN {last_one}, which is too early"
        )),
        "{message}"
    );
    // FirstLSN == redo point: applies.
    ok(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{two}' WITH NORECOVERY"),
    )
    .await;
    let history = rows(&mut b, "SELECT COUNT(*) FROM msdb.dbo.restorehistory WHERE destination_database_name = N'mgc' AND restore_type = 'L'").await.unwrap();
    assert_eq!(history[0].get::<i32, _>(0), Some(2));
}

#[tokio::test]
async fn tiberius_sees_the_specific_error_of_each_failed_backup_or_restore() {
    let lab = start().await;
    let (one, _) = two_log_backups(&lab).await;
    let mut b = lab.connect(Role::Backup).await;
    let missing = lab.path("backup-copy/none.trn");
    let init = lab.path("backups/mgc_init.bak");
    let cases = [
        (
            format!("RESTORE LOG [mgc] FROM DISK = N'{missing}' WITH NORECOVERY"),
            3201,
        ),
        (format!("RESTORE LOG [mgccomp] FROM DISK = N'{one}'"), 3117),
        ("RESTORE DATABASE [mgccomp] WITH RECOVERY".to_owned(), 3153),
        (
            format!("RESTORE DATABASE [mgccomp] FROM DISK = N'{init}' WITH NORECOVERY"),
            3154,
        ),
        (
            format!(
                "BACKUP DATABASE [mgc] TO DISK = N'{}'",
                lab.path("backups/x.bak")
            ),
            927,
        ),
        (
            format!(
                "BACKUP LOG [mgccomp] TO DISK = N'{}'",
                lab.path("nowhere/x.trn")
            ),
            4214,
        ),
    ];
    for (sql, number) in cases {
        assert_eq!(error(&mut b, &sql).await.0, number, "{sql}");
    }
    let message = error(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{missing}'"),
    )
    .await
    .1;
    assert_eq!(
        message,
        format!(
            "Cannot open backup device '{missing}'. Operating system error 2(The system cannot find the file specified.)."
        )
    );
    // The connection stays usable after errors.
    assert_eq!(
        rows(&mut b, "SELECT 1").await.unwrap()[0].get::<i32, _>(0),
        Some(1)
    );
}

#[tokio::test]
async fn a_standby_secondary_is_online_with_is_in_standby_set() {
    let lab = start().await;
    let (one, _) = two_log_backups(&lab).await;
    let mut b = lab.connect(Role::Backup).await;
    let undo = lab.path("backup-copy/mgc_undo.bak");
    ok(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH STANDBY = N'{undo}'"),
    )
    .await;
    let r = rows(&mut b, "SELECT state_desc, is_in_standby, CAST(DATABASEPROPERTYEX(N'mgc', 'IsInStandBy') AS int) FROM sys.databases WHERE name = N'mgc'").await.unwrap();
    assert_eq!(
        (
            r[0].get::<&str, _>(0),
            r[0].get::<bool, _>(1),
            r[0].get::<i32, _>(2)
        ),
        (Some("ONLINE"), Some(true), Some(1))
    );
    let r = rows(&mut b, "SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID(N'mgc') AND file_id = 1").await.unwrap();
    assert_eq!(
        r[0].get::<Numeric, _>(0),
        None,
        "redo_start_lsn is NULL unless RESTORING"
    );
    ok(&mut b, "RESTORE DATABASE [mgc] WITH RECOVERY").await;
    let r = rows(
        &mut b,
        "SELECT state_desc, is_in_standby FROM sys.databases WHERE name = N'mgc'",
    )
    .await
    .unwrap();
    assert_eq!(
        (r[0].get::<&str, _>(0), r[0].get::<bool, _>(1)),
        (Some("ONLINE"), Some(false))
    );
    assert_eq!(
        error(&mut b, &format!("RESTORE LOG [mgc] FROM DISK = N'{one}'"))
            .await
            .0,
        3117
    );
}

#[tokio::test]
async fn kill_of_a_session_that_ended_after_listing_is_6106() {
    let lab = start().await;
    std::fs::write(
        lab.dir.path().join("faults.json"),
        r#"{"rules":[{"kind":"session","instance":"backup","database":"mgccomp","program":"Persistent Chat Server","host":"atl-pc-001","count":1,"ends_after_ms":300}]}"#,
    )
    .unwrap();
    let mut admin = lab.connect(Role::Backup).await;
    let sql = "SELECT session_id, login_name, host_name, program_name FROM sys.dm_exec_sessions WHERE database_id = DB_ID(N'mgccomp') AND session_id <> @@SPID";
    let listed = rows(&mut admin, sql).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].get::<&str, _>("program_name"),
        Some("Persistent Chat Server")
    );
    let spid = listed[0].get::<i16, _>("session_id").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (number, message) = error(&mut admin, &format!("KILL {spid}")).await;
    assert_eq!(
        (number, message),
        (
            6106,
            format!("Process ID {spid} is not an active process ID.")
        )
    );
    assert!(rows(&mut admin, sql).await.unwrap().is_empty());
}

#[tokio::test]
async fn kill_closes_a_real_connection() {
    let lab = start().await;
    let mut admin = lab.connect(Role::Backup).await;
    let mut victim = lab.connect(Role::Backup).await;
    let spid = rows(&mut victim, "SELECT @@SPID").await.unwrap()[0]
        .get::<i16, _>(0)
        .unwrap();
    assert_eq!(error(&mut admin, "KILL 1").await.0, 6107);
    let own = rows(&mut admin, "SELECT @@SPID").await.unwrap()[0]
        .get::<i16, _>(0)
        .unwrap();
    assert_eq!(error(&mut admin, &format!("KILL {own}")).await.0, 6104);
    ok(&mut admin, &format!("KILL {spid}")).await;
    let after = tokio::time::timeout(LIMIT, victim.simple_query("SELECT 1"))
        .await
        .expect("answered or closed");
    assert!(after.is_err(), "the killed connection is closed");
}

#[tokio::test]
async fn mirroring_starts_only_when_the_mirror_is_told_first() {
    let lab = start().await;
    let mut b = lab.connect(Role::Backup).await;
    let mut m = lab.connect(Role::BackupMirror).await;
    let bak = lab.path("backups/mgc_dal.bak");
    // Fail over to the backup instance, then seed its mirror the way Install-CsMirrorDatabase does.
    ok(
        &mut b,
        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'",
    )
    .await;
    ok(&mut b, "RESTORE DATABASE [mgc] WITH RECOVERY").await;
    ok(
        &mut b,
        &format!("BACKUP DATABASE [mgc] TO DISK = N'{bak}' WITH FORMAT"),
    )
    .await;
    ok(&mut b, &format!("BACKUP LOG [mgc] TO DISK = N'{bak}'")).await;
    ok(
        &mut m,
        &format!("RESTORE DATABASE [mgc] FROM DISK = N'{bak}' WITH FILE = 1, NORECOVERY"),
    )
    .await;
    ok(
        &mut m,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{bak}' WITH FILE = 2, NORECOVERY"),
    )
    .await;

    let principal = "TCP://dal-sql-001.litwareinc.com:5022";
    let mirror = "TCP://dal-sql-002.litwareinc.com:5022";
    // No endpoints yet on the DAL instances: unreachable.
    assert_eq!(
        error(
            &mut b,
            &format!("ALTER DATABASE [mgc] SET PARTNER = N'{mirror}'")
        )
        .await
        .0,
        1418
    );
    for c in [&mut b, &mut m] {
        ok(c, "CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = PARTNER)").await;
    }
    assert_eq!(error(&mut m, "CREATE ENDPOINT [Again] STATE = STARTED AS TCP (LISTENER_PORT = 5023) FOR DATABASE_MIRRORING (ROLE = PARTNER)").await.0, 7862);
    // Principal first: the mirror is not waiting for it yet.
    let (number, message) = error(
        &mut b,
        &format!("ALTER DATABASE [mgc] SET PARTNER = N'{mirror}'"),
    )
    .await;
    assert_eq!(number, 1418);
    assert!(
        message.starts_with(&format!(
            "The server network address \"{mirror}\" can not be reached"
        )),
        "{message}"
    );
    assert_eq!(
        error(
            &mut b,
            &format!("ALTER DATABASE [mgc] SET PARTNER = N'{principal}'")
        )
        .await
        .0,
        1452
    );
    ok(
        &mut m,
        &format!("ALTER DATABASE [mgc] SET PARTNER = N'{principal}'"),
    )
    .await;
    ok(
        &mut b,
        &format!("ALTER DATABASE [mgc] SET PARTNER = N'{mirror}'"),
    )
    .await;
    assert_eq!(
        error(
            &mut b,
            &format!("ALTER DATABASE [mgc] SET PARTNER = N'{mirror}'")
        )
        .await
        .0,
        1405
    );

    let sql = "SELECT mirroring_role_desc, mirroring_state_desc, mirroring_partner_name, mirroring_safety_level_desc FROM sys.database_mirroring WHERE database_id = DB_ID(N'mgc')";
    let r = rows(&mut b, sql).await.unwrap();
    assert_eq!(
        (
            r[0].get::<&str, _>(0),
            r[0].get::<&str, _>(1),
            r[0].get::<&str, _>(2),
            r[0].get::<&str, _>(3)
        ),
        (
            Some("PRINCIPAL"),
            Some("SYNCHRONIZED"),
            Some(mirror),
            Some("FULL")
        )
    );
    let r = rows(&mut m, sql).await.unwrap();
    assert_eq!(
        (r[0].get::<&str, _>(0), r[0].get::<&str, _>(2)),
        (Some("MIRROR"), Some(principal))
    );

    // SAFETY is a principal-only option; PARTNER OFF works from either side and leaves the mirror RESTORING.
    assert_eq!(
        error(&mut m, "ALTER DATABASE [mgc] SET PARTNER SAFETY OFF")
            .await
            .0,
        1468
    );
    ok(&mut m, "ALTER DATABASE [mgc] SET PARTNER OFF").await;
    for c in [&mut b, &mut m] {
        let r = rows(c, sql).await.unwrap();
        assert_eq!(r[0].get::<&str, _>(0), None, "all mirroring columns NULL");
    }
    let r = rows(
        &mut m,
        "SELECT state_desc FROM sys.databases WHERE name = N'mgc'",
    )
    .await
    .unwrap();
    assert_eq!(r[0].get::<&str, _>(0), Some("RESTORING"));
    assert_eq!(
        error(&mut b, "ALTER DATABASE [mgc] SET PARTNER OFF")
            .await
            .0,
        1416
    );
}

#[tokio::test]
async fn deleting_the_secondary_database_entry_removes_its_jobs_and_leaves_it_restoring() {
    let lab = start().await;
    let mut b = lab.connect(Role::Backup).await;
    let jobs_sql = "SELECT j.name FROM msdb.dbo.sysjobs AS j JOIN msdb.dbo.log_shipping_secondary AS s ON j.job_id = s.copy_job_id OR j.job_id = s.restore_job_id";
    assert_eq!(rows(&mut b, jobs_sql).await.unwrap().len(), 2);
    let config_sql = "SELECT s.primary_server, s.primary_database, s.backup_source_directory, s.backup_destination_directory, s.last_copied_file, d.last_restored_file, s.copy_job_id, s.restore_job_id FROM msdb.dbo.log_shipping_secondary AS s JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1";
    let before = query_rows(&mut b, config_sql, "mgc").await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(
        before[0].get::<&str, _>("primary_server"),
        Some("ATL-SQL-001")
    );
    assert!(before[0].get::<tiberius::Uuid, _>("copy_job_id").is_some());

    ok(
        &mut b,
        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'",
    )
    .await;
    let after = query_rows(&mut b, config_sql, "mgc").await.unwrap();
    assert!(after.is_empty());
    assert_eq!(
        rows(&mut b, "SELECT COUNT(*) FROM msdb.dbo.sysjobs")
            .await
            .unwrap()[0]
            .get::<i32, _>(0),
        Some(0)
    );
    assert_eq!(
        rows(
            &mut b,
            "SELECT COUNT(*) FROM msdb.dbo.log_shipping_secondary"
        )
        .await
        .unwrap()[0]
            .get::<i32, _>(0),
        Some(0)
    );
    let r = rows(
        &mut b,
        "SELECT state_desc FROM sys.databases WHERE name = N'mgc'",
    )
    .await
    .unwrap();
    assert_eq!(r[0].get::<&str, _>(0), Some("RESTORING"));
    let (number, message) = error(
        &mut b,
        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'",
    )
    .await;
    assert_eq!(
        (number, message.as_str()),
        (
            32014,
            "Database mgc does not exist as log shipping secondary."
        )
    );
}

#[tokio::test]
async fn faults_inject_errors_with_3013_and_count_down_their_times() {
    let lab = start().await;
    let faults = lab.dir.path().join("faults.json");
    std::fs::write(&faults, r#"{"rules":[{"kind":"sql","instance":"backup","pattern":"restore log","times":1,"error":3201},{"kind":"cmdlet","cmdlet":"Get-CsPersistentChatState","crash":true}]}"#).unwrap();
    let (one, _) = two_log_backups(&lab).await;
    let mut b = lab.connect(Role::Backup).await;
    let sql = format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY");
    let (number, message) = error(&mut b, &sql).await;
    assert_eq!(number, 3201);
    assert!(
        message.starts_with(&format!("Cannot open backup device '{one}'.")),
        "{message}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&faults).unwrap()).unwrap();
    assert_eq!(written["rules"][0]["times"], 0);
    assert_eq!(
        written["rules"][1]["cmdlet"], "Get-CsPersistentChatState",
        "other kinds of rules are kept"
    );
    ok(&mut b, &sql).await;
    let t = lab.world.lock().unwrap().transcript(Role::Backup);
    let kinds: Vec<&str> = t.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["login", "batch", "batch"]);
    assert_eq!(t[1].text, sql);
    assert!(!t[0].text.contains(PASSWORD));
}

#[tokio::test]
async fn freetds_tsql_reads_sys_databases_and_sees_error_numbers() {
    let tsql = Path::new("/usr/bin/tsql");
    assert!(
        tsql.exists(),
        "FreeTDS tsql must be installed at /usr/bin/tsql for this test"
    );
    let lab = start().await;
    // Every instance, at every TDS version FreeTDS and current SQL Server versions share.
    for role in [
        Role::Primary,
        Role::PrimaryMirror,
        Role::Backup,
        Role::BackupMirror,
    ] {
        for tdsver in ["7.1", "7.2", "7.3", "7.4"] {
            let port = lab.addrs[&role].port().to_string();
            let input = "SELECT name, state_desc FROM sys.databases\ngo\nSELECT N'\u{1D11E}' AS clef\ngo\nRESTORE LOG [mgc] FROM DISK = N'/nonexistent/x.trn'\ngo\nexit\n";
            let output = tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = std::process::Command::new("/usr/bin/tsql")
                    .args(["-H", "127.0.0.1", "-p", &port, "-U", "sa", "-P", PASSWORD])
                    .env("TDSVER", tdsver)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            });
            let output = tokio::time::timeout(LIMIT, output)
                .await
                .expect("tsql finished")
                .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let context = format!("{role:?} at TDS {tdsver}:\n{all}");
            assert!(
                all.contains("master") && all.contains("ONLINE"),
                "{context}"
            );
            assert!(all.contains('\u{1D11E}'), "the clef round-trips: {context}");
            assert!(all.contains("3201"), "{context}");
        }
    }
}

/// A bound on polling loops: a generous limit that only turns a hang into a failure (nothing here
/// depends on how fast the machine is).
struct Patience(std::time::Instant);

impl Patience {
    fn new() -> Patience {
        Patience(std::time::Instant::now() + Duration::from_secs(60))
    }

    /// Sleeps a little before the next look, or fails naming what never happened.
    async fn wait(&self, what: &str) {
        assert!(
            std::time::Instant::now() < self.0,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gives the next statement matching `pattern` on the backup instance a run time.
fn slow(lab: &Lab, pattern: &str, run_ms: u64) {
    let rule = serde_json::json!({ "rules": [
        { "kind": "sql", "instance": "backup", "pattern": pattern, "run_ms": run_ms, "times": 1 }
    ] });
    std::fs::write(lab.dir.path().join("faults.json"), rule.to_string()).unwrap();
}

/// The running requests other than the asker's: (session_id, command, database name, status).
async fn requests(c: &mut Sql) -> Vec<(i16, String, String, String)> {
    rows(
        c,
        "SELECT r.session_id, r.command, d.name, r.status FROM sys.dm_exec_requests r JOIN sys.databases d ON d.database_id = r.database_id WHERE r.session_id > 50 AND r.session_id <> @@SPID",
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<i16, _>(0).unwrap(),
            r.get::<&str, _>(1).unwrap().to_owned(),
            r.get::<&str, _>(2).unwrap().to_owned(),
            r.get::<&str, _>(3).unwrap().to_owned(),
        )
    })
    .collect()
}

async fn restore_history_count(c: &mut Sql) -> i32 {
    rows(c, "SELECT COUNT(*) FROM msdb.dbo.restorehistory WHERE destination_database_name = N'mgc' AND restore_type = 'L'")
        .await
        .unwrap()[0]
        .get::<i32, _>(0)
        .unwrap()
}

/// The running RESTORE holds mgc for its whole run: a second RESTORE LOG and a recovery from other
/// sessions get 3101, and the restore shows in sys.dm_exec_requests and sp_who2 with its database.
/// KILL then stops it with no effect.
#[tokio::test]
async fn a_restore_in_flight_holds_its_database_and_is_visible_until_killed() {
    let lab = start().await;
    let (one, two) = two_log_backups(&lab).await;
    // Long enough that the run only ends by KILL: nothing here races the clock.
    slow(&lab, "RESTORE LOG", 600_000);
    let mut a = lab.connect(Role::Backup).await;
    let mut b = lab.connect(Role::Backup).await;
    let redo = redo_start_lsn(&mut b).await;
    let spid_a = rows(&mut a, "SELECT @@SPID").await.unwrap()[0]
        .get::<i16, _>(0)
        .unwrap();
    let restore = format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY");
    let running = tokio::spawn(async move {
        let r = a.simple_query(restore).await.map(drop);
        (a, r)
    });
    let patience = Patience::new();
    let seen = loop {
        let found = requests(&mut b).await;
        if let Some(r) = found.into_iter().find(|r| r.1 == "RESTORE LOG") {
            break r;
        }
        patience
            .wait("the restore to show in sys.dm_exec_requests")
            .await;
    };
    assert_eq!(
        seen,
        (
            spid_a,
            "RESTORE LOG".to_owned(),
            "mgc".to_owned(),
            "suspended".to_owned()
        )
    );
    let percent = rows(
        &mut b,
        &format!("SELECT percent_complete FROM sys.dm_exec_requests WHERE session_id = {spid_a}"),
    )
    .await
    .unwrap()[0]
        .get::<f32, _>(0)
        .unwrap();
    assert!((0.0..100.0).contains(&percent), "{percent}");
    let who = rows(&mut b, "EXEC sp_who2").await.unwrap();
    let line = who
        .iter()
        .find(|r| {
            r.get::<&str, _>(0)
                .is_some_and(|s| s.trim() == spid_a.to_string())
        })
        .expect("sp_who2 lists the restoring session");
    assert_eq!(
        (
            line.get::<&str, _>("DBName"),
            line.get::<&str, _>("Command")
        ),
        (Some("mgc"), Some("RESTORE LOG"))
    );

    let (number, _) = error(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{two}' WITH NORECOVERY"),
    )
    .await;
    assert_eq!(number, 3101);
    assert_eq!(
        error(&mut b, "RESTORE DATABASE [mgc] WITH RECOVERY").await,
        (
            3101,
            "Exclusive access could not be obtained because the database is in use.".to_owned()
        )
    );

    ok(&mut b, &format!("KILL {spid_a}")).await;
    let (_, result) = running.await.unwrap();
    assert!(result.is_err(), "the killed restore's connection is closed");
    assert!(requests(&mut b).await.is_empty());
    assert_eq!(
        redo_start_lsn(&mut b).await,
        redo,
        "a killed restore applies nothing"
    );
    assert_eq!(restore_history_count(&mut b).await, 0);
    ok(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY"),
    )
    .await;
}

/// A client that disconnects while its RESTORE runs does not stop it: the server finishes the work
/// and records it, and the session goes away only then.
#[tokio::test]
async fn a_restore_whose_client_disconnected_completes_on_the_server() {
    let lab = start().await;
    let (one, _) = two_log_backups(&lab).await;
    slow(&lab, "RESTORE LOG", 1_500);
    let mut a = lab.connect(Role::Backup).await;
    let mut b = lab.connect(Role::Backup).await;
    let restore = format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY");
    let running = tokio::spawn(async move { a.simple_query(restore).await.map(drop) });
    let patience = Patience::new();
    while !requests(&mut b).await.iter().any(|r| r.1 == "RESTORE LOG") {
        patience.wait("the restore to start").await;
    }
    // The client gives up: its task (and with it the TCP connection) is gone.
    running.abort();
    let _ = running.await;
    let patience = Patience::new();
    while restore_history_count(&mut b).await != 1 {
        patience
            .wait("the restore to finish without its client")
            .await;
    }
    let header = rows(&mut b, &format!("RESTORE HEADERONLY FROM DISK = N'{one}'"))
        .await
        .unwrap();
    let last = header[0].get::<Numeric, _>("LastLSN").unwrap().value();
    assert_eq!(redo_start_lsn(&mut b).await, last);
    let others =
        "SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE session_id > 50 AND session_id <> @@SPID";
    let patience = Patience::new();
    while rows(&mut b, others).await.unwrap()[0].get::<i32, _>(0) != Some(0) {
        patience.wait("the orphaned session to end").await;
    }
}

/// An Attention cancels a running RESTORE LOG (nothing applied, the connection stays usable), but
/// a recovery that has started runs to its end.
#[tokio::test]
async fn an_attention_cancels_a_log_restore_but_not_a_recovery() {
    let lab = start().await;
    let (one, _) = two_log_backups(&lab).await;
    slow(&lab, "RESTORE LOG", 600_000);
    let mut a = lab.connect(Role::Backup).await;
    let mut b = lab.connect(Role::Backup).await;
    let redo = redo_start_lsn(&mut b).await;
    let restore = format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY");
    // The client's own timeout: the request is dropped and then cancelled with an Attention.
    let timed_out = tokio::time::timeout(Duration::from_millis(300), a.simple_query(restore))
        .await
        .is_err();
    assert!(timed_out, "a 10-minute restore finished");
    a.cancel_query()
        .await
        .expect("the Attention is acknowledged");
    let patience = Patience::new();
    while !requests(&mut b).await.is_empty() {
        patience.wait("the cancelled restore to go away").await;
    }
    assert_eq!(
        redo_start_lsn(&mut b).await,
        redo,
        "a cancelled restore applies nothing"
    );
    ok(&mut a, "SELECT 1").await;

    slow(&lab, "WITH RECOVERY", 1_000);
    let timed_out = tokio::time::timeout(
        Duration::from_millis(100),
        a.simple_query("RESTORE DATABASE [mgc] WITH RECOVERY"),
    )
    .await
    .is_err();
    if timed_out {
        a.cancel_query()
            .await
            .expect("the Attention is acknowledged");
    }
    let state = "SELECT state_desc FROM sys.databases WHERE name = N'mgc'";
    let patience = Patience::new();
    while rows(&mut b, state).await.unwrap()[0].get::<&str, _>(0) != Some("ONLINE") {
        patience
            .wait("the recovery to finish despite the Attention")
            .await;
    }
}

/// SQL Server's batch rules: a compile error (syntax, an undeclared variable) runs nothing; 208
/// ends the batch where it happens; most errors (a missing procedure, a failed BACKUP) end only
/// their statement.
#[tokio::test]
async fn errors_end_a_statement_a_batch_or_prevent_it_as_sql_server_does() {
    let lab = start().await;
    let mut p = lab.connect(Role::Primary).await;
    let file = |n: &str| lab.path(&format!("backups/{n}.bak"));
    let backup = |n: &str| format!("BACKUP DATABASE [mgccomp] TO DISK = N'{}'", file(n));
    let exists = |n: &str| std::path::Path::new(&file(n)).exists();

    // 137 is found when the batch is compiled: the backup before it never runs.
    let (number, message) = error(&mut p, &format!("{}; SELECT @nosuch", backup("a"))).await;
    assert_eq!(
        (number, message.as_str()),
        (137, "Must declare the scalar variable \"@nosuch\".")
    );
    assert!(!exists("a"), "nothing in a batch with a compile error runs");
    assert_eq!(
        error(&mut p, &format!("{}; SELEC 1", backup("a"))).await.0,
        102
    );
    assert!(!exists("a"));

    // 208 ends the batch where it happens: the statement before it ran, the one after it did not.
    let (number, _) = error(
        &mut p,
        &format!(
            "{}; SELECT * FROM msdb.dbo.nosuch; {}",
            backup("b"),
            backup("c")
        ),
    )
    .await;
    assert_eq!(number, 208);
    assert!(
        exists("b") && !exists("c"),
        "208 aborts the rest of the batch"
    );

    // A missing procedure ends only its statement.
    let (number, _) = error(&mut p, &format!("EXEC sp_nosuch; {}", backup("d"))).await;
    assert_eq!(number, 2812);
    assert!(exists("d"), "2812 is a statement-level error");

    // Under XACT_ABORT every error ends the batch (and the transaction).
    let (number, _) = error(
        &mut p,
        &format!("SET XACT_ABORT ON; EXEC sp_nosuch; {}", backup("e")),
    )
    .await;
    assert_eq!(number, 2812);
    assert!(!exists("e"));
    ok(&mut p, "SET XACT_ABORT OFF").await;

    // @@ERROR after a failed statement, @@TRANCOUNT inside a transaction.
    let r = rows(&mut p, "EXEC sp_nosuch; SELECT @@ERROR").await;
    assert!(r.is_err(), "the first error is what tiberius reports");
    let r = rows(&mut p, "BEGIN TRAN; SELECT @@TRANCOUNT")
        .await
        .unwrap();
    assert_eq!(r[0].get::<i32, _>(0), Some(1));
    let r = rows(&mut p, "COMMIT; SELECT @@TRANCOUNT").await.unwrap();
    assert_eq!(r[0].get::<i32, _>(0), Some(0));
}

#[tokio::test]
async fn restore_takes_one_of_recovery_norecovery_and_standby_and_master_is_simple() {
    let lab = start().await;
    let (one, _) = two_log_backups(&lab).await;
    let mut b = lab.connect(Role::Backup).await;
    let undo = lab.path("backup-copy/undo.tuf");
    let (number, message) = error(
        &mut b,
        &format!("RESTORE LOG [mgc] FROM DISK = N'{one}' WITH NORECOVERY, STANDBY = N'{undo}'"),
    )
    .await;
    assert_eq!(
        (number, message.as_str()),
        (
            3031,
            "Option 'STANDBY' conflicts with option(s) 'NORECOVERY'. Remove the conflicting option and reissue the statement."
        )
    );
    let r = rows(
        &mut b,
        "SELECT name, recovery_model_desc FROM sys.databases WHERE database_id <= 4 ORDER BY database_id",
    )
    .await
    .unwrap();
    let models: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r.get::<&str, _>(0).unwrap(), r.get::<&str, _>(1).unwrap()))
        .collect();
    assert_eq!(
        models,
        [
            ("master", "SIMPLE"),
            ("tempdb", "SIMPLE"),
            ("model", "FULL"),
            ("msdb", "SIMPLE")
        ]
    );
}

#[tokio::test]
async fn characters_outside_the_bmp_round_trip_in_literals_and_parameters() {
    let lab = start().await;
    let mut p = lab.connect(Role::Primary).await;
    let clef = "\u{1D11E}";
    let r = rows(
        &mut p,
        &format!("SELECT N'{clef}' AS c, LEN(N'{clef}') AS n"),
    )
    .await
    .unwrap();
    assert_eq!(r[0].get::<&str, _>("c"), Some(clef));
    // Not a _SC collation: the surrogate pair counts two.
    assert_eq!(r[0].get::<i32, _>("n"), Some(2));
    let r = query_rows(&mut p, "SELECT @P1 AS c", &format!("a{clef}b"))
        .await
        .unwrap();
    assert_eq!(r[0].get::<&str, _>("c"), Some(format!("a{clef}b").as_str()));
}

/// A raw TDS client for what tiberius does not show (INFO tokens, every ERROR of a refused login).
mod raw {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn packet(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![ty, 1];
        p.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// One server message (packets until EOM).
    async fn message(s: &mut TcpStream) -> Vec<u8> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 8];
            s.read_exact(&mut header).await.unwrap();
            let len = u16::from_be_bytes([header[2], header[3]]) as usize;
            let mut body = vec![0u8; len - 8];
            s.read_exact(&mut body).await.unwrap();
            payload.extend(body);
            if header[1] & 1 != 0 {
                return payload;
            }
        }
    }

    /// (token, number, class) of each ERROR (0xAA) and INFO (0xAB) in a response made of
    /// length-prefixed tokens and DONEs (what logins and `USE` answer).
    pub fn messages(tokens: &[u8]) -> Vec<(u8, u32, u8)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match tokens[i] {
                0xFD..=0xFF => i += 13,
                t => {
                    let len = u16::from_le_bytes([tokens[i + 1], tokens[i + 2]]) as usize;
                    let body = &tokens[i + 3..i + 3 + len];
                    if t == 0xAA || t == 0xAB {
                        let number = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                        out.push((t, number, body[5]));
                    }
                    i += 3 + len;
                }
            }
        }
        out
    }

    /// PRELOGIN and LOGIN7 (TDS 7.4) for `sa` into `database`; the login answer's tokens.
    pub async fn login(addr: SocketAddr, password: &str, database: &str) -> (TcpStream, Vec<u8>) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&packet(0x12, &[0xFF])).await.unwrap();
        message(&mut s).await;
        let fields = ["host", "sa", password, "raw", "", "", "raw", "", database];
        let mut head = Vec::new();
        let mut data = Vec::new();
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&0x7400_0004u32.to_le_bytes());
        head.extend_from_slice(&4096u32.to_le_bytes());
        head.extend_from_slice(&[0; 24]);
        for (i, f) in fields.iter().enumerate() {
            head.extend_from_slice(&((94 + data.len()) as u16).to_le_bytes());
            head.extend_from_slice(&(f.encode_utf16().count() as u16).to_le_bytes());
            for b in utf16(f) {
                data.push(if i == 2 { b.rotate_left(4) ^ 0xA5 } else { b });
            }
        }
        head.extend_from_slice(&[0; 22]);
        head.extend(data);
        s.write_all(&packet(0x10, &head)).await.unwrap();
        let tokens = message(&mut s).await;
        (s, tokens)
    }

    /// A SQLBatch with ALL_HEADERS; the response's tokens.
    pub async fn batch(s: &mut TcpStream, sql: &str) -> Vec<u8> {
        let mut payload = vec![
            22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        ];
        payload.extend(utf16(sql));
        s.write_all(&packet(0x01, &payload)).await.unwrap();
        message(s).await
    }
}

#[tokio::test]
async fn use_answers_5701_with_class_0_and_a_login_into_a_restoring_database_gets_4060_then_18456()
{
    let lab = start().await;
    let (mut s, tokens) = raw::login(lab.addrs[&Role::Primary], PASSWORD, "").await;
    assert!(tokens.contains(&0xAD), "logged in");
    let answer = tokio::time::timeout(LIMIT, raw::batch(&mut s, "USE msdb"))
        .await
        .unwrap();
    assert_eq!(raw::messages(&answer), [(0xAB, 5701, 0)]);

    let (_, tokens) = raw::login(lab.addrs[&Role::Backup], PASSWORD, "mgc").await;
    assert_eq!(
        raw::messages(&tokens),
        [(0xAA, 4060, 11), (0xAA, 18456, 14)]
    );
}
