//! `Import-Module`: makes the Skype for Business cmdlets visible.
//!
//! Only the two module names a Persistent Chat deployment has are known: `SkypeForBusiness` (SfB Server
//! 2015) and `Lync` (Lync Server 2013), case-insensitively (reference H.6). Like the real module, the
//! first import writes a warning straight to the host, which exercises pcfail's noise handling.

use crate::binding::{CmdletSpec, ParamSpec, ParamType};
use crate::cmdlets::Invocation;
use crate::error::ErrorRecord;

pub(crate) static SPEC: CmdletSpec = CmdletSpec {
    name: "Import-Module",
    type_name: "Microsoft.PowerShell.Commands.ImportModuleCommand",
    params: &[
        ParamSpec {
            position: Some(0),
            mandatory: true,
            ..ParamSpec::optional("Name", ParamType::StringArray, "System.String[]")
        },
        ParamSpec::switch("Global"),
        ParamSpec::optional("Prefix", ParamType::String, "System.String"),
        ParamSpec::switch("Force"),
        ParamSpec::switch("DisableNameChecking"),
        ParamSpec::switch("NoClobber"),
        ParamSpec::optional("Scope", ParamType::String, "System.String"),
    ],
    default_set: None,
    supports_should_process: false,
};

const MODULES: &[&str] = &["SkypeForBusiness", "Lync"];

pub(crate) fn run(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    for name in inv.bound.strings("Name") {
        let Some(module) = MODULES
            .iter()
            .copied()
            .find(|m| m.eq_ignore_ascii_case(name.trim()))
        else {
            return Err(ErrorRecord::new(
                "System.IO.FileNotFoundException",
                format!(
                    "The specified module '{name}' was not loaded because no valid module file was found in any module directory."
                ),
                "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
                "ResourceUnavailable",
                Some(name),
            ));
        };
        let first_time = inv.session.module.is_none() || inv.bound.switch("Force");
        inv.session.module.get_or_insert(module);
        inv.verbose.push(format!("Loading module from path 'C:\\Program Files\\Common Files\\Skype for Business Server 2015\\Modules\\{module}\\{module}.psd1'."));
        if first_time && !inv.bound.switch("DisableNameChecking") {
            inv.stderr.push(format!(
                "WARNING: The names of some imported commands from the module '{module}' include unapproved verbs that might make \
                 them less discoverable. To find the commands with unapproved verbs, run the Import-Module command again with the \
                 Verbose parameter. For a list of approved verbs, type Get-Verb."
            ));
        }
    }
    Ok(())
}
