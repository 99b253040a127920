//! How the PowerShell host is started: with the host script on its command line
//! (`-EncodedCommand`), never as a file on disk that an execution policy could refuse or someone
//! could change, and with what it writes to stderr (CLIXML, when started that way) kept as text.

use crate::lab_support::{LabRig, RestoreJob, assert_exit};

#[test]
fn the_host_runs_from_its_command_line_and_its_clixml_stderr_is_journaled_as_text() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);

    let mut scripts = Vec::new();
    let mut folders = vec![rig.state_dir()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("state folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "ps1") {
                scripts.push(path);
            }
        }
    }
    assert_eq!(scripts, Vec::<std::path::PathBuf>::new(), "no script file");

    // The simulated shell, started like powershell.exe -EncodedCommand, writes Import-Module's
    // warning as a CLIXML warning record; the journal keeps the line a console would show.
    let streams: Vec<serde_json::Value> = rig.journals()[0]
        .iter()
        .filter(|r| r["event"] == "captured" && r["key"] == "powershell_streams")
        .map(|r| r["value"]["stderr"].clone())
        .collect();
    assert_eq!(
        streams,
        [serde_json::json!([
            "WARNING: The names of some imported commands from the module 'SkypeForBusiness' include unapproved verbs that might make them less discoverable. To find the commands with unapproved verbs, run the Import-Module command again with the Verbose parameter. For a list of approved verbs, type Get-Verb."
        ])]
    );
}
