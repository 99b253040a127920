//! `Set-CsPersistentChatActiveServer` (reference H.3): which Persistent Chat servers of the pool accept
//! new connections, kept in cms.json.
//!
//! `-ActiveServers` is a PSListModifier: a value or list replaces the set, `@{Add=...}` /
//! `@{Remove=...}` / `@{Replace=...}` edit it, `$null` clears it. `-Swap` makes the inactive servers
//! active and the active ones inactive. There is deliberately no Get- counterpart: the real module
//! has none (reference H.3), so asking for one is CommandNotFoundException.

use crate::binding::{CmdletSpec, ParamSpec, ParamType};
use crate::cmdlets::Invocation;
use crate::error::ErrorRecord;
use crate::manifest::LabManifest;
use crate::parse::Value;

const LIST_MODIFIER: &str =
    "Microsoft.Rtc.Management.Xds.PSListModifier`1[Microsoft.Rtc.Management.Deployment.Core.Fqdn]";

pub(crate) static SPEC: CmdletSpec = CmdletSpec {
    name: "Set-CsPersistentChatActiveServer",
    type_name: "Microsoft.Rtc.Management.Internal.SetPersistentChatActiveServerCmdlet",
    params: &[
        ParamSpec {
            position: Some(0),
            ..ParamSpec::optional(
                "Identity",
                ParamType::String,
                "Microsoft.Rtc.Management.Xds.XdsGlobalRelativeIdentity",
            )
        },
        ParamSpec {
            sets: &["ActiveServers"],
            mandatory: true,
            allow_null: true,
            ..ParamSpec::optional("ActiveServers", ParamType::Raw, LIST_MODIFIER)
        },
        ParamSpec {
            sets: &["Swap"],
            mandatory: true,
            ..ParamSpec::switch("Swap")
        },
        ParamSpec::switch("Force"),
    ],
    default_set: Some("ActiveServers"),
    supports_should_process: true,
};

/// What `-ActiveServers` asks for.
#[derive(Debug, PartialEq)]
enum Modifier {
    Replace(Vec<String>),
    Edit {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .filter(|v| **v != Value::Null)
            .map(Value::to_ps_string)
            .collect(),
        other => vec![other.to_ps_string()],
    }
}

fn modifier(value: &Value) -> Result<Modifier, ErrorRecord> {
    let Value::Hashtable(entries) = value else {
        return Ok(Modifier::Replace(strings(value)));
    };
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut replace = None;
    for (key, value) in entries {
        match key.to_ascii_lowercase().as_str() {
            "add" => add.extend(strings(value)),
            "remove" => remove.extend(strings(value)),
            "replace" => replace = Some(strings(value)),
            _ => {
                return Err(ErrorRecord::type_conversion(
                    "ActiveServers",
                    "System.Collections.Hashtable",
                    "System.Collections.Hashtable",
                    LIST_MODIFIER,
                    SPEC.type_name,
                ));
            }
        }
    }
    Ok(match replace {
        Some(list) => Modifier::Replace(list),
        None => Modifier::Edit { add, remove },
    })
}

/// The pool's server with this FQDN, in the topology's spelling.
fn pool_server(manifest: &LabManifest, fqdn: &str) -> Result<String, ErrorRecord> {
    manifest
        .persistent_chat_servers
        .iter()
        .find(|s| s.fqdn.eq_ignore_ascii_case(fqdn.trim()))
        .map(|s| s.fqdn.clone())
        .ok_or_else(|| {
            // UNVERIFIED: the real cmdlet's text for a server outside the pool is not documented.
            ErrorRecord::new(
                "Microsoft.Rtc.Management.ManagementException",
                format!(
                    "\"{fqdn}\" is not a Persistent Chat Server in pool \"{}\".",
                    manifest.pool
                ),
                format!("InvalidActiveServer,{}", SPEC.type_name),
                "InvalidArgument",
                Some(fqdn.to_owned()),
            )
        })
}

pub(crate) fn run(inv: &mut Invocation<'_>) -> Result<(), ErrorRecord> {
    let manifest = inv.manifest()?;
    let identity = inv.bound.string("Identity");
    // The cmdlet reference's examples name the pool's one server collection `PChatServerCollection`
    // (reference H.3); the identity semantics are UNVERIFIED, so that name is accepted as well.
    if !identity
        .as_deref()
        .is_some_and(|i| i.eq_ignore_ascii_case("PChatServerCollection"))
    {
        inv.check_pool_identity(identity.as_deref(), &manifest)?;
    }
    let mut cms = inv.cms(&manifest)?;
    let active: Vec<String> = if inv.bound.switch("Swap") {
        manifest
            .persistent_chat_servers
            .iter()
            .filter(|s| {
                !cms.active_servers
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&s.fqdn))
            })
            .map(|s| s.fqdn.clone())
            .collect()
    } else {
        match modifier(inv.bound.get("ActiveServers").unwrap_or(&Value::Null))? {
            Modifier::Replace(list) => {
                let mut result: Vec<String> = Vec::new();
                for fqdn in list {
                    let server = pool_server(&manifest, &fqdn)?;
                    if !result.contains(&server) {
                        result.push(server);
                    }
                }
                result
            }
            Modifier::Edit { add, remove } => {
                let mut result = cms.active_servers.clone();
                for fqdn in &remove {
                    let server = pool_server(&manifest, fqdn)?;
                    result.retain(|a| !a.eq_ignore_ascii_case(&server));
                }
                for fqdn in &add {
                    let server = pool_server(&manifest, fqdn)?;
                    if !result.iter().any(|a| a.eq_ignore_ascii_case(&server)) {
                        result.push(server);
                    }
                }
                result
            }
        }
    };
    inv.verbose.push(format!(
        "Active Persistent Chat servers: {}.",
        if active.is_empty() {
            "none".to_owned()
        } else {
            active.join(", ")
        }
    ));
    inv.require_master(&manifest, &cms)?;
    cms.active_servers = active;
    Invocation::touch(&mut cms);
    inv.save_cms(&cms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn list_modifiers_read_like_psl_list_modifier() {
        let cases: Vec<(Value, Modifier)> = vec![
            (Value::Null, Modifier::Replace(vec![])),
            (s("a"), Modifier::Replace(vec!["a".to_owned()])),
            (
                Value::Array(vec![s("a"), s("b")]),
                Modifier::Replace(vec!["a".to_owned(), "b".to_owned()]),
            ),
            (
                Value::Hashtable(vec![("add".to_owned(), s("a"))]),
                Modifier::Edit {
                    add: vec!["a".to_owned()],
                    remove: vec![],
                },
            ),
            (
                Value::Hashtable(vec![(
                    "Remove".to_owned(),
                    Value::Array(vec![s("a"), s("b")]),
                )]),
                Modifier::Edit {
                    add: vec![],
                    remove: vec!["a".to_owned(), "b".to_owned()],
                },
            ),
            (
                Value::Hashtable(vec![("Replace".to_owned(), s("c"))]),
                Modifier::Replace(vec!["c".to_owned()]),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(modifier(&value).unwrap(), expected, "{value:?}");
        }
        assert!(modifier(&Value::Hashtable(vec![("Append".to_owned(), s("a"))])).is_err());
    }
}
