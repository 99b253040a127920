//! [`ErrorRecord`]: a failed command as the host protocol reports it, plus constructors for the
//! errors PowerShell itself raises (command lookup, parameter binding, prompts in NonInteractive
//! mode) with their exact texts, exception types, categories and FullyQualifiedErrorIds.
//!
//! Cmdlet-specific errors (unknown pool, SQL failures) are built next to the cmdlet that raises them.
//! Texts are Windows PowerShell 5.1's, since the SkypeForBusiness module runs only there.

use serde::Serialize;
use thiserror::Error;

/// One PowerShell ErrorRecord, shaped as the protocol's `error` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Error)]
#[error("{message}")]
pub(crate) struct ErrorRecord {
    /// The exception's full .NET type name.
    #[serde(rename = "type")]
    pub exception_type: String,
    pub message: String,
    pub fully_qualified_error_id: String,
    /// The ErrorCategory name, e.g. `ObjectNotFound`.
    pub category: String,
    /// The TargetObject as a string, or null.
    pub target: Option<String>,
}

const PARAMETER_BINDING_EXCEPTION: &str = "System.Management.Automation.ParameterBindingException";

impl ErrorRecord {
    pub(crate) fn new(
        exception_type: &str,
        message: impl Into<String>,
        fully_qualified_error_id: impl Into<String>,
        category: &str,
        target: Option<String>,
    ) -> Self {
        ErrorRecord {
            exception_type: exception_type.to_owned(),
            message: message.into(),
            fully_qualified_error_id: fully_qualified_error_id.into(),
            category: category.to_owned(),
            target,
        }
    }

    /// What a script's `throw "<message>"` raises: a RuntimeException whose FullyQualifiedErrorId is
    /// the message itself (host.ps1 throws these about its remoting session).
    pub(crate) fn thrown(message: &str) -> Self {
        ErrorRecord::new(
            "System.Management.Automation.RuntimeException",
            message,
            message,
            "OperationStopped",
            None,
        )
    }

    /// The command name resolves to nothing.
    pub(crate) fn command_not_found(name: &str) -> Self {
        ErrorRecord::new(
            "System.Management.Automation.CommandNotFoundException",
            format!(
                "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. \
                 Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
            ),
            "CommandNotFoundException",
            "ObjectNotFound",
            Some(name.to_owned()),
        )
    }

    /// A ParameterBindingException with `id` as the first part of its FullyQualifiedErrorId.
    fn binding(message: String, id: &str, cmdlet_type: &str, category: &str) -> Self {
        ErrorRecord::new(
            PARAMETER_BINDING_EXCEPTION,
            message,
            format!("{id},{cmdlet_type}"),
            category,
            None,
        )
    }

    pub(crate) fn named_parameter_not_found(name: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!("A parameter cannot be found that matches parameter name '{name}'."),
            "NamedParameterNotFound",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn ambiguous_parameter(name: &str, matches: &[&str], cmdlet_type: &str) -> Self {
        let list: Vec<String> = matches.iter().map(|m| format!("-{m}")).collect();
        Self::binding(
            format!(
                "Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: {}.",
                list.join(" ")
            ),
            "AmbiguousParameter",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn parameter_already_bound(name: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!(
                "Cannot bind parameter because parameter '{name}' is specified more than once. To provide multiple values to \
                 parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\"."
            ),
            "ParameterAlreadyBound",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn missing_argument(name: &str, type_name: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!(
                "Missing an argument for parameter '{name}'. Specify a parameter of type '{type_name}' and try again."
            ),
            "MissingArgument",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn positional_parameter_not_found(argument: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!("A positional parameter cannot be found that accepts argument '{argument}'."),
            "PositionalParameterNotFound",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn ambiguous_parameter_set(cmdlet_type: &str) -> Self {
        Self::binding(
            "Parameter set cannot be resolved using the specified named parameters.".to_owned(),
            "AmbiguousParameterSet",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    /// What a mandatory parameter left unbound produces when the host cannot prompt.
    pub(crate) fn missing_mandatory(names: &[&str], cmdlet_type: &str) -> Self {
        Self::binding(
            format!(
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                names.join(" ")
            ),
            "MissingMandatoryParameter",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    pub(crate) fn null_not_allowed(name: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!("Cannot bind argument to parameter '{name}' because it is null."),
            "ParameterArgumentValidationErrorNullNotAllowed",
            cmdlet_type,
            "InvalidData",
        )
    }

    pub(crate) fn empty_string_not_allowed(name: &str, cmdlet_type: &str) -> Self {
        Self::binding(
            format!("Cannot bind argument to parameter '{name}' because it is an empty string."),
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            cmdlet_type,
            "InvalidData",
        )
    }

    /// A value that does not name a member of the parameter's enum.
    pub(crate) fn enum_conversion(
        parameter: &str,
        value: &str,
        enum_type: &str,
        names: &[&str],
        cmdlet_type: &str,
    ) -> Self {
        // 5.1 puts "\r\n" between "try again:" and the list of names.
        Self::binding(
            format!(
                "Cannot bind parameter '{parameter}'. Cannot convert value \"{value}\" to type \"{enum_type}\". Error: \
                 \"Unable to match the identifier name {value} to a valid enumerator name. Specify one of the following \
                 enumerator names and try again:\r\n{}\"",
                names.join(", ")
            ),
            "CannotConvertArgumentNoMessage",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    /// A value of the wrong shape for the parameter's type (e.g. a string for a Hashtable).
    pub(crate) fn type_conversion(
        parameter: &str,
        value: &str,
        from_type: &str,
        to_type: &str,
        cmdlet_type: &str,
    ) -> Self {
        Self::binding(
            format!(
                "Cannot bind parameter '{parameter}'. Cannot convert the \"{value}\" value of type \"{from_type}\" to type \"{to_type}\"."
            ),
            "CannotConvertArgumentNoMessage",
            cmdlet_type,
            "InvalidArgument",
        )
    }

    /// A confirmation prompt the host cannot show (`-NonInteractive`; reference I.2).
    pub(crate) fn non_interactive_prompt(cmdlet_type: &str) -> Self {
        ErrorRecord::new(
            "System.Management.Automation.PSInvalidOperationException",
            "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
            format!("InvalidOperation,{cmdlet_type}"),
            "InvalidOperation",
            None,
        )
    }
}
