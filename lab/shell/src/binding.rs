//! Parameter binding: matches a parsed [`Command`]'s arguments to a cmdlet's declared parameters the
//! way PowerShell's binder does, and raises its errors in its order.
//!
//! Covered: exact and unambiguous-prefix parameter names (and the common aliases such as `-ea`),
//! `-Switch` / `-Switch:$false`, `-Name value` / `-Name:value`, positional arguments, parameter sets
//! (with the default set as tie-breaker), mandatory parameters in NonInteractive mode, null and
//! empty-string checks on mandatory parameters, and conversion to enums, strings, string arrays and
//! hashtables. Not covered: pipeline input, dynamic parameters, validation attributes beyond the
//! above (the cmdlets check their own values).

use crate::error::ErrorRecord;
use crate::parse::{Arg, Command, Value};

/// An enum type a parameter converts to, with its member names in declaration order.
#[derive(Debug)]
pub(crate) struct EnumType {
    pub full_name: &'static str,
    pub names: &'static [&'static str],
}

/// What a parameter's argument is converted to.
#[derive(Debug)]
pub(crate) enum ParamType {
    Switch,
    /// Any scalar, converted to its string form.
    String,
    /// A string or an array of them.
    StringArray,
    Int,
    Enum(&'static EnumType),
    Hashtable,
    /// Kept as written; the cmdlet interprets it (PSListModifier, PSObject).
    Raw,
}

/// One declared parameter.
#[derive(Debug)]
pub(crate) struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// The .NET type shown in "Missing an argument" errors.
    pub type_name: &'static str,
    pub position: Option<u8>,
    /// Parameter sets this parameter belongs to; empty means all of them.
    pub sets: &'static [&'static str],
    pub mandatory: bool,
    /// `[AllowNull()]`: a mandatory parameter that accepts `$null` (e.g. `-ActiveServers $null`).
    pub allow_null: bool,
    pub aliases: &'static [&'static str],
}

impl ParamSpec {
    /// An optional parameter in all sets, without position or aliases.
    pub(crate) const fn optional(
        name: &'static str,
        ty: ParamType,
        type_name: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            ty,
            type_name,
            position: None,
            sets: &[],
            mandatory: false,
            allow_null: false,
            aliases: &[],
        }
    }

    pub(crate) const fn switch(name: &'static str) -> Self {
        Self::optional(
            name,
            ParamType::Switch,
            "System.Management.Automation.SwitchParameter",
        )
    }

    fn in_set(&self, set: &str) -> bool {
        self.sets.is_empty() || self.sets.contains(&set)
    }
}

/// A cmdlet's declaration, as Get-Command and the binder see it.
#[derive(Debug)]
pub(crate) struct CmdletSpec {
    pub name: &'static str,
    /// The implementing .NET type: the second half of every FullyQualifiedErrorId it raises.
    pub type_name: &'static str,
    pub params: &'static [ParamSpec],
    pub default_set: Option<&'static str>,
    /// Adds -WhatIf and -Confirm.
    pub supports_should_process: bool,
}

static ACTION_PREFERENCE: EnumType = EnumType {
    full_name: "System.Management.Automation.ActionPreference",
    names: &[
        "SilentlyContinue",
        "Stop",
        "Continue",
        "Inquire",
        "Ignore",
        "Suspend",
    ],
};

