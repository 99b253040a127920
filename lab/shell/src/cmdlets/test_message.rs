//! `Test-CsPersistentChatMessage`: the synthetic transaction that proves Persistent Chat works.
//!
//! In the lab it succeeds when the databases the pool state points at are reachable: `Normal` uses the
//! primary store, `FailedOver` the backup store (reference H.1); either store counts as up when it or
//! its topology mirror answers a login and has `mgc` ONLINE, since the Persistent Chat servers fail
//! over to the mirror on their own. Like every Test-Cs cmdlet, a failed test is a TestResult object
//! with `Result = Failure`, not an error. Sending and receiving a real chat message is not simulated.

use std::time::Instant;

use serde_json::json;

use crate::binding::{CmdletSpec, ParamSpec, ParamType};
use crate::cmdlets::Invocation;
use crate::error::ErrorRecord;
use crate::manifest::{Instance, LabManifest};
use crate::sql::Sql;

/// UNVERIFIED: the parameter list follows the other Test-Cs synthetic transactions.
pub(crate) static SPEC: CmdletSpec = CmdletSpec {
    name: "Test-CsPersistentChatMessage",
    type_name: "Microsoft.Rtc.SyntheticTransactions.Cmdlets.TestCsPersistentChatMessageCmdlet",
    params: &[
        ParamSpec {
            position: Some(0),
            ..ParamSpec::optional("TargetFqdn", ParamType::String, "System.String")
        },
        ParamSpec::optional("SenderSipAddress", ParamType::String, "System.String"),
        ParamSpec::optional(
            "SenderCredential",
            ParamType::Raw,
            "System.Management.Automation.PSCredential",
        ),
        ParamSpec::optional("ReceiverSipAddress", ParamType::String, "System.String"),
        ParamSpec::optional(
            "ReceiverCredential",
            ParamType::Raw,
            "System.Management.Automation.PSCredential",
        ),
        ParamSpec::optional("RegistrarPort", ParamType::Int, "System.Int32"),
        ParamSpec::optional(
            "Authentication",
            ParamType::String,
            "Microsoft.Rtc.SyntheticTransactions.AuthenticationMechanism",
        ),
        ParamSpec::optional("OutLoggerVariable", ParamType::String, "System.String"),
        ParamSpec::optional("OutVerboseVariable", ParamType::String, "System.String"),
        ParamSpec::switch("Force"),
    ],
    default_set: None,
    supports_should_process: false,
};

const DATABASE: &str = "mgc";

pub(crate) fn run(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let cms = inv.cms(&manifest)?;
    let target = inv
        .bound
        .string("TargetFqdn")
        .unwrap_or_else(|| manifest.pool.clone());
    let role = if cms.pool_state == "FailedOver" {
        "backup"
    } else {
        "primary"
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut success = false;
    for instance in store_and_mirror(&manifest, role) {
        match check(inv.sql, &manifest, instance) {
            Ok(()) => {
                inv.verbose.push(format!(
                    "Database \"{DATABASE}\" on \"{}\" is online.",
                    instance.fqdn
                ));
                success = true;
                break;
            }
            Err(reason) => failures.push(format!("{}: {reason}", instance.fqdn)),
        }
    }
    if failures.is_empty() && !success {
        failures.push(format!("no SQL store with role `{role}` in lab.json"));
    }
    let latency = started.elapsed();
    let (result, error) = if success {
        ("Success", None)
    } else {
        (
            "Failure",
            Some(format!(
                "The Persistent Chat database \"{DATABASE}\" for pool state {} is not available. {}",
                cms.pool_state,
                failures.join(" ")
            )),
        )
    };
    inv.output.push(json!({
        "TargetFqdn": target,
        "Result": result,
        "Latency": timespan(latency),
        "Error": error,
        "Diagnosis": null,
    }));
    Ok(())
}

/// A TimeSpan in its invariant "c" format, `hh:mm:ss.fffffff`.
fn timespan(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:07}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        duration.subsec_nanos() / 100
    )
}

fn store_and_mirror<'m>(manifest: &'m LabManifest, role: &str) -> Vec<&'m Instance> {
    let Some(store) = manifest.instance_by_role(role) else {
        return Vec::new();
    };
    let mirror = store
        .mirror
        .as_deref()
        .and_then(|fqdn| manifest.instance_by_fqdn(fqdn));
    std::iter::once(store).chain(mirror).collect()
}

fn check(sql: &Sql, manifest: &LabManifest, instance: &Instance) -> Result<(), String> {
    let mut connection = sql.connect(manifest, instance).map_err(|e| e.to_string())?;
    let state = connection
        .query_string(&format!(
            "SELECT state_desc FROM sys.databases WHERE name = N'{DATABASE}'"
        ))
        .map_err(|e| e.to_string())?;
    match state.as_deref() {
        Some("ONLINE") => Ok(()),
        Some(other) => Err(format!("database \"{DATABASE}\" is {other}.")),
        None => Err(format!("database \"{DATABASE}\" does not exist.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_renders_as_a_timespan() {
        let cases: &[(Duration, &str)] = &[
            (Duration::from_nanos(1_234_567_800), "00:00:01.2345678"),
            (Duration::from_secs(3_723), "01:02:03.0000000"),
        ];
        for (duration, expected) in cases {
            assert_eq!(timespan(*duration), *expected);
        }
    }
}
