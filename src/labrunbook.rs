//! The runbook for a lab: an operator's runbook (or the shipped one), pointed at the lab's instances,
//! folders and simulated shell.
//!
//! The steps are not written again here: they are the operator's own (`pcfail drill --runbook`,
//! `pcfail lab up --runbook`) or, when none is named, `runbooks/persistent-chat.toml` built into the
//! binary, so a drill rehearses exactly the procedure that would run. Only what is environment-specific
//! changes, and each change is listed in [`Rendered::notes`] for the drill to print: where the
//! instances listen and how to log in, the PowerShell program (the `pcfail` binary's `lab shell`), file
//! paths (each backup file keeps its name but moves into the lab's folders), and the names of the
//! lab's one topology (its pool, data centers and Persistent Chat servers, matched by role and data
//! center). What has no counterpart in the lab (other database names, more servers in a data center
//! than the lab has) is an error listing every such thing: rehearsing something else in its place
//! would be a rehearsal of a different procedure. The result is checked by the same loader as any
//! runbook.
//!
//! A lab that looks like a real site (the default) gets what a real site's runbook has: named
//! instances found through SQL Browser, encryption with certificates checked against the lab's CA,
//! Windows paths as SQL Server names them, and `pcfail_share` / `pcfail_copy_folder` saying where
//! pcfail, on this machine, reaches the share and the copy folder.

use std::collections::BTreeMap;
use std::path::Path;

use pcfail_lab::{Manifest, Role};

/// The shipped runbook, the template when the operator names none.
const SHIPPED: &str = include_str!("../runbooks/persistent-chat.toml");

/// Step keys that name a backup file, and keys that name a folder, with the lab folder each maps to.
const FILE_KEYS: [&str; 3] = ["backup_file", "file", "initialize_file"];

/// The databases the lab simulates, as `[databases]` names them.
const LAB_DATABASES: [(&str, &str); 2] = [("chat", "mgc"), ("compliance", "mgccomp")];

#[derive(Debug, thiserror::Error)]
pub enum LabRunbookError {
    #[error("the runbook `{source_name}` does not parse as TOML: {error}")]
    Template {
        source_name: String,
        error: toml::de::Error,
    },
    #[error("the runbook `{0}` has no `{1}` table")]
    Missing(String, &'static str),
    #[error(
        "the runbook `{source_name}` cannot be rehearsed on the lab, which simulates one topology (docs/lab.md):\n{}",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Unmapped {
        source_name: String,
        problems: Vec<String>,
    },
}

/// Which runbook the lab's is made from.
#[derive(Clone, Copy, Debug)]
pub enum Template<'a> {
    /// `runbooks/persistent-chat.toml` as built into the binary.
    Shipped,
    /// The operator's runbook: its path (for messages) and its text (already validated).
    File { path: &'a Path, text: &'a str },
}

impl Template<'_> {
    fn name(&self) -> String {
        match self {
            Template::Shipped => "runbooks/persistent-chat.toml (built in)".to_owned(),
            Template::File { path, .. } => path.display().to_string(),
        }
    }
}

/// A lab runbook and what was re-pointed to make it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// One line per kind of change, for the operator to read before trusting the rehearsal.
    pub notes: Vec<String>,
}

/// Renders the lab runbook from the shipped one. `program` is the `pcfail` binary the PowerShell
/// adapter starts.
pub fn render(
    manifest: &Manifest,
    lab_dir: &Path,
    program: &Path,
) -> Result<String, LabRunbookError> {
    render_from(manifest, lab_dir, program, Template::Shipped).map(|r| r.text)
}

