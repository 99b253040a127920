//! The Central Management Store as the failover sees it (reference J.2):
//! `Get-CsManagementStoreReplicationStatus [-ReplicaFqdn] [-CentralManagementStoreStatus]` and
//! `Invoke-CsManagementServerFailover`, over cms.json's `master`.
//!
//! `Set-CsPersistentChatState` and `Set-CsPersistentChatActiveServer` write the store, so they fail when
//! its master cannot be reached ([`require_master`]): in the lab, when no SQL store of the master's data
//! center answers a login (the CMS database lives on a back-end SQL Server of that data center). Moving
//! the master is `Invoke-CsManagementServerFailover -BackupSqlServerFqdn <sql fqdn> -Force`, which takes
//! the master to that SQL Server's data center. Sources: the cmdlet reference pages of
//! Get-CsManagementStoreReplicationStatus and Invoke-CsManagementServerFailover (MicrosoftDocs
//! office-docs-powershell, skype/skype-ps/skype/). Not modelled: the File Transfer Agent's own
//! location (it follows the master), replicas in a lost data center (they report like the others),
//! `-Restore`, and `-Report` files.

use serde_json::json;

use crate::binding::{CmdletSpec, ParamSpec, ParamType};
use crate::cmdlets::Invocation;
use crate::cms::{Cms, Master, now_ms};
use crate::error::ErrorRecord;
use crate::manifest::LabManifest;

const FQDN: &str = "Microsoft.Rtc.Management.Deployment.Core.Fqdn";

pub(crate) static STATUS_SPEC: CmdletSpec = CmdletSpec {
    name: "Get-CsManagementStoreReplicationStatus",
    type_name: "Microsoft.Rtc.Management.Xds.GetManagementStoreReplicationStatusCmdlet",
    params: &[
        ParamSpec {
            position: Some(0),
            ..ParamSpec::optional("ReplicaFqdn", ParamType::String, "System.String")
        },
        ParamSpec::switch("CentralManagementStoreStatus"),
    ],
    default_set: None,
    supports_should_process: false,
};

pub(crate) static FAILOVER_SPEC: CmdletSpec = CmdletSpec {
    name: "Invoke-CsManagementServerFailover",
    type_name: "Microsoft.Rtc.Management.Deployment.InvokeManagementServerFailoverCmdlet",
    params: &[
        ParamSpec {
            sets: &["DisasterRecovery"],
            mandatory: true,
            ..ParamSpec::optional("BackupSqlServerFqdn", ParamType::String, FQDN)
        },
        ParamSpec {
            sets: &["DisasterRecovery"],
            mandatory: true,
            ..ParamSpec::switch("Force")
        },
        ParamSpec {
            sets: &["DisasterRecovery"],
            ..ParamSpec::optional("BackupSqlInstanceName", ParamType::String, "System.String")
        },
        ParamSpec {
            sets: &["DisasterRecovery"],
            ..ParamSpec::optional("BackupMirrorSqlServerFqdn", ParamType::String, FQDN)
        },
        ParamSpec {
            sets: &["DisasterRecovery"],
            ..ParamSpec::optional(
                "BackupMirrorSqlInstanceName",
                ParamType::String,
                "System.String",
            )
        },
        ParamSpec {
            sets: &["Normal"],
            ..ParamSpec::switch("Restore")
        },
        ParamSpec::optional("Report", ParamType::String, "System.String"),
    ],
    default_set: Some("Normal"),
    supports_should_process: true,
};

/// The error a store-writing cmdlet raises when the master cannot be reached. UNVERIFIED: the real
/// text is not documented; this names what failed and where.
fn unreachable(master: &Master, why: &str, cmdlet_type: &str) -> ErrorRecord {
    ErrorRecord::new(
        "Microsoft.Rtc.Management.ManagementException",
        format!(
            "Cannot connect to the Central Management Store: the Central Management Server \"{}\" (site {}) cannot be reached. {why}",
            master.fqdn, master.data_center
        ),
        format!("CmsUnavailable,{cmdlet_type}"),
        "ConnectionError",
        None,
    )
}

