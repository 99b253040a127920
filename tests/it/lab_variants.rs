//! pcfail under each reading of what the reference leaves UNVERIFIED: the lab switches a behaviour
//! (a variant, docs/lab.md), and the failover must still end where it should, or stop where a
//! real server would stop it. STYLE.md: "where the reference is UNVERIFIED, let the lab switch
//! between readings and test the client under each".

use crate::lab_support::{LabRig, RestoreJob, assert_exit, assert_failed_over, text};

/// A lab following `name = value`, its primary data center lost.
fn rig_with(name: &str, value: &str) -> LabRig {
    let (name, value) = (name.to_owned(), value.to_owned());
    LabRig::start_with(RestoreJob::Default, move |o| {
        o.variants.insert(name, value);
    })
}

#[test]
fn failover_completes_under_every_reading_it_does_not_depend_on() {
    let cases = [
        ("trn_name_time", "local"),
        ("restore_job_order", "lsn"),
        ("standby_read_only", "0"),
        ("mirroring_partner_name", "server"),
        ("sp_who2_types", "varchar"),
        ("pool_identity", "service"),
        ("delete_secondary_not_configured", "silent"),
    ];
    for (name, value) in cases {
        let rig = rig_with(name, value);
        let at_disaster = rig.disaster();
        let output = rig.failover();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name} = {value}:\n{}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        assert_failed_over(&rig, &at_disaster, &rig.status());
    }
}

/// The runbook names the pool `service:<fqdn>`; a cmdlet that takes only the other form stops the
/// failover at the pool step, with the cmdlet's own error (reference H.1: the runbook's comment
/// tells the operator to try the other form).
#[test]
fn a_shell_that_takes_only_the_other_pool_identity_stops_the_pool_step() {
    let rig = rig_with("pool_identity", "persistentchatserver");
    rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("step 7 (`set-pool-failed-over`) failed")
            && stderr.contains("Management object not found for identity"),
        "{stderr}"
    );
}
