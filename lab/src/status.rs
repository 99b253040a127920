//! `Status`: what `pcfail lab status` shows, as data (`--format json`) and as an operator's report.
//!
//! It gathers three sources without interpreting them: lab.json (who listens where), the engine's
//! `World::status()` (databases, log shipping, jobs, history; engine-owned shape, carried as JSON), and
//! the file system (backup files in the share and the copy folder, the shell's cms.json). The text
//! rendering knows a few engine keys by name to stay compact, and shows unknown ones generically.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{LabTime, Role, civil};
use crate::manifest::Manifest;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub dir: PathBuf,
    /// Whether a lab process is serving this directory right now.
    pub running: bool,
    pub pid: Option<u32>,
    pub control: Option<SocketAddr>,
    pub clock_speed: f64,
    /// The lab clock (ms since the Unix epoch, UTC) when the status was taken, or when it was last saved.
    pub lab_time_ms: Option<i64>,
    /// The same instant, readable: `2026-11-22T05:10:00Z`.
    pub lab_time: Option<String>,
    pub pool: String,
    /// `Normal` or `FailedOver`, from cms.json (the simulated shell's store), else lab.json's initial value.
    pub pool_state: String,
    pub active_servers: Vec<String>,
    pub login_user: String,
    pub password_env: String,
    pub instances: Vec<InstanceStatus>,
    /// The engine's lab-wide facts: everything in `World::status()` besides the per-instance entries
    /// (e.g. which instance holds the active `mgc`, chat messages sent).
    pub world: serde_json::Value,
    /// Log backups in the log-shipping share, oldest name first.
    pub share: Vec<BackupFile>,
    /// Files the copy job has copied to the backup instance's folder, oldest name first.
    pub copy_folder: Vec<BackupFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub role: Role,
    pub name: String,
    pub fqdn: String,
    pub address: SocketAddr,
    pub data_center: String,
    pub login_user: String,
    pub password_env: String,
    /// Answering connections. Always false when the lab is not running.
    pub up: bool,
    /// The engine's view of this instance (`World::status()`), as the engine shapes it.
    pub sql: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub name: String,
    pub size: u64,
    pub kind: BackupFileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupFileKind {
    /// A finished log backup.
    Trn,
    /// A log backup still being written (the backup agent renames it to .trn when done).
    Wrk,
    /// Anything else (full backups, stray files).
    Other,
}

/// The initial pool state when the shell has not written cms.json yet.
const INITIAL_POOL_STATE: &str = "Normal";

impl Status {
    /// Builds a status. `engine` is `World::status()` (or `Null` when no state exists yet); `up` says which
    /// instances answer.
    pub(crate) fn gather(
        dir: &Path,
        manifest: &Manifest,
        running: bool,
        now: Option<LabTime>,
        engine: &serde_json::Value,
        up: &dyn Fn(Role) -> bool,
    ) -> Status {
        let (pool_state, active_servers) = read_cms(dir, manifest);
        let instances = manifest
            .instances
            .iter()
            .map(|i| InstanceStatus {
                role: i.role,
                name: i.name.clone(),
                fqdn: i.fqdn.clone(),
                address: i.address,
                data_center: i.data_center.clone(),
                login_user: manifest.login.user.clone(),
                password_env: manifest.login.password_env.clone(),
                up: running && up(i.role),
                sql: engine_instance(engine, i.role),
            })
            .collect();
        let lab_time_ms = now.map(|t| t.0).or(manifest.lab_time_ms);
        let world = match engine {
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .filter(|(k, _)| *k != "instances")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => serde_json::Value::Null,
        };
        Status {
            dir: dir.to_path_buf(),
            running,
            pid: manifest.pid.filter(|_| running),
            control: manifest.control.filter(|_| running),
            clock_speed: manifest.clock_speed,
            lab_time_ms,
            lab_time: lab_time_ms.map(format_utc),
            pool: manifest.pool.clone(),
            pool_state,
            active_servers,
            login_user: manifest.login.user.clone(),
            password_env: manifest.login.password_env.clone(),
            instances,
            world,
            share: list_backup_files(&manifest.share),
            copy_folder: list_backup_files(&manifest.copy_folder),
        }
    }

