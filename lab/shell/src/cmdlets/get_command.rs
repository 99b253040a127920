//! `Get-Command`: CommandInfo objects for the commands visible in the session, rendered as the
//! protocol document specifies (`Name`, `CommandType`, `Source`, `Parameters`).
//!
//! A Skype for Business cmdlet is invisible until its module is imported, as the brief requires; the
//! real Windows PowerShell would auto-load the module from PSModulePath, which pcfail does not rely on.

use serde_json::json;

use crate::binding::{CmdletSpec, EnumType, ParamSpec, ParamType};
use crate::cmdlets::{ALL, Invocation, has_wildcard, wildcard_match};
use crate::error::ErrorRecord;

static COMMAND_TYPES: EnumType = EnumType {
    full_name: "System.Management.Automation.CommandTypes",
    names: &[
        "Alias",
        "Function",
        "Filter",
        "Cmdlet",
        "ExternalScript",
        "Application",
        "Script",
        "Workflow",
        "Configuration",
        "All",
    ],
};

pub(crate) static SPEC: CmdletSpec = CmdletSpec {
    name: "Get-Command",
    type_name: "Microsoft.PowerShell.Commands.GetCommandCommand",
    params: &[
        ParamSpec {
            position: Some(0),
            sets: &["AllCommandSet"],
            ..ParamSpec::optional("Name", ParamType::StringArray, "System.String[]")
        },
        ParamSpec {
            sets: &["CmdletSet"],
            ..ParamSpec::optional("Verb", ParamType::StringArray, "System.String[]")
        },
        ParamSpec {
            sets: &["CmdletSet"],
            ..ParamSpec::optional("Noun", ParamType::StringArray, "System.String[]")
        },
        ParamSpec {
            aliases: &["PSSnapin"],
            ..ParamSpec::optional("Module", ParamType::StringArray, "System.String[]")
        },
        ParamSpec {
            sets: &["AllCommandSet"],
            aliases: &["Type"],
            ..ParamSpec::optional(
                "CommandType",
                ParamType::Enum(&COMMAND_TYPES),
                "System.Management.Automation.CommandTypes",
            )
        },
        ParamSpec::optional("TotalCount", ParamType::Int, "System.Int32"),
        ParamSpec::switch("All"),
        ParamSpec::switch("ListImported"),
    ],
    default_set: Some("CmdletSet"),
    supports_should_process: false,
};

pub(crate) fn run(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let names = inv.bound.strings("Name");
    let modules = inv.bound.strings("Module");
    let verbs = inv.bound.strings("Verb");
    let nouns = inv.bound.strings("Noun");
    // Every command here is a cmdlet; asking for another type finds nothing.
    let type_ok = inv
        .bound
        .string("CommandType")
        .is_none_or(|t| t == "Cmdlet" || t == "All");
    let mut visible: Vec<_> = ALL
        .iter()
        .copied()
        .filter(|c| c.visible(inv.session))
        .collect();
    visible.sort_by_key(|c| c.spec().name);
    let filtered = |c: &crate::cmdlets::Cmdlet| {
        let name = c.spec().name;
        let (verb, noun) = name.split_once('-').unwrap_or((name, ""));
        type_ok
            && (modules.is_empty()
                || modules
                    .iter()
                    .any(|m| wildcard_match(m, c.source(inv.session))))
            && (verbs.is_empty() || verbs.iter().any(|v| wildcard_match(v, verb)))
            && (nouns.is_empty() || nouns.iter().any(|n| wildcard_match(n, noun)))
    };
    let mut found = Vec::new();
    if names.is_empty() {
        found.extend(visible.iter().copied().filter(|c| filtered(c)));
    } else {
        for name in &names {
            let matches: Vec<_> = visible
                .iter()
                .copied()
                .filter(|c| wildcard_match(name, c.spec().name) && filtered(c))
                .collect();
            if matches.is_empty() && !has_wildcard(name) {
                return Err(ErrorRecord {
                    fully_qualified_error_id:
                        "CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand"
                            .to_owned(),
                    ..ErrorRecord::command_not_found(name)
                });
            }
            for cmdlet in matches {
                if !found.contains(&cmdlet) {
                    found.push(cmdlet);
                }
            }
        }
    }
    if let Some(limit) = inv.bound.get("TotalCount").and_then(|v| match v {
        crate::parse::Value::Int(i) if *i >= 0 => usize::try_from(*i).ok(),
        _ => None,
    }) {
        found.truncate(limit);
    }
    for cmdlet in found {
        let spec = cmdlet.spec();
        let parameters: Vec<&str> = spec.all_params().map(|p| p.name).collect();
        inv.output.push(json!({
            "Name": spec.name,
            "CommandType": "Cmdlet",
            "Source": cmdlet.source(inv.session),
            "Parameters": parameters,
        }));
    }
    Ok(())
}
