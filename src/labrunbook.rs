//! The runbook for a lab: the shipped runbook's steps, pointed at the lab's instances, folders and
//! simulated shell.
//!
//! The steps are not written again here: they are taken from `runbooks/persistent-chat.toml` (built
//! into the binary), so `pcfail drill` rehearses exactly the procedure an operator ships. Only what
//! is environment-specific changes: where the instances listen and how to log in, the PowerShell
//! program (the `pcfail` binary's `lab shell`), and file paths (each backup file keeps its name but
//! moves into the lab's folders). The result is checked by the same loader as any runbook.
//!
//! A lab that looks like a real site (the default) gets what a real site's runbook has: named
//! instances found through SQL Browser, encryption with certificates checked against the lab's CA,
//! Windows paths as SQL Server names them, and `pcfail_share` / `pcfail_copy_folder` saying where
//! pcfail, on this machine, reaches the share and the copy folder.

use std::path::Path;

use pcfail_lab::Manifest;

/// The shipped runbook, the template of every lab runbook.
const SHIPPED: &str = include_str!("../runbooks/persistent-chat.toml");

/// Step keys that name a backup file, and keys that name a folder, with the lab folder each maps to.
const FILE_KEYS: [&str; 3] = ["backup_file", "file", "initialize_file"];

#[derive(Debug, thiserror::Error)]
pub enum LabRunbookError {
    #[error("the shipped runbook does not parse as TOML: {0}")]
    Template(#[from] toml::de::Error),
    #[error("the shipped runbook has no `{0}` table")]
    Missing(&'static str),
}

/// Renders the lab runbook. `program` is the `pcfail` binary the PowerShell adapter starts.
pub fn render(
    manifest: &Manifest,
    lab_dir: &Path,
    program: &Path,
) -> Result<String, LabRunbookError> {
    let mut doc: toml::Table = SHIPPED.parse()?;
    let s = |p: &Path| toml::Value::String(p.display().to_string());

    let powershell = doc
        .get_mut("powershell")
        .and_then(toml::Value::as_table_mut)
        .ok_or(LabRunbookError::Missing("powershell"))?;
    powershell.insert("program".into(), s(program));
    powershell.insert(
        "args".into(),
        toml::Value::Array(vec![
            "lab".into(),
            "shell".into(),
            "--dir".into(),
            s(lab_dir),
        ]),
    );

    let instances = doc
        .get_mut("instances")
        .and_then(toml::Value::as_table_mut)
        .ok_or(LabRunbookError::Missing("instances"))?;
    instances.clear();
    for instance in &manifest.instances {
        let mut t = toml::Table::new();
        t.insert("host".into(), instance.address.ip().to_string().into());
        match (&instance.instance_name, instance.browser) {
            (Some(name), Some(browser)) => {
                t.insert("instance".into(), name.clone().into());
                t.insert("browser_port".into(), i64::from(browser.port()).into());
            }
            _ => {
                t.insert("port".into(), i64::from(instance.address.port()).into());
            }
        }
        t.insert("server_name".into(), instance.name.clone().into());
        t.insert("data_center".into(), instance.data_center.clone().into());
        t.insert(
            "mirroring_endpoint".into(),
            instance.endpoint.clone().into(),
        );
        t.insert("auth".into(), "sql".into());
        t.insert("user".into(), manifest.login.user.clone().into());
        t.insert(
            "password_env".into(),
            manifest.login.password_env.clone().into(),
        );
        t.insert("encryption".into(), manifest.encryption.clone().into());
        if let Some(ca) = &manifest.ca_file {
            t.insert("ca_file".into(), s(ca));
            // The TCP connection goes to 127.0.0.1; the certificate names the instance's host.
            t.insert("certificate_host".into(), instance.fqdn.clone().into());
        }
        let key = serde_json::to_value(instance.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        instances.insert(key, toml::Value::Table(t));
    }

    // Instances in a lost data center never answer: a short connect timeout keeps a drill brisk
    // while staying far above a loopback login, even on a loaded machine.
    let mut timeouts = toml::Table::new();
    timeouts.insert("connect".into(), "2s".into());
    timeouts.insert("query".into(), "60s".into());
    doc.insert("timeouts".into(), toml::Value::Table(timeouts));

    // Where SQL Server finds each folder, and (with Windows paths) where pcfail finds it.
    let folders = match &manifest.windows_paths {
        Some(w) => {
            let mut log_shipping = toml::Table::new();
            log_shipping.insert("pcfail_share".into(), s(&manifest.share));
            log_shipping.insert("pcfail_copy_folder".into(), s(&manifest.copy_folder));
            doc.insert("log_shipping".into(), toml::Value::Table(log_shipping));
            Folders {
                share: w.share.clone(),
                share_local: w.share_local.clone(),
                copy_folder: w.copy_folder.clone(),
                backups: w.backups.clone(),
            }
        }
        None => Folders {
            share: manifest.share.display().to_string(),
            share_local: manifest.share.display().to_string(),
            copy_folder: manifest.copy_folder.display().to_string(),
            backups: manifest.backups.display().to_string(),
        },
    };

    for operation in ["failover", "planned_failover", "failback"] {
        let Some(steps) = doc
            .get_mut(operation)
            .and_then(|o| o.get_mut("steps"))
            .and_then(toml::Value::as_array_mut)
        else {
            continue;
        };
        for step in steps.iter_mut().filter_map(toml::Value::as_table_mut) {
            // A tail-log backup belongs in the log-shipping share, where the copy step finds it.
            let folder =
                if step.get("action").and_then(toml::Value::as_str) == Some("backup_log_tail") {
                    &folders.share
                } else {
                    &folders.backups
                };
            for key in FILE_KEYS {
                if let Some(toml::Value::String(path)) = step.get(key) {
                    let moved = join(folder, file_name(path));
                    step.insert(key.into(), moved.into());
                }
            }
            for (key, folder) in [
                ("backup_directory", &folders.share_local),
                ("backup_share", &folders.share),
                ("copy_folder", &folders.copy_folder),
            ] {
                if step.contains_key(key) {
                    step.insert(key.into(), folder.clone().into());
                }
            }
        }
    }

    let body = toml::to_string(&doc).expect("a TOML table serializes");
    Ok(format!(
        "# A pcfail runbook for the lab in `{}`, generated from runbooks/persistent-chat.toml:\n# the same steps, pointed at the lab's instances, folders and simulated Management Shell.\n# The SQL login's password is in the environment variable named by `password_env`\n# (its value is in lab.json; `pcfail drill` and the tests set it for you).\n\n{body}",
        lab_dir.display()
    ))
}

/// The lab's folders as SQL Server names them.
struct Folders {
    share: String,
    /// The share's folder on the primary's own disk (`D:\LogShipping`), log shipping's
    /// `backup_directory`.
    share_local: String,
    copy_folder: String,
    backups: String,
}

/// A file in a Windows or Unix folder, with that folder's separator.
fn join(folder: &str, name: &str) -> String {
    let sep = if folder.contains('\\') { '\\' } else { '/' };
    format!("{}{sep}{name}", folder.trim_end_matches(['\\', '/']))
}

/// The last component of a Windows or Unix path.
fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_windows_and_unix_paths() {
        let cases = [
            (
                r"\\atl-sql-001.litwareinc.com\LogShipping\mgc_failback.bak",
                "mgc_failback.bak",
            ),
            ("/tmp/lab/backups/mgc.bak", "mgc.bak"),
            ("mgc.bak", "mgc.bak"),
        ];
        for (path, name) in cases {
            assert_eq!(file_name(path), name);
        }
    }
}