/// Maps a runbook's list of servers (`[[persistent_chat_servers]]`, the Central Management Store's
/// Front End servers) onto the lab's `lab` servers: the n-th of a data center becomes the lab's n-th
/// of the data center it maps to, in place. Returns the renames (runbook FQDN, lowercased, to the
/// lab's); what has no counterpart goes to `problems`, `kind` naming the server in them.
fn map_servers(
    list: Option<&mut Vec<toml::Value>>,
    lab: &[pcfail_lab::ChatServer],
    kind: &str,
    data_centers: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut renames = BTreeMap::new();
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for table in list
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table_mut)
    {
        let fqdn = str_of(table, "fqdn");
        let dc = str_of(table, "data_center");
        let Some(lab_dc) = data_centers.get(&dc.to_ascii_uppercase()).cloned() else {
            problems.push(format!(
                "{kind} `{fqdn}` is in data center `{dc}`, which has no SQL instance to map it by"
            ));
            continue;
        };
        let n = used.entry(lab_dc.clone()).or_default();
        let Some(server) = lab.iter().filter(|c| c.data_center == lab_dc).nth(*n) else {
            problems.push(format!(
                "{kind} `{fqdn}`: the lab has only {n} in data center {lab_dc}"
            ));
            continue;
        };
        *n += 1;
        renames.insert(fqdn.to_ascii_lowercase(), server.fqdn.clone());
        table.insert("fqdn".into(), server.fqdn.clone().into());
        table.insert("data_center".into(), lab_dc.into());
    }
    renames
}

/// `[powershell.remote]`: the session goes to the lab's server that the runbook's computer maps to
/// (a Front End or Persistent Chat server the runbook lists), and an explicit account becomes the
/// lab's Windows account. A computer the runbook does not list cannot be placed in a data center.
fn map_remote(
    doc: &mut toml::Table,
    manifest: &Manifest,
    computers: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let Some(remote) = doc
        .get_mut("powershell")
        .and_then(|p| p.get_mut("remote"))
        .and_then(toml::Value::as_table_mut)
    else {
        return;
    };
    let theirs = str_of(remote, "computer");
    match computers.get(&theirs.to_ascii_lowercase()) {
        Some(lab) => {
            if !lab.eq_ignore_ascii_case(&theirs) {
                notes.push(format!("PowerShell remoting to `{theirs}` -> `{lab}`"));
            }
            remote.insert("computer".into(), lab.clone().into());
        }
        None => problems.push(format!(
            "`[powershell.remote] computer = \"{theirs}\"` is none of the runbook's Front End (`[central_management_store]`) or Persistent Chat servers, so the lab cannot tell which of its servers stands for it"
        )),
    }
    // The lab listens for WinRM on no real port: the default ones, as the lab shell expects them.
    remote.remove("port");
    if remote.contains_key("user") {
        match &manifest.windows_login {
            Some(account) => {
                remote.insert("user".into(), account.user.clone().into());
                remote.insert("password_env".into(), account.password_env.clone().into());
                notes.push(format!(
                    "PowerShell remoting logs on as the lab's Windows account `{}`",
                    account.user
                ));
            }
            None => {
                remote.remove("user");
                remote.remove("password_env");
                if str_of(remote, "authentication").eq_ignore_ascii_case("credssp") {
                    remote.insert("authentication".into(), "Default".into());
                }
                notes.push(
                    "PowerShell remoting: the lab has no Windows account, so the session opens as you"
                        .to_owned(),
                );
            }
        }
    }
}