/// PowerShell's common parameters, in the order CommandInfo.Parameters lists them.
static COMMON: &[ParamSpec] = &[
    ParamSpec {
        aliases: &["vb"],
        ..ParamSpec::switch("Verbose")
    },
    ParamSpec {
        aliases: &["db"],
        ..ParamSpec::switch("Debug")
    },
    ParamSpec {
        aliases: &["ea"],
        ..ParamSpec::optional(
            "ErrorAction",
            ParamType::Enum(&ACTION_PREFERENCE),
            "System.Management.Automation.ActionPreference",
        )
    },
    ParamSpec {
        aliases: &["wa"],
        ..ParamSpec::optional(
            "WarningAction",
            ParamType::Enum(&ACTION_PREFERENCE),
            "System.Management.Automation.ActionPreference",
        )
    },
    ParamSpec {
        aliases: &["infa"],
        ..ParamSpec::optional(
            "InformationAction",
            ParamType::Enum(&ACTION_PREFERENCE),
            "System.Management.Automation.ActionPreference",
        )
    },
    ParamSpec {
        aliases: &["ev"],
        ..ParamSpec::optional("ErrorVariable", ParamType::String, "System.String")
    },
    ParamSpec {
        aliases: &["wv"],
        ..ParamSpec::optional("WarningVariable", ParamType::String, "System.String")
    },
    ParamSpec {
        aliases: &["iv"],
        ..ParamSpec::optional("InformationVariable", ParamType::String, "System.String")
    },
    ParamSpec {
        aliases: &["ov"],
        ..ParamSpec::optional("OutVariable", ParamType::String, "System.String")
    },
    ParamSpec {
        aliases: &["ob"],
        ..ParamSpec::optional("OutBuffer", ParamType::Int, "System.Int32")
    },
    ParamSpec {
        aliases: &["pv"],
        ..ParamSpec::optional("PipelineVariable", ParamType::String, "System.String")
    },
];

static SHOULD_PROCESS: &[ParamSpec] = &[
    ParamSpec {
        aliases: &["wi"],
        ..ParamSpec::switch("WhatIf")
    },
    ParamSpec {
        aliases: &["cf"],
        ..ParamSpec::switch("Confirm")
    },
];

impl CmdletSpec {
    /// Every parameter, the cmdlet's own first, then the common ones.
    pub(crate) fn all_params(&self) -> impl Iterator<Item = &'static ParamSpec> {
        let should_process: &'static [ParamSpec] = if self.supports_should_process {
            SHOULD_PROCESS
        } else {
            &[]
        };
        self.params
            .iter()
            .chain(COMMON.iter())
            .chain(should_process.iter())
    }

    fn resolve(&self, typed: &str) -> Result<&'static ParamSpec, ErrorRecord> {
        if let Some(exact) = self
            .all_params()
            .find(|p| p.name.eq_ignore_ascii_case(typed))
        {
            return Ok(exact);
        }
        if let Some(alias) = self
            .all_params()
            .find(|p| p.aliases.iter().any(|a| a.eq_ignore_ascii_case(typed)))
        {
            return Ok(alias);
        }
        let lower = typed.to_ascii_lowercase();
        let matches: Vec<&'static ParamSpec> = self
            .all_params()
            .filter(|p| !typed.is_empty() && p.name.to_ascii_lowercase().starts_with(&lower))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(ErrorRecord::named_parameter_not_found(
                typed,
                self.type_name,
            )),
            many => {
                let names: Vec<&str> = many.iter().map(|p| p.name).collect();
                Err(ErrorRecord::ambiguous_parameter(
                    typed,
                    &names,
                    self.type_name,
                ))
            }
        }
    }
}

/// The outcome of binding: the chosen parameter set and the converted values by canonical name.
#[derive(Debug, Default)]
pub(crate) struct Bound {
    pub set: Option<&'static str>,
    values: Vec<(&'static str, Value)>,
}

impl Bound {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[cfg(test)]
    pub(crate) fn is_bound(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A switch's value: false when absent.
    pub(crate) fn switch(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// A string parameter's value; `None` when absent or `$null`.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        match self.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.to_ps_string()),
        }
    }

    /// A string-array parameter's values; empty when absent.
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(Value::to_ps_string).collect(),
            Some(v) => vec![v.to_ps_string()],
        }
    }
}

