//! Fault injection from `<lab dir>/faults.json` (docs/lab.md): rules of kind "sql" act on statements
//! sent to an instance (error, delay, run time, dropped connection, instance down), rules of kind
//! "session" stage virtual sessions (a Persistent Chat server, an admin's SSMS window) so tests can set
//! up the KILL race, rules of kind "job" make a log-shipping job's run take time (`agent.rs`), and a
//! rule of kind "share" makes the log-shipping share unreachable while it exists.
//!
//! The file is re-read when its mtime changes; a rule's `times` is decremented and written back, so the
//! count survives restarts and is visible to whoever wrote the rule. Rules of other kinds (the shell's
//! "cmdlet" rules) are left untouched.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::world::{SessionInfo, World};
use super::{LabTime, Role};

#[derive(Debug, Default)]
pub(crate) struct Faults {
    mtime: Option<SystemTime>,
    doc: Option<Json>,
    /// Session rules already staged (by their JSON text), so a re-read does not stage them twice.
    staged: HashSet<String>,
}

/// What the matching rule asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SqlFault {
    pub error: Option<u32>,
    pub delay: Option<Duration>,
    pub drop_connection: bool,
    pub down: bool,
    /// `run_ms`: how long the statement works on the server once it runs (unlike `delay_ms`,
    /// which passes before it reaches the server).
    pub run: Option<Duration>,
}

fn path(world: &World) -> PathBuf {
    world.config.lab_dir.join("faults.json")
}

/// Re-reads faults.json if it changed and stages new session rules.
pub(crate) fn refresh(world: &mut World, now: LabTime) {
    let p = path(world);
    let mtime = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
    if mtime.is_none() {
        world.rt.faults.doc = None;
        world.rt.faults.mtime = None;
        world.set_share_fault(false);
        return;
    }
    if mtime == world.rt.faults.mtime && world.rt.faults.doc.is_some() {
        return;
    }
    world.rt.faults.mtime = mtime;
    // A half-written or malformed file counts as "no rules" until it is fixed.
    world.rt.faults.doc = std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let rules: Vec<Json> = rules(world).to_vec();
    let share_unreachable = rules.iter().any(|r| {
        r.get("kind").and_then(Json::as_str) == Some("share")
            && r.get("unreachable").and_then(Json::as_bool) == Some(true)
    });
    world.set_share_fault(share_unreachable);
    for rule in rules {
        if rule.get("kind").and_then(Json::as_str) != Some("session") {
            continue;
        }
        let key = rule.to_string();
        if !world.rt.faults.staged.insert(key) {
            continue;
        }
        stage_sessions(world, &rule, now);
    }
}

fn rules(world: &World) -> &[Json] {
    world
        .rt
        .faults
        .doc
        .as_ref()
        .and_then(|d| d.get("rules"))
        .and_then(Json::as_array)
        .map_or(&[], Vec::as_slice)
}

fn stage_sessions(world: &mut World, rule: &Json, now: LabTime) {
    let text = |k: &str, d: &str| rule.get(k).and_then(Json::as_str).unwrap_or(d).to_owned();
    let Some(role) = role_named(&text("instance", "")) else {
        return;
    };
    let count = rule.get("count").and_then(Json::as_u64).unwrap_or(1);
    let end = rule
        .get("ends_after_ms")
        .and_then(Json::as_u64)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    for _ in 0..count {
        let info = SessionInfo {
            spid: 0,
            login: text("login", "LITWAREINC\\svc-pchat"),
            host: text("host", "atl-pc-001"),
            program: text("program", "Persistent Chat Server"),
            database: text("database", "mgc"),
            login_time: now,
            last_batch: now,
            token: CancellationToken::new(),
            virtual_end: Some(end),
            serial: 0,
            busy: false,
            orphaned: false,
            request: None,
        };
        world.open_session(role, info);
    }
}

fn role_named(name: &str) -> Option<Role> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(name))
}

/// The first "sql" rule for `role` whose pattern matches `text`; consumes one of its `times`.
pub(crate) fn match_sql(
    world: &mut World,
    role: Role,
    text: &str,
    now: LabTime,
) -> Option<SqlFault> {
    refresh(world, now);
    let lower = text.to_lowercase();
    let index = rules(world).iter().position(|r| {
        r.get("kind").and_then(Json::as_str) == Some("sql")
            && r.get("instance")
                .and_then(Json::as_str)
                .is_none_or(|i| i.eq_ignore_ascii_case(role.as_str()))
            && r.get("pattern")
                .and_then(Json::as_str)
                .is_some_and(|p| p == "*" || lower.contains(&p.to_lowercase()))
            && r.get("times").and_then(Json::as_i64).is_none_or(|t| t > 0)
    })?;
    let rule = rules(world)[index].clone();
    let fault = SqlFault {
        error: rule.get("error").and_then(Json::as_u64).map(|n| n as u32),
        delay: rule
            .get("delay_ms")
            .and_then(Json::as_u64)
            .map(Duration::from_millis),
        drop_connection: rule
            .get("drop_connection")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        down: rule.get("down").and_then(Json::as_bool).unwrap_or(false),
        run: rule
            .get("run_ms")
            .and_then(Json::as_u64)
            .map(Duration::from_millis),
    };
    if let Some(times) = rule.get("times").and_then(Json::as_i64) {
        write_back_times(world, index, times - 1);
    }
    Some(fault)
}

/// The first "job" rule for `role` and a job of this kind (`copy` or `restore`): how long the job's
/// run takes (`run_ms`); consumes one of its `times`.
pub(crate) fn match_job(
    world: &mut World,
    role: Role,
    kind: &str,
    now: LabTime,
) -> Option<Duration> {
    refresh(world, now);
    let index = rules(world).iter().position(|r| {
        r.get("kind").and_then(Json::as_str) == Some("job")
            && r.get("instance")
                .and_then(Json::as_str)
                .is_none_or(|i| i.eq_ignore_ascii_case(role.as_str()))
            && r.get("job")
                .and_then(Json::as_str)
                .is_some_and(|j| j.eq_ignore_ascii_case(kind))
            && r.get("times").and_then(Json::as_i64).is_none_or(|t| t > 0)
    })?;
    let rule = rules(world)[index].clone();
    let run = Duration::from_millis(rule.get("run_ms").and_then(Json::as_u64).unwrap_or(0));
    if let Some(times) = rule.get("times").and_then(Json::as_i64) {
        write_back_times(world, index, times - 1);
    }
    Some(run)
}

fn write_back_times(world: &mut World, index: usize, times: i64) {
    let p = path(world);
    let Some(doc) = world.rt.faults.doc.as_mut() else {
        return;
    };
    if let Some(rule) = doc
        .get_mut("rules")
        .and_then(Json::as_array_mut)
        .and_then(|r| r.get_mut(index))
    {
        rule["times"] = Json::from(times);
    }
    let text = serde_json::to_string_pretty(doc).expect("JSON serializes");
    // Atomically (temporary file, then rename), as the shell writes its state.
    let tmp = p.with_extension("json.engine-tmp");
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &p).is_ok() {
        world.rt.faults.mtime = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
    }
}