    /// A compact report for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let state = match (self.running, self.pid) {
            (true, Some(pid)) => format!("running (pid {pid})"),
            (true, None) => "running".to_owned(),
            (false, _) => "not running".to_owned(),
        };
        let _ = writeln!(out, "lab `{}`: {state}", self.dir.display());
        if let Some(time) = &self.lab_time {
            let _ = writeln!(out, "lab time  {time} (x{} real time)", self.clock_speed);
        }
        let _ = writeln!(out, "pool      {} ({})", self.pool, self.pool_state);
        let active = if self.active_servers.is_empty() {
            "(none)".to_owned()
        } else {
            self.active_servers.join(", ")
        };
        let _ = writeln!(out, "active    {active}");
        let _ = writeln!(
            out,
            "login     {} (password in ${})",
            self.login_user, self.password_env
        );
        if let Some(world) = self.world.as_object() {
            for (key, value) in world.iter().filter(|(_, v)| !is_empty_json(v)) {
                let _ = writeln!(out, "{}: {}", key.replace('_', " "), compact(value));
            }
        }
        for i in &self.instances {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<15} {:<12} {:<16} {:<4} {}",
                i.role.as_str(),
                i.name,
                i.address,
                if i.up {
                    "up"
                } else if i.sql.get("lost").and_then(|l| l.as_bool()) == Some(true) {
                    "lost"
                } else {
                    "down"
                },
                i.fqdn
            );
            render_engine_instance(&mut out, &i.sql);
        }
        let _ = writeln!(out);
        render_files(&mut out, "share", &self.share);
        render_files(&mut out, "copy folder", &self.copy_folder);
        out
    }
}