impl Invocation<'_> {
    /// Fails unless a SQL store of the master's data center answers (see the module comment).
    pub(crate) fn require_master(
        &self,
        manifest: &LabManifest,
        cms: &Cms,
    ) -> Result<(), ErrorRecord> {
        let Some(master) = &cms.master else {
            return Ok(());
        };
        self.sql
            .reach_data_center(manifest, &master.data_center)
            .map_err(|why| unreachable(master, &why, self.spec.type_name))
    }

    /// Records that the store changed now: replicas are up to date again `replication_ms` later.
    pub(crate) fn touch(cms: &mut Cms) {
        if let Some(master) = &mut cms.master {
            master.changed_ms = now_ms();
        }
    }
}

pub(crate) fn run_status(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let cms = inv.cms(&manifest)?;
    let Some(master) = cms.master.clone() else {
        return Ok(());
    };
    let up_to_date = now_ms() >= master.changed_ms + master.replication_ms;
    let replicas: Vec<String> = manifest
        .front_end_servers
        .iter()
        .chain(&manifest.persistent_chat_servers)
        .map(|s| s.fqdn.clone())
        .collect();
    if inv.bound.switch("CentralManagementStoreStatus") {
        // UNVERIFIED: the property names of CentralManagementStoreStatusResult beyond the documented
        // meaning ("the fully qualified domain names of the Active Master and the File Transfer
        // Agent services", "a list of active replicas and deleted replicas").
        inv.output.push(json!({
            "ActiveMasterFqdn": master.fqdn,
            "ActiveFileTransferAgents": [master.fqdn],
            "ActiveReplicas": replicas,
            "DeletedReplicas": [],
        }));
        return Ok(());
    }
    let wanted = inv.bound.string("ReplicaFqdn");
    for replica in replicas {
        if wanted
            .as_deref()
            .is_some_and(|w| !w.trim().eq_ignore_ascii_case(&replica))
        {
            continue;
        }
        inv.output.push(json!({
            "ReplicaFqdn": replica,
            "UpToDate": up_to_date,
        }));
    }
    Ok(())
}

pub(crate) fn run_failover(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let mut cms = inv.cms(&manifest)?;
    let Some(current) = cms.master.clone() else {
        return Err(crate::cmdlets::lab_error(
            "lab.json names no Front End servers: the lab has no Central Management Store".into(),
        ));
    };
    let target_dc = match inv.bound.string("BackupSqlServerFqdn") {
        Some(fqdn) => manifest
            .instance_by_fqdn(&fqdn)
            .and_then(|i| i.data_center.clone())
            .ok_or_else(|| {
                // UNVERIFIED wording.
                ErrorRecord::new(
                    "Microsoft.Rtc.Management.ManagementException",
                    format!("Cannot find SQL Server \"{fqdn}\" in the topology."),
                    format!("SqlServerNotFound,{}", FAILOVER_SPEC.type_name),
                    "ObjectNotFound",
                    Some(fqdn.clone()),
                )
            })?,
        None => {
            // The Normal set: the store must be available, and the master moves to the other site.
            inv.require_master(&manifest, &cms)?;
            manifest
                .front_end_servers
                .iter()
                .find(|f| !f.data_center.eq_ignore_ascii_case(&current.data_center))
                .map(|f| f.data_center.clone())
                .unwrap_or(current.data_center.clone())
        }
    };
    let Some(fe) = manifest
        .front_end_servers
        .iter()
        .find(|f| f.data_center.eq_ignore_ascii_case(&target_dc))
    else {
        return Err(crate::cmdlets::lab_error(format!(
            "lab.json names no Front End server in {target_dc}"
        )));
    };
    inv.verbose.push(format!(
        "Moving the Central Management Server from \"{}\" to \"{}\".",
        current.fqdn, fe.fqdn
    ));
    cms.master = Some(Master {
        fqdn: fe.fqdn.clone(),
        data_center: fe.data_center.clone(),
        changed_ms: now_ms(),
        replication_ms: current.replication_ms,
    });
    inv.save_cms(&cms)
}