/// Binds `command`'s arguments to `spec`. A missing mandatory parameter is always the NonInteractive
/// error: an interactive host would prompt for it, which pcfail's host never is.
pub(crate) fn bind(spec: &CmdletSpec, command: &Command) -> Result<Bound, ErrorRecord> {
    let mut bound: Vec<(&'static ParamSpec, Value)> = Vec::new();
    let mut positionals: Vec<Value> = Vec::new();
    let mut args = command.args.iter().peekable();
    while let Some(arg) = args.next() {
        match arg {
            Arg::Value(v) => positionals.push(v.clone()),
            Arg::Parameter { name, value } => {
                let param = spec.resolve(name)?;
                if bound.iter().any(|(p, _)| p.name == param.name) {
                    return Err(ErrorRecord::parameter_already_bound(
                        param.name,
                        spec.type_name,
                    ));
                }
                let raw = match (&param.ty, value) {
                    (ParamType::Switch, None) => Value::Bool(true),
                    (_, Some(v)) => v.clone(),
                    (_, None) => match args.peek() {
                        Some(Arg::Value(_)) => match args.next() {
                            Some(Arg::Value(v)) => v.clone(),
                            _ => unreachable!("peeked a value"),
                        },
                        _ => {
                            return Err(ErrorRecord::missing_argument(
                                param.name,
                                param.type_name,
                                spec.type_name,
                            ));
                        }
                    },
                };
                bound.push((param, convert(spec, param, raw)?));
            }
        }
    }

    // Positional arguments fill the unbound positional parameters in position order.
    let mut positional_params: Vec<&'static ParamSpec> = spec
        .params
        .iter()
        .filter(|p| p.position.is_some())
        .collect();
    positional_params.sort_by_key(|p| p.position);
    for value in positionals {
        let next = positional_params
            .iter()
            .find(|p| !bound.iter().any(|(b, _)| b.name == p.name));
        match next {
            Some(param) => {
                let converted = convert(spec, param, value)?;
                bound.push((param, converted));
            }
            None => {
                return Err(ErrorRecord::positional_parameter_not_found(
                    &value.to_ps_string(),
                    spec.type_name,
                ));
            }
        }
    }

    let set = resolve_set(spec, &bound)?;
    let missing: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| {
            p.mandatory
                && set.is_none_or(|s| p.in_set(s))
                && !bound.iter().any(|(b, _)| b.name == p.name)
        })
        .map(|p| p.name)
        .collect();
    if !missing.is_empty() {
        return Err(ErrorRecord::missing_mandatory(&missing, spec.type_name));
    }
    Ok(Bound {
        set,
        values: bound.into_iter().map(|(p, v)| (p.name, v)).collect(),
    })
}