/// The engine's entry for one instance. The engine may key instances by role name at the top level,
/// under `instances` as an object, or list them with a `role` field; all three are accepted so the
/// runtime does not break when the engine's layout settles.
fn engine_instance(engine: &serde_json::Value, role: Role) -> serde_json::Value {
    let name = role.as_str();
    let candidates = [
        engine.get("instances").and_then(|i| i.get(name)),
        engine.get(name),
    ];
    if let Some(found) = candidates.into_iter().flatten().next() {
        return found.clone();
    }
    engine
        .get("instances")
        .and_then(|i| i.as_array())
        .and_then(|list| {
            list.iter()
                .find(|e| e.get("role").and_then(|r| r.as_str()) == Some(name))
        })
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Reads the shell's cms.json generically (`pool_state`, `active_servers`); lab.json's initial values
/// stand in when it is absent or unreadable.
fn read_cms(dir: &Path, manifest: &Manifest) -> (String, Vec<String>) {
    let cms: Option<serde_json::Value> = std::fs::read(dir.join("cms.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let pool_state = cms
        .as_ref()
        .and_then(|c| c.get("pool_state"))
        .and_then(|s| s.as_str())
        .unwrap_or(INITIAL_POOL_STATE)
        .to_owned();
    let active_servers = match cms.as_ref().and_then(|c| c.get("active_servers")) {
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        // `Set-CsPersistentChatActiveServer -ActiveServers $Null` may be stored as null: no servers.
        Some(serde_json::Value::Null) => Vec::new(),
        _ => manifest.active_servers.clone(),
    };
    (pool_state, active_servers)
}

/// The regular files of `folder` (missing folder: none), sorted by name, which for `<db>_<UTC stamp>.trn`
/// is also their age order.
pub(crate) fn list_backup_files(folder: &Path) -> Vec<BackupFile> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<BackupFile> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let name = e.file_name().into_string().ok()?;
            // Our own atomic-write temporaries start with a dot; they are not backups.
            if name.starts_with('.') {
                return None;
            }
            let kind = match Path::new(&name).extension().and_then(|x| x.to_str()) {
                Some(x) if x.eq_ignore_ascii_case("trn") => BackupFileKind::Trn,
                Some(x) if x.eq_ignore_ascii_case("wrk") => BackupFileKind::Wrk,
                _ => BackupFileKind::Other,
            };
            Some(BackupFile {
                name,
                size: meta.len(),
                kind,
            })
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// How many of the newest files a text report lists per folder.
const FILES_SHOWN: usize = 3;

fn render_files(out: &mut String, label: &str, files: &[BackupFile]) {
    let count = |kind| files.iter().filter(|f| f.kind == kind).count();
    let (trn, wrk, other) = (
        count(BackupFileKind::Trn),
        count(BackupFileKind::Wrk),
        count(BackupFileKind::Other),
    );
    let mut summary = format!("{trn} .trn");
    if wrk > 0 {
        let _ = write!(summary, ", {wrk} .wrk being written");
    }
    if other > 0 {
        let _ = write!(summary, ", {other} other");
    }
    let _ = writeln!(out, "{label:<11} {summary}");
    for f in files.iter().rev().take(FILES_SHOWN) {
        let _ = writeln!(out, "  {} ({} bytes)", f.name, f.size);
    }
}

/// Engine keys the per-instance report renders specially; any other key is shown generically.
const KNOWN_INSTANCE_KEYS: [&str; 10] = [
    "name",
    "up",
    "role",
    "databases",
    "endpoint",
    "jobs",
    "log_shipping",
    "backup_history",
    "restore_history",
    "sessions",
];
/// The system databases every instance has; the report lists user databases only.
const SYSTEM_DATABASES: [&str; 4] = ["master", "tempdb", "model", "msdb"];

fn render_engine_instance(out: &mut String, sql: &serde_json::Value) {
    let Some(obj) = sql.as_object() else {
        return;
    };
    let list = |key: &str| {
        obj.get(key)
            .and_then(|v| v.as_array())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    let user_dbs: Vec<&serde_json::Value> = list("databases")
        .iter()
        .filter(|db| !SYSTEM_DATABASES.contains(&text(db, "name").as_str()))
        .collect();
    if user_dbs.is_empty() {
        let _ = writeln!(out, "  (no user databases)");
    }
    for db in user_dbs {
        let _ = writeln!(out, "  {}", database_line(db));
    }
    if let Some(ep) = obj.get("endpoint").filter(|e| e.is_object()) {
        let _ = writeln!(
            out,
            "  endpoint {} {} ({}, port {})",
            text(ep, "name"),
            text(ep, "state"),
            text(ep, "role"),
            text(ep, "port")
        );
    }
    for job in list("jobs") {
        let enabled = if job.get("enabled") == Some(&serde_json::Value::Bool(false)) {
            "disabled"
        } else {
            "enabled"
        };
        let mut line = format!("  job      {}: {enabled}", text(job, "name"));
        if !text(job, "last_run").is_empty() {
            let _ = write!(
                line,
                ", last run {} {}",
                text(job, "last_run"),
                text(job, "last_outcome")
            );
        }
        if !text(job, "next_run").is_empty() {
            let _ = write!(line, ", next {}", text(job, "next_run"));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let Some(ls) = obj.get("log_shipping") {
        for p in ls
            .get("primary")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let secondaries = p.get("secondaries").map(compact).unwrap_or_default();
            let _ = writeln!(
                out,
                "  log shipping primary {} -> {secondaries}; last backup {}",
                text(p, "primary_database"),
                file_name(&text(p, "last_backup_file"))
            );
        }
        for sec in ls
            .get("secondary")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "  log shipping secondary of {}.{}; last copied {}",
                text(sec, "primary_server"),
                text(sec, "primary_database"),
                file_name(&text(sec, "last_copied_file"))
            );
            for db in sec
                .get("databases")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let _ = writeln!(
                    out,
                    "    {} {}, last restored {}",
                    text(db, "secondary_database"),
                    text(db, "restore_mode"),
                    file_name(&text(db, "last_restored_file"))
                );
            }
        }
    }
    // Histories are newest first; the count and the latest entry are what an operator scans for.
    for (key, label, file_key) in [
        ("backup_history", "backups ", "device"),
        ("restore_history", "restores", ""),
    ] {
        let history = list(key);
        if let Some(latest) = history.first() {
            let file = match file_name(&text(latest, file_key)) {
                "" => String::new(),
                name => format!(" {name}"),
            };
            let _ = writeln!(
                out,
                "  {label} {}, latest {} {} {}..{}{file}",
                history.len(),
                text(latest, "type"),
                text(latest, "database"),
                text(latest, "first_lsn"),
                text(latest, "last_lsn")
            );
        }
    }
    if let Some(n) = obj
        .get("sessions")
        .and_then(|v| v.as_u64())
        .filter(|n| *n > 0)
    {
        let _ = writeln!(out, "  sessions {n}");
    }
    for (key, value) in obj {
        if KNOWN_INSTANCE_KEYS.contains(&key.as_str()) || is_empty_json(value) {
            continue;
        }
        let _ = writeln!(out, "  {key}: {}", compact(value));
    }
}

/// Keys a database line renders specially; others follow as `key=value`.
const KNOWN_DATABASE_KEYS: [&str; 10] = [
    "name",
    "state_desc",
    "is_in_standby",
    "recovery_model",
    "chat_records",
    "last_lsn",
    "redo_start_lsn",
    "family_guid",
    "mirroring",
    "database_id",
];

fn database_line(db: &serde_json::Value) -> String {
    let mut line = format!("{:<8} {:<10}", text(db, "name"), text(db, "state_desc"));
    if db.get("is_in_standby") == Some(&serde_json::Value::Bool(true)) {
        line.push_str(" STANDBY");
    }
    let mut push = |label: &str, key: &str| {
        let value = text(db, key);
        if !value.is_empty() {
            let _ = write!(line, " {label}{value}");
        }
    };
    push("", "recovery_model");
    push("chat ", "chat_records");
    push("last LSN ", "last_lsn");
    push("redo LSN ", "redo_start_lsn");
    if let Some(family) = db.get("family_guid").and_then(|v| v.as_str()) {
        // Eight hex digits are enough to see whether two copies descend from the same database.
        let _ = write!(line, " family {}", &family[..family.len().min(8)]);
    }
    if let Some(m) = db.get("mirroring").filter(|m| m.is_object()) {
        let _ = write!(
            line,
            " mirroring {} {} with {}",
            text(m, "role"),
            text(m, "state"),
            text(m, "partner")
        );
    }
    if let Some(obj) = db.as_object() {
        for (key, value) in obj {
            if !KNOWN_DATABASE_KEYS.contains(&key.as_str()) && !is_empty_json(value) {
                let _ = write!(line, " {key}={}", compact(value));
            }
        }
    }
    line.trim_end().to_owned()
}

/// A scalar field as text; missing and null are empty.
fn text(value: &serde_json::Value, key: &str) -> String {
    match value.get(key) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(v) => scalar(v),
    }
}

/// The last component of a path, whichever separator the engine used.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn is_empty_json(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(list) => list.iter().map(compact).collect::<Vec<_>>().join("; "),
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", compact(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => scalar(other),
    }
}

