//! PowerShell remoting as the lab plays it: the `remote` request (pcfail's `[powershell.remote]`)
//! opens a session on one of the lab's Skype for Business servers, and every later command runs
//! "there" (its output objects carry `PSComputerName`, as objects that come back through
//! `Invoke-Command` do).
//!
//! The lab is strict where a real site refuses: a computer the topology does not know (DNS has no
//! such name), a computer in a lost data center (WinRM does not answer: in the lab, no SQL instance
//! of its data center answers a login), a port other than WinRM's (5985, or 5986 with SSL), a
//! session configuration other than `Microsoft.PowerShell`, and an explicit account other than the
//! lab's Windows account or with the wrong password. A session whose data center is lost later
//! breaks: the next command fails.
//!
//! UNVERIFIED: the error texts and FullyQualifiedErrorIds are Windows PowerShell 5.1's as commonly
//! reported (`PSRemotingTransportException`, `...,PSSessionOpenFailed`); Microsoft documents the
//! troubleshooting topic, not each message. pcfail decides nothing on their exact wording.

use serde_json::{Value as Json, json};

use crate::error::ErrorRecord;
use crate::manifest::LabManifest;
use crate::protocol::RemoteRequest;
use crate::sql::Sql;

const TRANSPORT: &str = "System.Management.Automation.Remoting.PSRemotingTransportException";
const TROUBLESHOOTING: &str =
    "For more information, see the about_Remote_Troubleshooting Help topic.";

/// An open session: the computer, as the request named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Remote {
    pub computer: String,
    /// The data center the computer is in (lab.json's servers).
    pub data_center: String,
}

/// Opens the session `request` describes, or says why PowerShell would not. `env` reads the
/// shell's environment (the password variable).
pub(crate) fn open(
    manifest: &LabManifest,
    sql: &Sql,
    request: &RemoteRequest,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Remote, Json), ErrorRecord> {
    let computer = request.computer.trim();
    let open_failed = |reason: String, id: &str| {
        ErrorRecord::new(
            TRANSPORT,
            format!(
                "Connecting to remote server {computer} failed with the following error message : {reason} {TROUBLESHOOTING}"
            ),
            format!("{id},PSSessionOpenFailed"),
            "OpenError",
            Some(computer.to_owned()),
        )
    };
    // host.ps1 reads the password before it connects.
    let password = match (&request.user, &request.password_env) {
        (Some(user), Some(name)) => match env(name).filter(|p| !p.is_empty()) {
            Some(password) => Some((user.clone(), password)),
            None => {
                return Err(ErrorRecord::thrown(&format!(
                    "The environment variable {name}, which holds the password of {user}, is not set."
                )));
            }
        },
        _ => None,
    };
    let Some(data_center) = data_center_of(manifest, computer) else {
        return Err(open_failed(
            format!(
                "WinRM cannot process the request. The following error occurred while using {} authentication: Cannot find the computer {computer}. Verify that the computer exists on the network and that the name provided is spelled correctly.",
                if request.authentication.eq_ignore_ascii_case("negotiate") {
                    "Negotiate"
                } else {
                    "Kerberos"
                }
            ),
            "NetworkPathNotFound",
        ));
    };
    let winrm_port = if request.use_ssl { 5986 } else { 5985 };
    if sql.reach_data_center(manifest, &data_center).is_err()
        || request.port.is_some_and(|p| p != winrm_port)
    {
        return Err(open_failed(unreachable_reason(), "WinRMOperationTimeout"));
    }
    if let Some(name) = &request.configuration_name
        && !name.eq_ignore_ascii_case("Microsoft.PowerShell")
    {
        return Err(open_failed(
            format!(
                "The WS-Management service cannot process the request. Cannot find the {name} session configuration in the WSMan: drive on the {computer} computer."
            ),
            "InvalidResourceUri",
        ));
    }
    if let Some((user, password)) = password {
        let accepted = manifest.windows_login.as_ref().is_some_and(|account| {
            account.user.eq_ignore_ascii_case(&user)
                && account.password.as_deref() == Some(&password)
        });
        if !accepted {
            return Err(open_failed("Access is denied.".to_owned(), "AccessDenied"));
        }
    }
    let remote = Remote {
        computer: computer.to_owned(),
        data_center,
    };
    let summary = json!({
        "ComputerName": remote.computer,
        "ConfigurationName": "Microsoft.PowerShell",
        "State": "Opened",
    });
    Ok((remote, summary))
}

/// Fails when the session's computer can no longer be reached (its data center was lost after the
/// session opened).
pub(crate) fn still_open(
    manifest: &LabManifest,
    sql: &Sql,
    remote: &Remote,
) -> Result<(), ErrorRecord> {
    if sql.reach_data_center(manifest, &remote.data_center).is_ok() {
        return Ok(());
    }
    Err(ErrorRecord::new(
        TRANSPORT,
        format!(
            "Processing data for a remote command failed with the following error message: {} {TROUBLESHOOTING}",
            unreachable_reason()
        ),
        "JobFailure",
        "OperationStopped",
        Some(remote.computer.clone()),
    ))
}

/// Marks objects as having come back from the session, as Invoke-Command's deserialized objects do.
pub(crate) fn mark(output: &mut [Json], remote: &Remote) {
    for object in output.iter_mut().filter_map(Json::as_object_mut) {
        object.insert("PSComputerName".to_owned(), json!(remote.computer));
        object.insert("PSShowComputerName".to_owned(), json!(true));
    }
}

fn unreachable_reason() -> String {
    "WinRM cannot complete the operation. Verify that the specified computer name is valid, that the computer is accessible over the network, and that a firewall exception for the WinRM service is enabled and allows access from this computer. By default, the WinRM firewall exception for public profiles limits access to remote computers within the same local subnet.".to_owned()
}

/// The data center of a Front End or Persistent Chat server the lab knows, by FQDN.
fn data_center_of(manifest: &LabManifest, computer: &str) -> Option<String> {
    manifest
        .front_end_servers
        .iter()
        .chain(&manifest.persistent_chat_servers)
        .find(|s| s.fqdn.eq_ignore_ascii_case(computer))
        .map(|s| s.data_center.clone())
}