fn resolve_set(
    spec: &CmdletSpec,
    bound: &[(&'static ParamSpec, Value)],
) -> Result<Option<&'static str>, ErrorRecord> {
    let mut declared: Vec<&'static str> = Vec::new();
    for set in spec.params.iter().flat_map(|p| p.sets.iter()) {
        if !declared.contains(set) {
            declared.push(set);
        }
    }
    if declared.is_empty() {
        return Ok(None);
    }
    let candidates: Vec<&'static str> = declared
        .into_iter()
        .filter(|set| bound.iter().all(|(p, _)| p.in_set(set)))
        .collect();
    let satisfied: Vec<&'static str> = candidates
        .iter()
        .copied()
        .filter(|set| {
            spec.params
                .iter()
                .filter(|p| p.mandatory && p.in_set(set))
                .all(|p| bound.iter().any(|(b, _)| b.name == p.name))
        })
        .collect();
    match (candidates.as_slice(), satisfied.as_slice()) {
        ([], _) => Err(ErrorRecord::ambiguous_parameter_set(spec.type_name)),
        ([only], _) => Ok(Some(only)),
        (_, [only]) => Ok(Some(only)),
        _ => match spec.default_set.filter(|d| candidates.contains(d)) {
            Some(default) => Ok(Some(default)),
            None => Err(ErrorRecord::ambiguous_parameter_set(spec.type_name)),
        },
    }
}

fn convert(spec: &CmdletSpec, param: &ParamSpec, value: Value) -> Result<Value, ErrorRecord> {
    // Mandatory parameters refuse null and "" unless they allow it, which none of ours do.
    if param.mandatory {
        match &value {
            Value::Null if !param.allow_null => {
                return Err(ErrorRecord::null_not_allowed(param.name, spec.type_name));
            }
            Value::String(s) if s.is_empty() && !matches!(param.ty, ParamType::Switch) => {
                return Err(ErrorRecord::empty_string_not_allowed(
                    param.name,
                    spec.type_name,
                ));
            }
            _ => {}
        }
    }
    let mismatch = |value: &Value, to: &str| {
        ErrorRecord::type_conversion(
            param.name,
            &value.to_ps_string(),
            value.type_name(),
            to,
            spec.type_name,
        )
    };
    match &param.ty {
        ParamType::Switch => match value {
            Value::Bool(b) => Ok(Value::Bool(b)),
            Value::Int(i) => Ok(Value::Bool(i != 0)),
            Value::Null => Ok(Value::Bool(false)),
            other => Err(mismatch(
                &other,
                "System.Management.Automation.SwitchParameter",
            )),
        },
        ParamType::String => match value {
            Value::Hashtable(_) => Err(mismatch(&value, "System.String")),
            Value::Null => Ok(Value::Null),
            other => Ok(Value::String(other.to_ps_string())),
        },
        ParamType::StringArray => match value {
            Value::Null => Ok(Value::Null),
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|v| Value::String(v.to_ps_string()))
                    .collect(),
            )),
            Value::Hashtable(_) => Err(mismatch(&value, "System.String[]")),
            other => Ok(Value::Array(vec![Value::String(other.to_ps_string())])),
        },
        ParamType::Int => match value {
            Value::Int(i) => Ok(Value::Int(i)),
            Value::String(ref s) => s
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| mismatch(&value, "System.Int32")),
            other => Err(mismatch(&other, "System.Int32")),
        },
        ParamType::Enum(enum_type) => match value {
            Value::String(ref s) => enum_type
                .names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(s.trim()))
                .map(|n| Value::String((*n).to_owned()))
                .ok_or_else(|| {
                    ErrorRecord::enum_conversion(
                        param.name,
                        s,
                        enum_type.full_name,
                        enum_type.names,
                        spec.type_name,
                    )
                }),
            // An integer converts to the member with that value; ours are numbered from 0 in
            // declaration order (UNVERIFIED for the Skype for Business enums).
            Value::Int(i) => usize::try_from(i)
                .ok()
                .and_then(|i| enum_type.names.get(i))
                .map(|n| Value::String((*n).to_owned()))
                .ok_or_else(|| {
                    ErrorRecord::enum_conversion(
                        param.name,
                        &i.to_string(),
                        enum_type.full_name,
                        enum_type.names,
                        spec.type_name,
                    )
                }),
            Value::Null => Err(ErrorRecord::new(
                "System.Management.Automation.ParameterBindingException",
                format!(
                    "Cannot bind parameter '{}'. Cannot convert null to type \"{}\".",
                    param.name, enum_type.full_name
                ),
                format!("CannotConvertArgumentNoMessage,{}", spec.type_name),
                "InvalidArgument",
                None,
            )),
            other => Err(mismatch(&other, enum_type.full_name)),
        },
        ParamType::Hashtable => match value {
            Value::Hashtable(_) | Value::Null => Ok(value),
            other => Err(mismatch(&other, "System.Collections.Hashtable")),
        },
        ParamType::Raw => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_command;

    static COLOR: EnumType = EnumType {
        full_name: "Test.Color",
        names: &["Red", "Green"],
    };

    static SPEC: CmdletSpec = CmdletSpec {
        name: "Set-Thing",
        type_name: "Test.SetThingCmdlet",
        params: &[
            ParamSpec {
                position: Some(0),
                sets: &["ByName"],
                ..ParamSpec::optional("Identity", ParamType::String, "System.String")
            },
            ParamSpec {
                sets: &["ByObject"],
                mandatory: true,
                ..ParamSpec::optional(
                    "Instance",
                    ParamType::Raw,
                    "System.Management.Automation.PSObject",
                )
            },
            ParamSpec::optional("Color", ParamType::Enum(&COLOR), "Test.Color"),
            ParamSpec {
                mandatory: true,
                ..ParamSpec::optional("Share", ParamType::String, "System.String")
            },
            ParamSpec::optional("Map", ParamType::Hashtable, "System.Collections.Hashtable"),
            ParamSpec::optional("Identities", ParamType::StringArray, "System.String[]"),
            ParamSpec::switch("Force"),
        ],
        default_set: Some("ByName"),
        supports_should_process: true,
    };

    fn bind_text(text: &str) -> Result<Bound, ErrorRecord> {
        bind(&SPEC, &parse_command(text).unwrap().unwrap())
    }

    #[test]
    fn named_positional_and_switch_arguments_bind() {
        let bound = bind_text(
            "Set-Thing 'pool' -Share:'s' -col green -Force -Confirm:$false -Identities a,b",
        )
        .unwrap();
        assert_eq!(bound.set, Some("ByName"));
        assert_eq!(bound.string("Identity").as_deref(), Some("pool"));
        assert_eq!(bound.string("Color").as_deref(), Some("Green"));
        assert!(bound.switch("Force"));
        assert!(!bound.switch("Confirm"));
        assert!(bound.is_bound("Confirm"));
        assert_eq!(bound.strings("Identities"), vec!["a", "b"]);
    }

    #[test]
    fn binding_errors_match_powershell_word_for_word() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "Set-Thing -Share s -Bogus 1",
                "A parameter cannot be found that matches parameter name 'Bogus'.",
                "NamedParameterNotFound,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -I x",
                "Parameter cannot be processed because the parameter name 'I' is ambiguous. Possible matches include: -Identity -Instance -Identities -InformationAction -InformationVariable.",
                "AmbiguousParameter,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -Force -Force",
                "Cannot bind parameter because parameter 'Force' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\".",
                "ParameterAlreadyBound,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share",
                "Missing an argument for parameter 'Share'. Specify a parameter of type 'System.String' and try again.",
                "MissingArgument,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s a b",
                "A positional parameter cannot be found that accepts argument 'b'.",
                "PositionalParameterNotFound,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -Identity a -Instance b",
                "Parameter set cannot be resolved using the specified named parameters.",
                "AmbiguousParameterSet,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing",
                "Cannot process command because of one or more missing mandatory parameters: Share.",
                "MissingMandatoryParameter,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share $null",
                "Cannot bind argument to parameter 'Share' because it is null.",
                "ParameterArgumentValidationErrorNullNotAllowed,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share ''",
                "Cannot bind argument to parameter 'Share' because it is an empty string.",
                "ParameterArgumentValidationErrorEmptyStringNotAllowed,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -Color Blue",
                "Cannot bind parameter 'Color'. Cannot convert value \"Blue\" to type \"Test.Color\". Error: \"Unable to match the identifier name Blue to a valid enumerator name. Specify one of the following enumerator names and try again:\r\nRed, Green\"",
                "CannotConvertArgumentNoMessage,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -Map 'x'",
                "Cannot bind parameter 'Map'. Cannot convert the \"x\" value of type \"System.String\" to type \"System.Collections.Hashtable\".",
                "CannotConvertArgumentNoMessage,Test.SetThingCmdlet",
            ),
            (
                "Set-Thing -Share s -ErrorAction Explode",
                "Cannot bind parameter 'ErrorAction'. Cannot convert value \"Explode\" to type \"System.Management.Automation.ActionPreference\". Error: \"Unable to match the identifier name Explode to a valid enumerator name. Specify one of the following enumerator names and try again:\r\nSilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend\"",
                "CannotConvertArgumentNoMessage,Test.SetThingCmdlet",
            ),
        ];
        for (text, message, fqid) in cases {
            let err = bind_text(text).expect_err(text);
            assert_eq!(err.message, *message, "{text}");
            assert_eq!(err.fully_qualified_error_id, *fqid, "{text}");
            assert_eq!(
                err.exception_type, "System.Management.Automation.ParameterBindingException",
                "{text}"
            );
        }
    }

    #[test]
    fn common_parameter_aliases_and_integer_enums_bind() {
        let bound = bind_text("Set-Thing -Share s -ea Stop -vb -Color 1").unwrap();
        assert_eq!(bound.string("ErrorAction").as_deref(), Some("Stop"));
        assert!(bound.switch("Verbose"));
        assert_eq!(bound.string("Color").as_deref(), Some("Green"));
    }
}