/// Formats lab time as ISO 8601 UTC, e.g. `2026-11-22T05:10:00Z`.
pub fn format_utc(ms: i64) -> String {
    // The engine's calendar, so the report and the backup stamps can never disagree about a date.
    let (y, m, d, hh, mi, ss) = civil(LabTime(ms));
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_formatting_matches_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (1_795_330_245_999, "2026-11-22T06:50:45Z"),
            (-1000, "1969-12-31T23:59:59Z"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_utc(ms), expected, "{ms}");
        }
    }

    #[test]
    fn engine_instances_are_found_in_each_accepted_layout() {
        let want = json!({"databases": []});
        let layouts = [
            json!({"instances": {"backup": want.clone()}}),
            json!({"backup": want.clone()}),
            json!({"instances": [{"role": "primary"}, {"role": "backup", "databases": []}]}),
        ];
        for layout in layouts {
            let found = engine_instance(&layout, Role::Backup);
            assert_eq!(found["databases"], json!([]), "{layout}");
        }
        assert_eq!(
            engine_instance(&json!({}), Role::Backup),
            serde_json::Value::Null
        );
    }

    #[test]
    fn backup_files_are_classified_and_sorted_and_temporaries_hidden() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("mgc_20261122050500.trn", 3),
            ("mgc_20261122050000.trn", 2),
            ("mgc_20261122051000.wrk", 1),
            (".x.tmp", 1),
            ("mgc_full.bak", 4),
        ] {
            std::fs::write(dir.path().join(name), vec![0u8; bytes]).unwrap();
        }
        let files = list_backup_files(dir.path());
        let got: Vec<(&str, u64, BackupFileKind)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.size, f.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("mgc_20261122050000.trn", 2, BackupFileKind::Trn),
                ("mgc_20261122050500.trn", 3, BackupFileKind::Trn),
                ("mgc_20261122051000.wrk", 1, BackupFileKind::Wrk),
                ("mgc_full.bak", 4, BackupFileKind::Other),
            ]
        );
        assert!(list_backup_files(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn database_lines_show_known_keys_compactly() {
        let cases = [
            (
                json!({"name": "mgc", "state_desc": "RESTORING", "is_in_standby": false, "recovery_model": "FULL",
                       "chat_records": 12, "last_lsn": "39000000012200001", "redo_start_lsn": "39000000012200001",
                       "family_guid": "289D743F-1454-48DC-B834-CCD651DCF6EE", "mirroring": null, "database_id": 5}),
                "mgc      RESTORING  FULL chat 12 last LSN 39000000012200001 redo LSN 39000000012200001 family 289D743F",
            ),
            (
                json!({"name": "mgccomp", "state_desc": "ONLINE", "is_in_standby": true, "extra": 1,
                       "mirroring": {"role": "PRINCIPAL", "state": "SYNCHRONIZED", "partner": "TCP://b:5022"}}),
                "mgccomp  ONLINE     STANDBY mirroring PRINCIPAL SYNCHRONIZED with TCP://b:5022 extra=1",
            ),
        ];
        for (db, expected) in cases {
            assert_eq!(database_line(&db), expected);
        }
    }

    #[test]
    fn an_instance_report_lists_user_databases_jobs_shipping_and_history() {
        let sql = json!({
            "name": "DAL-SQL-001", "up": true, "sessions": 2, "endpoint": null,
            "databases": [
                {"name": "master", "state_desc": "ONLINE"},
                {"name": "mgc", "state_desc": "RESTORING", "recovery_model": "FULL"},
            ],
            "jobs": [{"name": "LSCopy_ATL-SQL-001_mgc", "enabled": true, "last_run": "2026-11-22 05:23:04.300",
                      "last_outcome": "succeeded", "next_run": "2026-11-22 05:24:00.000"}],
            "log_shipping": {"primary": [], "secondary": [{
                "primary_server": "ATL-SQL-001", "primary_database": "mgc",
                "last_copied_file": "/lab/backup-copy/mgc_20261122052304.trn",
                "databases": [{"secondary_database": "mgc", "restore_mode": "NORECOVERY",
                               "last_restored_file": "/lab/backup-copy/mgc_20261122052206.trn"}]}]},
            "restore_history": [{"type": "L", "database": "mgc", "first_lsn": "1", "last_lsn": "2"}, {"type": "D"}],
            "future_key": "shown",
        });
        let mut out = String::new();
        render_engine_instance(&mut out, &sql);
        assert_eq!(
            out,
            "  mgc      RESTORING  FULL\n\
             \x20 job      LSCopy_ATL-SQL-001_mgc: enabled, last run 2026-11-22 05:23:04.300 succeeded, next 2026-11-22 05:24:00.000\n\
             \x20 log shipping secondary of ATL-SQL-001.mgc; last copied mgc_20261122052304.trn\n\
             \x20   mgc NORECOVERY, last restored mgc_20261122052206.trn\n\
             \x20 restores 2, latest L mgc 1..2\n\
             \x20 sessions 2\n\
             \x20 future_key: shown\n"
        );
    }
}