/// Renders the lab runbook from `template`.
pub fn render_from(
    manifest: &Manifest,
    lab_dir: &Path,
    program: &Path,
    template: Template<'_>,
) -> Result<Rendered, LabRunbookError> {
    let source_name = template.name();
    let text = match template {
        Template::Shipped => SHIPPED,
        Template::File { text, .. } => text,
    };
    let mut doc: toml::Table = text.parse().map_err(|error| LabRunbookError::Template {
        source_name: source_name.clone(),
        error,
    })?;
    let missing = |table| LabRunbookError::Missing(source_name.clone(), table);
    let s = |p: &Path| toml::Value::String(p.display().to_string());
    let mut notes = Vec::new();
    let mut problems = Vec::new();

    let powershell = doc
        .entry("powershell")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| missing("powershell"))?;
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

    // The pool: the lab has one, whatever the runbook calls it; the identity keeps its form.
    let pool = doc
        .get_mut("pool")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| missing("pool"))?;
    let theirs = str_of(pool, "fqdn");
    if !theirs.eq_ignore_ascii_case(&manifest.pool) {
        notes.push(format!("pool `{theirs}` -> the lab's `{}`", manifest.pool));
    }
    if let Some(identity) = pool.get("identity").and_then(toml::Value::as_str) {
        let form = identity.split_once(':').map_or("service", |(form, _)| form);
        pool.insert(
            "identity".into(),
            format!("{form}:{}", manifest.pool).into(),
        );
    }
    pool.insert("fqdn".into(), manifest.pool.clone().into());

    if let Some(databases) = doc.get("databases").and_then(toml::Value::as_table) {
        for (key, lab_name) in LAB_DATABASES {
            let theirs = str_of(databases, key);
            if !theirs.is_empty() && !theirs.eq_ignore_ascii_case(lab_name) {
                problems.push(format!(
                    "`[databases] {key}` is `{theirs}`; the lab's is `{lab_name}`"
                ));
            }
        }
    }

    // Instances by role: each becomes the lab's instance of that role. Data centers follow their
    // instances, so the runbook's data center names map onto the lab's.
    let instances = doc
        .get_mut("instances")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| missing("instances"))?;
    let mut data_centers: BTreeMap<String, String> = BTreeMap::new();
    let mut connections = Vec::new();
    // Each runbook host, lowercased, to the lab fqdn of the instance it became.
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in instances.iter_mut() {
        let Some(lab) = manifest.instances.iter().find(|i| role_key(i.role) == *key) else {
            problems.push(format!("instance role `{key}` has no instance in the lab"));
            continue;
        };
        let Some(table) = value.as_table_mut() else {
            continue;
        };
        let dc = str_of(table, "data_center");
        if let Some(other) = data_centers.insert(dc.to_ascii_uppercase(), lab.data_center.clone())
            && other != lab.data_center
        {
            problems.push(format!(
                "data center `{dc}` holds instances of both the lab's `{other}` and `{}`",
                lab.data_center
            ));
        }
        connections.push(format!(
            "{key} `{}` -> {} `{}`",
            str_of(table, "host"),
            lab.address,
            lab.name
        ));
        hosts.insert(str_of(table, "host").to_ascii_lowercase(), lab.fqdn.clone());
        table.clear();
        table.insert("host".into(), lab.address.ip().to_string().into());
        match (&lab.instance_name, lab.browser) {
            (Some(name), Some(browser)) => {
                table.insert("instance".into(), name.clone().into());
                table.insert("browser_port".into(), i64::from(browser.port()).into());
            }
            _ => {
                table.insert("port".into(), i64::from(lab.address.port()).into());
            }
        }
        table.insert("server_name".into(), lab.name.clone().into());
        table.insert("data_center".into(), lab.data_center.clone().into());
        table.insert("mirroring_endpoint".into(), lab.endpoint.clone().into());
        table.insert("auth".into(), "sql".into());
        table.insert("user".into(), manifest.login.user.clone().into());
        table.insert(
            "password_env".into(),
            manifest.login.password_env.clone().into(),
        );
        table.insert("encryption".into(), manifest.encryption.clone().into());
        if let Some(ca) = &manifest.ca_file {
            table.insert("ca_file".into(), s(ca));
            // The TCP connection goes to 127.0.0.1; the certificate names the instance's host.
            table.insert("certificate_host".into(), lab.fqdn.clone().into());
        }
    }
    if template_is_file(template) {
        notes.push(format!(
            "instances (SQL login `{}`, encryption `{}`): {}",
            manifest.login.user,
            manifest.encryption,
            connections.join(", ")
        ));
    }

    // Persistent Chat servers: the n-th of a data center is the lab's n-th in the mapped one.
    let servers = map_servers(
        doc.get_mut("persistent_chat_servers")
            .and_then(toml::Value::as_array_mut),
        &manifest.persistent_chat_servers,
        "Persistent Chat server",
        &data_centers,
        &mut problems,
    );
    if let Some(active) = doc
        .get_mut("active_servers")
        .and_then(toml::Value::as_table_mut)
    {
        for (_, list) in active.iter_mut() {
            for server in list.as_array_mut().into_iter().flatten() {
                if let Some(lab) = server
                    .as_str()
                    .and_then(|fqdn| servers.get(&fqdn.to_ascii_lowercase()))
                {
                    *server = lab.clone().into();
                }
            }
        }
    }
    // Every server a `[powershell.remote]` session may name: Persistent Chat and Front End.
    let mut computers = servers.clone();
    let renamed: Vec<String> = servers
        .iter()
        .filter(|(theirs, lab)| !theirs.eq_ignore_ascii_case(lab))
        .map(|(theirs, lab)| format!("`{theirs}` -> `{lab}`"))
        .collect();
    if !renamed.is_empty() {
        notes.push(format!("Persistent Chat servers: {}", renamed.join(", ")));
    }

    // The Central Management Store: its backup SQL Server is one of the runbook's instances, and its
    // Front End servers map like the Persistent Chat servers, the n-th of a data center to the lab's.
    if let Some(cms) = doc
        .get_mut("central_management_store")
        .and_then(toml::Value::as_table_mut)
    {
        let backup_sql = str_of(cms, "backup_sql_server");
        if let Some(lab) = hosts.get(&backup_sql.to_ascii_lowercase()) {
            cms.insert("backup_sql_server".into(), lab.clone().into());
        } else if !backup_sql.is_empty() {
            problems.push(format!(
                "the Central Management Store's backup SQL Server `{backup_sql}` is none of the runbook's instances"
            ));
        }
        computers.extend(map_servers(
            cms.get_mut("servers").and_then(toml::Value::as_array_mut),
            &manifest.front_end_servers,
            "Front End server",
            &data_centers,
            &mut problems,
        ));
    }
    map_remote(&mut doc, manifest, &computers, &mut notes, &mut problems);

    // Where SQL Server finds each folder, and (with Windows paths) where pcfail finds it.
    let folders = match &manifest.windows_paths {
        Some(w) => Folders {
            share: w.share.clone(),
            share_local: w.share_local.clone(),
            copy_folder: w.copy_folder.clone(),
            backups: w.backups.clone(),
        },
        None => Folders {
            share: manifest.share.display().to_string(),
            share_local: manifest.share.display().to_string(),
            copy_folder: manifest.copy_folder.display().to_string(),
            backups: manifest.backups.display().to_string(),
        },
    };
    let log_shipping = doc
        .entry("log_shipping")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| missing("log_shipping"))?;
    // The runbook's own overrides name its site's folders: the lab's, as SQL Server names them.
    for (key, folder) in [
        ("share", &folders.share),
        ("copy_folder", &folders.copy_folder),
    ] {
        if log_shipping.contains_key(key) {
            log_shipping.insert(key.into(), folder.clone().into());
        }
    }
    log_shipping.remove("pcfail_share");
    log_shipping.remove("pcfail_copy_folder");
    if manifest.windows_paths.is_some() {
        log_shipping.insert("pcfail_share".into(), s(&manifest.share));
        log_shipping.insert("pcfail_copy_folder".into(), s(&manifest.copy_folder));
    }

    // Instances in a lost data center never answer: a short connect timeout keeps a drill brisk
    // while staying far above a loopback login, even on a loaded machine.
    let mut timeouts = toml::Table::new();
    timeouts.insert("connect".into(), "2s".into());
    timeouts.insert("query".into(), "60s".into());
    doc.insert("timeouts".into(), toml::Value::Table(timeouts));

    let mut verbatim = Vec::new();
    for operation in ["failover", "planned_failover", "failback"] {
        let Some(steps) = doc
            .get_mut(operation)
            .and_then(|o| o.get_mut("steps"))
            .and_then(toml::Value::as_array_mut)
        else {
            continue;
        };
        for step in steps.iter_mut().filter_map(toml::Value::as_table_mut) {
            let action = str_of(step, "action");
            if matches!(action.as_str(), "sql" | "cmdlet") {
                verbatim.push(format!("`{}`", str_of(step, "id")));
            }
            // The cmdlet names its SQL Server by the instance's host, which in a lab runbook is the
            // loopback address pcfail connects to; the simulated shell knows instances by name.
            if action == "install_mirror_database" {
                problems.push(format!(
                    "step `{}` (install_mirror_database): the lab's shell knows its SQL Servers by name, not by the address pcfail reaches them at; rehearse mirroring with `mirror_database` steps",
                    str_of(step, "id")
                ));
            }
            // A tail-log backup belongs in the log-shipping share, where the copy step finds it.
            let folder = if action == "backup_log_tail" {
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
    if template_is_file(template) {
        notes.push(format!(
            "backup files and folders: moved into the lab's folders under `{}`",
            lab_dir.display()
        ));
    }
    if !verbatim.is_empty() {
        notes.push(format!(
            "steps {} run their own text as written: names in it are not re-pointed",
            verbatim.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(LabRunbookError::Unmapped {
            source_name,
            problems,
        });
    }

    let body = toml::to_string(&doc).expect("a TOML table serializes");
    let text = format!(
        "# A pcfail runbook for the lab in `{}`, generated from {source_name}:\n# the same steps, pointed at the lab's instances, folders and simulated Management Shell.\n# The SQL login's password is in the environment variable named by `password_env`\n# (its value is in lab.json; `pcfail drill` and the tests set it for you).\n\n{body}",
        lab_dir.display()
    );
    Ok(Rendered { text, notes })
}

fn template_is_file(template: Template<'_>) -> bool {
    matches!(template, Template::File { .. })
}

/// A string value of `table`, or empty.
fn str_of(table: &toml::Table, key: &str) -> String {
    table
        .get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The runbook's key for a role (`[instances.primary_mirror]`).
fn role_key(role: Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
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

    /// A lab as lab.json describes it (docs/lab.md), without starting one.
    fn lab() -> Manifest {
        let instance = |role: &str, name: &str, dc: &str, port: u16| {
            serde_json::json!({
                "role": role, "name": name, "fqdn": format!("{}.litwareinc.com", name.to_lowercase()),
                "address": format!("127.0.0.1:{port}"), "data_center": dc,
                "endpoint": format!("TCP://{}.litwareinc.com:5022", name.to_lowercase()), "mirror": null,
            })
        };
        let server = |fqdn: &str, dc: &str| serde_json::json!({"fqdn": fqdn, "data_center": dc});
        serde_json::from_value(serde_json::json!({
            "protocol": 1, "state": "ready", "pid": 1, "control": "127.0.0.1:9",
            "login": {"user": "sa", "password": "p", "password_env": "PCFAIL_LAB_PASSWORD"},
            "pool": "atl-cs-001.litwareinc.com", "clock_speed": 60.0,
            "instances": [
                instance("primary", "ATL-SQL-001", "ATL", 1001),
                instance("primary_mirror", "ATL-SQL-002", "ATL", 1002),
                instance("backup", "DAL-SQL-001", "DAL", 1003),
                instance("backup_mirror", "DAL-SQL-002", "DAL", 1004),
            ],
            "persistent_chat_servers": [
                server("atl-pc-001.litwareinc.com", "ATL"), server("atl-pc-002.litwareinc.com", "ATL"),
                server("dal-pc-001.litwareinc.com", "DAL"), server("dal-pc-002.litwareinc.com", "DAL"),
            ],
            "front_end_servers": [
                server("atl-fe-001.litwareinc.com", "ATL"), server("dal-fe-001.litwareinc.com", "DAL"),
            ],
            "active_servers": ["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"],
            "share": "/lab/share", "copy_folder": "/lab/backup-copy", "backups": "/lab/backups",
        }))
        .expect("a lab.json")
    }

    fn render_text(text: &str) -> Result<Rendered, LabRunbookError> {
        let path = Path::new("site.toml");
        render_from(
            &lab(),
            Path::new("/lab"),
            Path::new("/bin/pcfail"),
            Template::File { path, text },
        )
    }

    #[test]
    fn the_shipped_runbook_needs_no_notes_and_loads_against_the_lab() {
        let rendered = render_from(
            &lab(),
            Path::new("/lab"),
            Path::new("/bin/pcfail"),
            Template::Shipped,
        )
        .unwrap();
        assert_eq!(rendered.notes, Vec::<String>::new());
        let runbook = crate::runbook::parse_str(Path::new("lab.toml"), &rendered.text).unwrap();
        assert_eq!(runbook.pool.fqdn, "atl-cs-001.litwareinc.com");
        assert!(rendered.text.contains("port = 1003"), "{}", rendered.text);
    }

    #[test]
    fn another_sites_names_are_re_pointed_by_role_and_data_center_and_listed() {
        let text = SHIPPED
            .replace("atl-cs-001.litwareinc.com", "chat.contoso.com")
            .replace("atl-pc-00", "nyc-pchat-0")
            .replace("data_center = \"ATL\"", "data_center = \"NYC\"")
            .replace("litwareinc.com", "contoso.com");
        let rendered = render_text(&text).unwrap();
        assert_eq!(
            rendered.notes,
            [
                "pool `chat.contoso.com` -> the lab's `atl-cs-001.litwareinc.com`",
                "instances (SQL login `sa`, encryption `not_supported`): backup `dal-sql-001.contoso.com` -> 127.0.0.1:1003 `DAL-SQL-001`, backup_mirror `dal-sql-002.contoso.com` -> 127.0.0.1:1004 `DAL-SQL-002`, primary `atl-sql-001.contoso.com` -> 127.0.0.1:1001 `ATL-SQL-001`, primary_mirror `atl-sql-002.contoso.com` -> 127.0.0.1:1002 `ATL-SQL-002`",
                "Persistent Chat servers: `dal-pc-001.contoso.com` -> `dal-pc-001.litwareinc.com`, `dal-pc-002.contoso.com` -> `dal-pc-002.litwareinc.com`, `nyc-pchat-01.contoso.com` -> `atl-pc-001.litwareinc.com`, `nyc-pchat-02.contoso.com` -> `atl-pc-002.litwareinc.com`",
                "backup files and folders: moved into the lab's folders under `/lab`",
            ]
        );
        assert!(
            !rendered.text.contains("contoso")
                && rendered
                    .text
                    .contains("identity = \"service:atl-cs-001.litwareinc.com\""),
            "{}",
            rendered.text
        );
    }

    #[test]
    fn what_the_lab_has_no_counterpart_for_is_every_reason_to_stop() {
        let one_more_server = "[[persistent_chat_servers]]\nfqdn = \"atl-pc-003.litwareinc.com\"\ndata_center = \"ATL\"\n\n[active_servers]";
        let nowhere = "[[persistent_chat_servers]]\nfqdn = \"lon-pc-001.litwareinc.com\"\ndata_center = \"LON\"\n\n[active_servers]";
        let install_mirror = "[[failback.steps]]\nid = \"install-mirror\"\naction = \"install_mirror_database\"\ndatabase_type = \"PersistentChat\"\nfile_share = '\\\\dal-sql-001\\Mirroring'\n\n[[failback.steps]]";
        let cases: [(String, &[&str]); 5] = [
            (
                SHIPPED.replacen("[[failback.steps]]", install_mirror, 1),
                &[
                    "step `install-mirror` (install_mirror_database): the lab's shell knows its SQL Servers by name, not by the address pcfail reaches them at; rehearse mirroring with `mirror_database` steps",
                ],
            ),
            (
                SHIPPED.replace("chat = \"mgc\"", "chat = \"pchat\""),
                &["`[databases] chat` is `pchat`; the lab's is `mgc`"],
            ),
            (
                SHIPPED.replace("[active_servers]", one_more_server),
                &[
                    "Persistent Chat server `atl-pc-003.litwareinc.com`: the lab has only 2 in data center ATL",
                ],
            ),
            (
                SHIPPED.replace("[active_servers]", nowhere),
                &[
                    "Persistent Chat server `lon-pc-001.litwareinc.com` is in data center `LON`, which has no SQL instance to map it by",
                ],
            ),
            (
                // The backup instance said to be in the primary's data center.
                SHIPPED.replacen("data_center = \"DAL\"", "data_center = \"ATL\"", 1),
                &["data center `ATL` holds instances of both the lab's `DAL` and `ATL`"],
            ),
        ];
        for (text, expected) in cases {
            match render_text(&text) {
                Err(LabRunbookError::Unmapped { problems, .. }) => assert_eq!(problems, expected),
                other => panic!("expected {expected:?}, got {other:?}"),
            }
        }
    }

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
