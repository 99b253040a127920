//! `pcfail report`: the review's page of a run, self-contained HTML that a real browser (headless
//! Chromium, installed by `.ci/test`) renders with every step, the RPO and the RTO, and no secret;
//! and the same in Markdown.

use std::process::Command;

use crate::lab_support::{LabRig, RestoreJob, assert_exit, text};

/// The steps of the shipped failover, in order.
const FAILOVER_STEPS: [&str; 10] = [
    "remove-log-shipping",
    "copy-log-backups",
    "apply-log-backups",
    "end-sessions",
    "recover-mgc",
    "confirm-mgc-online",
    "set-pool-failed-over",
    "mirror-mgc",
    "mirror-mgccomp",
    "set-active-servers",
];

#[test]
fn the_report_of_a_failover_renders_in_a_browser_with_every_step_and_no_secret() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let run = rig.run_ids().pop().expect("the failover");
    let page = rig
        .state_dir()
        .parent()
        .expect("the rig's folder")
        .join("report.html");
    let output = rig.pcfail(&["report", &run, "--output", &page.display().to_string()]);
    assert_exit(&output, 0);
    let html = std::fs::read_to_string(&page).expect("the report");
    assert!(
        !html.contains(rig.manifest().login.password.as_str()),
        "the report holds the SQL login's password"
    );

    // What a browser makes of it: the rendered document, as text.
    let profile = tempfile::tempdir().expect("a browser profile folder");
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("headless Chromium (.ci/test installs Debian's chromium)");
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    let dom = text(&dom.stdout);
    for step in FAILOVER_STEPS {
        assert!(
            dom.contains(&format!("id=\"step-{step}\"")),
            "no step `{step}` in:\n{dom}"
        );
    }
    for fact in ["<th>RPO</th>", "<th>RTO</th>", "hash chain intact", "<svg"] {
        assert!(dom.contains(fact), "no {fact:?} in:\n{dom}");
    }

    let md = rig.pcfail(&["report", &run, "--format", "md"]);
    assert_exit(&md, 0);
    let md = text(&md.stdout);
    assert!(
        md.starts_with(&format!(
            "# failover of {} — completed (run {run})",
            rig.pool()
        )),
        "{md}"
    );
    for step in FAILOVER_STEPS {
        assert!(
            md.contains(&format!("`{step}`")),
            "no step `{step}` in:\n{md}"
        );
    }
}
