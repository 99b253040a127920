//! PowerShell: how many host processes a failover starts, and what pcfail adds to each cmdlet over
//! a bare round trip through the same pipe to the same host.
//!
//! The lab runbook's PowerShell program is wrapped by a script that counts its starts, then a
//! failover runs. Every cmdlet pcfail sent is in its journal with the time pcfail measured for it
//! (request written, response read and decoded, journal record made). The same command texts are
//! then sent again, in order, to a host the bench starts itself with the same program and
//! arguments, timing only the write of the request line and the read of the response line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::rig::{LabSpec, Snapshot, Tools, measure};
use crate::stats::{Samples, Unit, table};

pub(crate) fn run(tools: &Tools, work: &Path, reps: usize) -> anyhow::Result<()> {
    let snapshot = Snapshot::make(
        tools,
        &work.join("live"),
        &work.join("saved"),
        LabSpec { io_mb_per_s: None },
        10,
        0,
        true,
    )?;
    let (mut pcfail, mut bare) = (Samples::default(), Samples::default());
    let mut processes = Vec::new();
    let mut cmdlets = 0;
    for _ in 0..reps {
        let lab = snapshot.start(tools)?;
        let starts = work.join("host-starts");
        let _ = std::fs::remove_file(&starts);
        wrap_program(&lab.dir.join("runbook.toml"), &tools.pcfail, &starts, work)?;
        let pool = lab.manifest.pool.clone();
        let cost = measure(
            &mut lab.pcfail(&["failover", "--pool", &pool, "--yes"]),
            Some(&work.join("pcfail-ps.log")),
        )?;
        ensure!(cost.code == 0, "pcfail failover exited {}", cost.code);
        processes.push(
            std::fs::read_to_string(&starts)
                .unwrap_or_default()
                .lines()
                .count(),
        );
        let sent = cmdlet_records(&lab.state_dir())?;
        cmdlets = sent.len();
        for (_, took) in &sent {
            pcfail.push(*took);
        }
        for took in replay(tools, &lab.dir, &sent)? {
            bare.push(took);
        }
    }
    processes.sort_unstable();
    table(
        &format!("PowerShell (lab shell; per cmdlet, min / median / max over {reps} failovers)"),
        &["measure", "value"],
        &[
            vec![
                "host processes per failover".to_owned(),
                format!(
                    "{} (min {}, max {})",
                    processes[(processes.len() - 1) / 2],
                    processes[0],
                    processes[processes.len() - 1]
                ),
            ],
            vec!["cmdlets per failover".to_owned(), cmdlets.to_string()],
            vec!["pcfail, per cmdlet".to_owned(), pcfail.show(Unit::Ms)],
            vec![
                "bare round trip, same texts, same host".to_owned(),
                bare.show(Unit::Ms),
            ],
            vec![
                "pcfail's own cost per cmdlet (difference of medians)".to_owned(),
                Unit::Ms.show(pcfail.median().saturating_sub(bare.median())),
            ],
        ],
    );
    Ok(())
}

/// Points the runbook's `[powershell] program` at a script that notes each start and then runs
/// the lab shell as before.
fn wrap_program(runbook: &Path, pcfail: &Path, starts: &Path, work: &Path) -> anyhow::Result<()> {
    let wrapper = work.join("count-host-starts.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho start >> '{}'\nexec '{}' \"$@\"\n",
            starts.display(),
            pcfail.display()
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    }
    let text = std::fs::read_to_string(runbook)?;
    let mut doc: toml::Table = text.parse().context("the lab runbook")?;
    doc.get_mut("powershell")
        .and_then(toml::Value::as_table_mut)
        .context("no [powershell]")?
        .insert(
            "program".into(),
            toml::Value::String(wrapper.display().to_string()),
        );
    std::fs::write(runbook, toml::to_string(&doc)?)?;
    Ok(())
}

/// The cmdlets of the run's journal, with the duration pcfail recorded for each.
fn cmdlet_records(state_dir: &Path) -> anyhow::Result<Vec<(String, Duration)>> {
    let runs = state_dir.join("runs");
    let journal = std::fs::read_dir(&runs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .context("no journal")?;
    let mut out = Vec::new();
    for line in std::fs::read_to_string(journal)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        // The module import's record includes starting the host: not a round trip.
        let text = v["text"].as_str().unwrap_or_default();
        if v["event"] == "command"
            && v["target"] == "powershell"
            && !text.starts_with("Import-Module")
        {
            let took = v["duration_us"]
                .as_u64()
                .map(Duration::from_micros)
                .or_else(|| v["duration_ms"].as_u64().map(Duration::from_millis))
                .unwrap_or_default();
            out.push((text.to_owned(), took));
        }
    }
    Ok(out)
}

/// Sends the same command texts to a host started with the lab runbook's program and arguments;
/// returns each round trip.
fn replay(tools: &Tools, lab: &Path, sent: &[(String, Duration)]) -> anyhow::Result<Vec<Duration>> {
    let script = lab.join("bench-host.ps1");
    std::fs::write(&script, "# the lab shell simulates the host script\n")?;
    let mut child = Command::new(&tools.pcfail)
        .args(["lab", "shell", "--dir"])
        .arg(lab)
        .args([
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-File",
        ])
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the lab shell")?;
    let mut input = child.stdin.take().context("stdin")?;
    let mut output = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    output.read_line(&mut line)?;
    ensure!(line.starts_with("PCFAIL-READY "), "the host said `{line}`");
    let module = "Import-Module -Name 'SkypeForBusiness'".to_owned();
    let mut times = Vec::new();
    for (id, text) in std::iter::once(&module)
        .chain(sent.iter().map(|(t, _)| t))
        .enumerate()
    {
        let request = serde_json::json!({"id": id + 1, "command": text}).to_string() + "\n";
        let started = Instant::now();
        input.write_all(request.as_bytes())?;
        input.flush()?;
        loop {
            line.clear();
            ensure!(output.read_line(&mut line)? > 0, "the host exited");
            if line.starts_with("PCFAIL-RESULT ") {
                break;
            }
        }
        if id > 0 {
            times.push(started.elapsed());
        }
    }
    drop(input);
    let _ = child.wait();
    Ok(times)
}
