//! Observations for table tests: four instances, each answering with a given `mgc` or not at all.

use super::observe::{DatabaseEntry, FolderView, InstanceView, Observation, ShellView};
use crate::exec::probe::{DbView, MirroringView};
use crate::runbook::Role;

pub(crate) fn db(state: &str, mirroring: Option<&str>) -> Option<DbView> {
    Some(DbView {
        state: state.into(),
        standby: false,
        mirroring: mirroring.map(|role| MirroringView {
            role: role.into(),
            state: "SYNCHRONIZED".into(),
            partner: "TCP://x:5022".into(),
        }),
    })
}

pub(crate) fn instance(role: Role, mgc: Option<Option<DbView>>) -> InstanceView {
    InstanceView {
        role,
        host: format!("{role}.example"),
        data_center: if matches!(role, Role::Primary | Role::PrimaryMirror) {
            "ATL".into()
        } else {
            "DAL".into()
        },
        reachable: mgc.is_some(),
        error: mgc.is_none().then(|| "timed out".to_owned()),
        cause: mgc.is_none().then_some("unreachable"),
        server_name: None,
        server_time_utc: None,
        // `mgccomp` is in the same state as `mgc`, as the two databases usually are.
        databases: mgc
            .map(|view| {
                ["mgc", "mgccomp"]
                    .into_iter()
                    .map(|name| DatabaseEntry {
                        name: name.into(),
                        exists: view.is_some(),
                        view: view.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        log_shipping_secondary: (role == Role::Backup).then(Default::default),
        log_shipping_primary: None,
    }
}

pub(crate) fn folder() -> FolderView {
    FolderView {
        path: Some("/share".into()),
        source: Some("msdb"),
        msdb_path: None,
        pcfail_path: None,
        reachable: true,
        error: None,
        log_backups: 3,
        newest: None,
    }
}

/// The four instances (None = does not answer; Some(None) = answers without `mgc`) and the pool.
pub(crate) fn observation(
    p: Option<Option<DbView>>,
    pm: Option<Option<DbView>>,
    b: Option<Option<DbView>>,
    bm: Option<Option<DbView>>,
    pool_state: Option<&str>,
) -> Observation {
    Observation {
        pool: "pool.example".into(),
        chat_database: "mgc".into(),
        compliance_database: "mgccomp".into(),
        instances: vec![
            instance(Role::Primary, p),
            instance(Role::PrimaryMirror, pm),
            instance(Role::Backup, b),
            instance(Role::BackupMirror, bm),
        ],
        share: folder(),
        copy_folder: folder(),
        shell: ShellView {
            identity: "service:pool.example".into(),
            reachable: pool_state.is_some(),
            pool_state: pool_state.map(str::to_owned),
            error: pool_state.is_none().then(|| "no shell".to_owned()),
            remoting_session: None,
        },
    }
}

/// A run summary as a journal would give it, for history and gate tables.
pub(crate) fn run(id: &str, operation: &str, outcome: Option<&str>) -> super::RunSummary {
    super::RunSummary {
        id: id.into(),
        path: std::path::PathBuf::from(format!("{id}.jsonl")),
        operation: operation.into(),
        pool: "pool.example".into(),
        started: id.into(),
        operator: "u".into(),
        host: "h".into(),
        outcome: outcome.map(str::to_owned),
        finished: outcome.map(|_| format!("{id}-end")),
        last_step: None,
        confirmed: false,
        reason: None,
        records: Vec::new(),
    }
}
