//! What `pcfail lab status` shows about one instance, as JSON: databases, mirroring, log shipping,
//! jobs, backup and restore history, sessions.

use serde_json::{Value, json};

use super::catalog::mirroring_state;
use super::model::{Instance, MirrorRole};
use super::time;
use super::world::World;

/// The newest rows of msdb's backup and restore history that `lab status` shows. Generous: a test
/// that looks for the fail-back's full backup must still find it after the resumed runs, restores
/// and log-shipping cycles that followed it.
const HISTORY_ROWS: usize = 200;

pub(crate) fn instance_status(world: &World, inst: &Instance) -> Value {
    let databases: Vec<Value> = inst
        .databases
        .iter()
        .map(|d| {
            let mirroring = d.mirroring.as_ref().map(|m| {
                let (_, state) = mirroring_state(world, m);
                json!({
                    "role": if m.role == MirrorRole::Principal { "PRINCIPAL" } else { "MIRROR" },
                    "state": if m.pending { "PENDING (waiting for the principal)" } else { state },
                    "partner": m.partner,
                    "safety": if m.safety_full { "FULL" } else { "OFF" },
                })
            });
            json!({
                "name": d.name,
                "database_id": d.id,
                "state_desc": d.state.desc(),
                "is_in_standby": d.standby,
                "recovery_model": d.recovery.desc(),
                "family_guid": d.family_guid.to_string(),
                "last_lsn": d.end_lsn.to_string(),
                "redo_start_lsn": d.redo_start_lsn.filter(|_| d.is_restoring()).map(|l| l.to_string()),
                "chat_records": d.records.len(),
                "mirroring": mirroring,
            })
        })
        .collect();
    let msdb = &inst.msdb;
    let jobs: Vec<Value> = msdb
        .jobs
        .iter()
        .map(|j| {
            let last = j.history.last();
            json!({
                "name": j.name,
                "job_id": j.job_id.to_string(),
                "category": j.category,
                "enabled": j.enabled,
                "running_since": j.running_since.map(time::display),
                "next_run": j.next_run.map(time::display),
                "last_run": last.map(|h| time::display(h.at)),
                "last_outcome": last.map(|h| if h.succeeded { "succeeded" } else { "failed" }),
                "last_message": last.map(|h| h.message.clone()),
                // What sysjobschedules attaches, as sp_add_schedule recorded it: tests read the
                // start date a client chose and the interval it asked for.
                "schedules": msdb.job_schedules.iter().filter(|(job, _)| *job == j.job_id)
                    .filter_map(|(_, id)| msdb.schedules.iter().find(|s| s.schedule_id == *id))
                    .map(|s| json!({
                        "name": s.name,
                        "active_start_date": s.active_start_date,
                        "freq_subday_interval": s.freq_subday_interval,
                    })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": inst.config.name,
        "role": inst.config.role.as_str(),
        "up": inst.up,
        "lost": inst.lost,
        "endpoint": inst.endpoint.as_ref().map(|e| json!({"name": e.name, "port": e.port, "state": e.state_desc, "role": e.role})),
        "databases": databases,
        "log_shipping": {
            "primary": msdb.ls_primary_databases.iter().map(|p| json!({
                "primary_database": p.primary_database,
                "backup_directory": p.backup_directory,
                "backup_share": p.backup_share,
                "last_backup_file": p.last_backup_file,
                "secondaries": msdb.ls_primary_secondaries.iter().filter(|s| s.primary_id == p.primary_id)
                    .map(|s| format!("{}.{}", s.secondary_server, s.secondary_database)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "secondary": msdb.ls_secondary.iter().map(|s| json!({
                "primary_server": s.primary_server,
                "primary_database": s.primary_database,
                "backup_source_directory": s.backup_source_directory,
                "backup_destination_directory": s.backup_destination_directory,
                "last_copied_file": s.last_copied_file,
                "databases": msdb.ls_secondary_databases.iter().filter(|d| d.secondary_id == s.secondary_id).map(|d| json!({
                    "secondary_database": d.secondary_database,
                    "restore_mode": if d.restore_mode { "STANDBY" } else { "NORECOVERY" },
                    "last_restored_file": d.last_restored_file,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
        "jobs": jobs,
        // The newest rows, and every older full backup: a backup set restored here is recorded here
        // too, so a busy log-shipping secondary would soon push its one full backup out of view.
        "backup_history": msdb.backupset.iter().rev().enumerate().filter(|(i, b)| *i < HISTORY_ROWS || b.kind.to_string() == "D").map(|(_, b)| {
            let device = msdb.backupmediafamily.iter().find(|m| m.media_set_id == b.media_set_id).map(|m| m.physical_device_name.clone());
            json!({"database": b.database_name, "type": b.kind.to_string(), "first_lsn": b.first_lsn.to_string(), "last_lsn": b.last_lsn.to_string(), "device": device, "finished": time::display(b.backup_finish_date)})
        }).collect::<Vec<_>>(),
        "restore_history": msdb.restorehistory.iter().rev().take(HISTORY_ROWS).map(|r| {
            let set = msdb.backupset.iter().find(|b| b.backup_set_id == r.backup_set_id);
            let (first, last) = match (set, r.set_lsns) {
                (Some(s), _) => (Some(s.first_lsn.to_string()), Some(s.last_lsn.to_string())),
                (None, Some((f, l))) => (Some(f.to_string()), Some(l.to_string())),
                (None, None) => (None, None),
            };
            json!({"database": r.destination_database_name, "type": r.restore_type.to_string(), "recovery": r.recovery, "replace": r.replace,
                   "first_lsn": first, "last_lsn": last, "date": time::display(r.restore_date)})
        }).collect::<Vec<_>>(),
        "sessions": world.sessions(inst.config.role).len(),
    })
}
