//! The commands the lab shell knows: a closed enum, one file per cmdlet (or pair of cmdlets), and the
//! pieces they share (the [`Invocation`] they write into, pool identity resolution, lab errors).
//!
//! Each file declares its cmdlets' [`CmdletSpec`]s (the real parameter names and sets, used both by
//! the binder and by Get-Command) and a `run` function. Adding a cmdlet means one file, one variant,
//! and the match arms the compiler points at.

mod active_server;
mod chat_state;
mod get_command;
mod import_module;
mod management_store;
mod mirror_database;
mod test_message;

use std::path::Path;

use serde_json::Value as Json;

use crate::binding::{Bound, CmdletSpec};
use crate::cms::Cms;
use crate::error::ErrorRecord;
use crate::manifest::LabManifest;
use crate::sql::Sql;

/// Where a command comes from, which decides when it is visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Microsoft.PowerShell.Core: always there.
    Core,
    /// The SkypeForBusiness (or Lync) module: only after Import-Module.
    Module,
}

/// Every command the lab shell implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmdlet {
    ImportModule,
    GetCommand,
    GetPersistentChatState,
    SetPersistentChatState,
    SetPersistentChatActiveServer,
    TestPersistentChatMessage,
    InstallMirrorDatabase,
    UninstallMirrorDatabase,
    GetManagementStoreReplicationStatus,
    InvokeManagementServerFailover,
}

pub(crate) const ALL: &[Cmdlet] = &[
    Cmdlet::ImportModule,
    Cmdlet::GetCommand,
    Cmdlet::GetPersistentChatState,
    Cmdlet::SetPersistentChatState,
    Cmdlet::SetPersistentChatActiveServer,
    Cmdlet::TestPersistentChatMessage,
    Cmdlet::InstallMirrorDatabase,
    Cmdlet::UninstallMirrorDatabase,
    Cmdlet::GetManagementStoreReplicationStatus,
    Cmdlet::InvokeManagementServerFailover,
];

/// Real cmdlets of the SkypeForBusiness module that a failover runbook might reach for but that the lab
/// does not simulate. Naming them "not recognized" would be a lie about the real module, so they fail
/// with `pcfail.NotSimulated` instead.
const NOT_SIMULATED: &[&str] = &[
    "Get-CsService",
    "Get-CsPool",
    "Get-CsDatabaseMirrorState",
    "Invoke-CsDatabaseFailover",
    "Install-CsDatabase",
    "Get-CsPersistentChatEndpoint",
    "Get-CsPersistentChatRoom",
    "Get-CsTopology",
    "Enable-CsTopology",
];

impl Cmdlet {
    pub(crate) fn spec(self) -> &'static CmdletSpec {
        match self {
            Cmdlet::ImportModule => &import_module::SPEC,
            Cmdlet::GetCommand => &get_command::SPEC,
            Cmdlet::GetPersistentChatState => &chat_state::GET_SPEC,
            Cmdlet::SetPersistentChatState => &chat_state::SET_SPEC,
            Cmdlet::SetPersistentChatActiveServer => &active_server::SPEC,
            Cmdlet::TestPersistentChatMessage => &test_message::SPEC,
            Cmdlet::InstallMirrorDatabase => &mirror_database::INSTALL_SPEC,
            Cmdlet::UninstallMirrorDatabase => &mirror_database::UNINSTALL_SPEC,
            Cmdlet::GetManagementStoreReplicationStatus => &management_store::STATUS_SPEC,
            Cmdlet::InvokeManagementServerFailover => &management_store::FAILOVER_SPEC,
        }
    }

    pub(crate) fn origin(self) -> Origin {
        match self {
            Cmdlet::ImportModule | Cmdlet::GetCommand => Origin::Core,
            _ => Origin::Module,
        }
    }

    /// Whether the cmdlet asks "Are you sure?" unless given `-Force` or `-Confirm:$false`.
    /// UNVERIFIED which Skype for Business cmdlets have a high ConfirmImpact: the pool-wide state change
    /// and the mirror removal are the likely ones; -Confirm (true) makes any of them ask.
    pub(crate) fn confirms_by_default(self) -> bool {
        matches!(
            self,
            Cmdlet::SetPersistentChatState
                | Cmdlet::UninstallMirrorDatabase
                | Cmdlet::InvokeManagementServerFailover
        )
    }

    /// Case-insensitive lookup by name among the commands visible in `session`.
    pub(crate) fn find(name: &str, session: &Session) -> Option<Cmdlet> {
        ALL.iter()
            .copied()
            .find(|c| c.spec().name.eq_ignore_ascii_case(name) && c.visible(session))
    }

    pub(crate) fn visible(self, session: &Session) -> bool {
        self.origin() == Origin::Core || session.module.is_some()
    }

    /// The module name Get-Command shows as Source.
    pub(crate) fn source(self, session: &Session) -> &'static str {
        match self.origin() {
            Origin::Core => "Microsoft.PowerShell.Core",
            Origin::Module => session.module.unwrap_or("SkypeForBusiness"),
        }
    }

    pub(crate) fn run(self, inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
        match self {
            Cmdlet::ImportModule => import_module::run(inv),
            Cmdlet::GetCommand => get_command::run(inv),
            Cmdlet::GetPersistentChatState => chat_state::run_get(inv),
            Cmdlet::SetPersistentChatState => chat_state::run_set(inv),
            Cmdlet::SetPersistentChatActiveServer => active_server::run(inv),
            Cmdlet::TestPersistentChatMessage => test_message::run(inv),
            Cmdlet::InstallMirrorDatabase => mirror_database::run_install(inv),
            Cmdlet::UninstallMirrorDatabase => mirror_database::run_uninstall(inv),
            Cmdlet::GetManagementStoreReplicationStatus => management_store::run_status(inv),
            Cmdlet::InvokeManagementServerFailover => management_store::run_failover(inv),
        }
    }
}

