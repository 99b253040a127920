//! `pcfail drill --runbook`: the drill rehearses the operator's runbook, not the shipped one. Its own
//! steps run (a custom step shows in the report); its site's names are re-pointed onto the lab's one
//! topology and each re-pointing is reported; what the lab has no counterpart for stops the drill
//! with exit 2 before anything runs.

use crate::test::{SHIPPED, Test};

/// The shipped runbook as another site would have it: its own pool, data centers and servers, and a
/// step of its own after the recovery.
fn another_site() -> String {
    let custom = "[[failover.steps]]
id = \"check-server-name\"
action = \"sql\"
description = \"Our own check: the backup instance answers with its name.\"
instance = \"backup\"
text = \"SELECT @@SERVERNAME\"
irreversible = false

[[failover.steps]]
id = \"confirm-mgc-online\"";
    crate::test::edit(
        SHIPPED,
        "[[failover.steps]]\nid = \"confirm-mgc-online\"",
        custom,
    )
    .replace("atl-cs-001.litwareinc.com", "chat.contoso.com")
    .replace("atl-pc-00", "nyc-pchat-0")
    .replace("dal-pc-00", "chi-pchat-0")
    .replace("data_center = \"ATL\"", "data_center = \"NYC\"")
    .replace("data_center = \"DAL\"", "data_center = \"CHI\"")
    .replace("litwareinc.com", "contoso.com")
}

#[test]
fn the_drill_rehearses_the_named_runbook_with_its_own_steps_and_says_what_it_re_pointed() {
    let test = Test::new().runbook(&another_site()).args(&["drill"]);
    let output = test.run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
            .trim()
            .to_owned()
    };
    assert_eq!(line("Runbook:"), "Runbook: `runbook.toml`");
    assert_eq!(
        line("re-pointed for the lab: pool"),
        "re-pointed for the lab: pool `chat.contoso.com` -> the lab's `atl-cs-001.litwareinc.com`"
    );
    assert_eq!(
        line("re-pointed for the lab: Persistent Chat servers"),
        "re-pointed for the lab: Persistent Chat servers: `chi-pchat-01.contoso.com` -> `dal-pc-001.litwareinc.com`, `chi-pchat-02.contoso.com` -> `dal-pc-002.litwareinc.com`, `nyc-pchat-01.contoso.com` -> `atl-pc-001.litwareinc.com`, `nyc-pchat-02.contoso.com` -> `atl-pc-002.litwareinc.com`"
    );
    assert_eq!(
        line("re-pointed for the lab: steps"),
        "re-pointed for the lab: steps `check-server-name` run their own text as written: names in it are not re-pointed"
    );
    // The operator's own step ran, between the recovery and the pause, and is timed in the report.
    let steps: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Failover:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        steps,
        [
            "remove-log-shipping",
            "copy-log-backups",
            "apply-log-backups",
            "end-sessions",
            "recover-mgc",
            "check-server-name",
            "confirm-mgc-online",
            "move-cms",
            "set-pool-failed-over",
            "set-active-servers",
            "mirror-mgc",
            "mirror-mgccomp",
        ]
    );
}

/// A runbook whose cmdlets run through PowerShell remoting on its backup data center's Front End,
/// as an account of its own: the drill opens the session on the lab's Front End of that data
/// center, as the lab's Windows account, and says so.
#[test]
fn the_drill_rehearses_a_remoting_session_on_the_front_end_the_runbook_names() {
    let text = crate::test::edit(
        &another_site(),
        "args = []\n",
        "args = []\n\n[powershell.remote]\ncomputer = \"dal-fe-001.contoso.com\"\nauthentication = \"Kerberos\"\nuser = \"CONTOSO\\\\chat-admin\"\npassword_env = \"CONTOSO_FE_PASSWORD\"\n",
    );
    let output = Test::new().runbook(&text).args(&["drill"]).run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "re-pointed for the lab: PowerShell remoting to `dal-fe-001.contoso.com` -> `dal-fe-001.litwareinc.com`",
        "re-pointed for the lab: PowerShell remoting logs on as the lab's Windows account",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
}

#[test]
fn a_runbook_the_lab_cannot_stand_in_for_stops_the_drill_with_every_reason() {
    let text = another_site()
        .replace("chat = \"mgc\"", "chat = \"pchat\"")
        .replace("database = \"mgc\"", "database = \"pchat\"")
        .replace(
            "[[persistent_chat_servers]]\nfqdn = \"nyc-pchat-01.contoso.com\"",
            "[[persistent_chat_servers]]\nfqdn = \"nyc-pchat-03.contoso.com\"\ndata_center = \"NYC\"\n\n[[persistent_chat_servers]]\nfqdn = \"nyc-pchat-01.contoso.com\"",
        );
    let output = Test::new()
        .runbook(&text)
        .args(&["drill"])
        .stdout("")
        .status(2)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.ends_with(
            "error: the runbook `runbook.toml` cannot be rehearsed on the lab, which simulates one topology (docs/lab.md):
  `[databases] chat` is `pchat`; the lab's is `mgc`
  Persistent Chat server `nyc-pchat-02.contoso.com`: the lab has only 2 in data center ATL
"
        ),
        "{stderr}"
    );
}

/// Stops the lab in its folder when the test ends, whatever happened.
struct LabDown(std::path::PathBuf);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_pcfail"))
            .args(["lab", "down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

/// `lab up` writes the lab's runbook from the named one, read in the encoding Windows PowerShell's
/// `>` saves in (UTF-16LE with a byte-order mark), and says what it re-pointed.
#[test]
fn lab_up_makes_its_runbook_from_the_named_one() {
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(another_site().encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    // Outside the test's own folder, which goes when `run` returns.
    let folder = tempfile::Builder::new()
        .prefix("pcfail-lab-up-")
        .tempdir()
        .expect("a folder for the lab");
    let lab = folder.path().join("lab");
    let _down = LabDown(lab.clone());
    let output = Test::new()
        .runbook_bytes(&utf16le)
        .args(&["lab", "up", "--dir", lab.to_str().expect("UTF-8 path")])
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "runbook: {} (from `runbook.toml`)\n  re-pointed for the lab: pool `chat.contoso.com` -> the lab's `atl-cs-001.litwareinc.com`\n",
            lab.join("runbook.toml").display()
        )),
        "{stdout}"
    );
    let written = std::fs::read_to_string(lab.join("runbook.toml")).expect("the lab's runbook");
    assert!(
        written.contains("id = \"check-server-name\"") && !written.contains("contoso"),
        "the operator's step is kept and no name of theirs is left:\n{written}"
    );
}