/// Whether `name` is a real module cmdlet the lab does not simulate (only once the module is loaded).
pub(crate) fn is_not_simulated(name: &str, session: &Session) -> bool {
    session.module.is_some() && NOT_SIMULATED.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// State that lives as long as the shell process: what PowerShell's session state would hold.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The imported module's canonical name, `SkypeForBusiness` or `Lync`.
    pub module: Option<&'static str>,
}

/// One running command: its bound parameters, what it can reach, and what it writes.
pub(crate) struct Invocation<'a> {
    pub lab_dir: &'a Path,
    pub session: &'a mut Session,
    pub sql: &'a Sql,
    pub bound: Bound,
    pub spec: &'static CmdletSpec,
    /// Objects written to the pipeline.
    pub output: Vec<Json>,
    pub warnings: Vec<String>,
    /// Verbose records; the shell keeps them only under -Verbose.
    pub verbose: Vec<String>,
    /// Text written straight to the host (stray stdout lines).
    pub host: Vec<String>,
    /// Text written to stderr.
    pub stderr: Vec<String>,
}

impl Invocation<'_> {
    pub(crate) fn manifest(&self) -> Result<LabManifest, ErrorRecord> {
        LabManifest::load(self.lab_dir).map_err(|e| lab_error(e.to_string()))
    }

    pub(crate) fn cms(&self, manifest: &LabManifest) -> Result<Cms, ErrorRecord> {
        Cms::load(self.lab_dir, manifest).map_err(|e| lab_error(e.to_string()))
    }

    pub(crate) fn save_cms(&self, cms: &Cms) -> Result<(), ErrorRecord> {
        cms.save(self.lab_dir).map_err(|e| lab_error(e.to_string()))
    }

    /// The identity error this cmdlet raises for a pool it cannot find.
    pub(crate) fn identity_not_found(&self, identity: &str) -> ErrorRecord {
        // UNVERIFIED: the real text for an unknown Persistent Chat identity is not documented; this is
        // the management object wording the Cs cmdlets use for unknown identities.
        ErrorRecord::new(
            "Microsoft.Rtc.Management.ManagementException",
            format!("Management object not found for identity \"{identity}\"."),
            format!("IdentityNotFound,{}", self.spec.type_name),
            "ObjectNotFound",
            Some(identity.to_owned()),
        )
    }

    /// Checks that `identity` (if given) names the lab's pool. Both documented forms are accepted,
    /// `service:<fqdn>` and `PersistentChatServer:<fqdn>` (reference H.1: UNVERIFIED which the real
    /// cmdlet takes, so the lab variant `pool_identity` can restrict it to one), case-insensitively
    /// and with blanks after the colon tolerated, because Microsoft's own failback example writes
    /// `"service: lyncpc..."`.
    pub(crate) fn check_pool_identity(
        &self,
        identity: Option<&str>,
        manifest: &LabManifest,
    ) -> Result<(), ErrorRecord> {
        let Some(identity) = identity else {
            return Ok(());
        };
        let forms: &[&str] = match manifest.variant("pool_identity") {
            Some("service") => &["service:"],
            Some("persistentchatserver") => &["PersistentChatServer:"],
            _ => &["service:", "PersistentChatServer:"],
        };
        let fqdn = forms.iter().find_map(|prefix| {
            let head = identity.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| identity[prefix.len()..].trim())
        });
        match fqdn {
            Some(fqdn) if fqdn.eq_ignore_ascii_case(&manifest.pool) => Ok(()),
            _ => Err(self.identity_not_found(identity)),
        }
    }
}

/// The lab itself is broken (lab.json unreadable, cms.json corrupt): not something a real cmdlet says.
pub(crate) fn lab_error(message: String) -> ErrorRecord {
    ErrorRecord::new(
        "pcfail.LabError",
        message,
        "pcfail.LabError",
        "ResourceUnavailable",
        None,
    )
}

/// The identity objects carry: `service:<pool fqdn>`, as the HA/DR runbook writes it, or
/// `PersistentChatServer:<pool fqdn>` where the lab variant `pool_identity` says that is the only form
/// the cmdlets accept (so a client reading the identity back learns the form that works).
pub(crate) fn pool_identity(manifest: &LabManifest) -> String {
    match manifest.variant("pool_identity") {
        Some("persistentchatserver") => format!("PersistentChatServer:{}", manifest.pool),
        _ => format!("service:{}", manifest.pool),
    }
}

/// PowerShell's `-like` wildcards (`*`, `?`), case-insensitive. Character classes are not supported.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_powershell_like() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "*.litwareinc.com",
                "service:atl-cs-001.litwareinc.com",
                true,
            ),
            ("*.contoso.com", "service:atl-cs-001.litwareinc.com", false),
            ("Get-Cs*", "get-cspersistentchatstate", true),
            ("?et-Command", "Get-Command", true),
            ("Get-Command", "Get-Commands", false),
            ("*", "", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, text),
                *expected,
                "{pattern} vs {text}"
            );
        }
    }
}
