//! Where an instance is and how to log in to it, as the SQL adapter needs it.
//!
//! The runbook model converts into this; the adapter never sees runbook syntax. The password itself is
//! never stored here, only the name of the environment variable that holds it, and `Display` says
//! where the password comes from without ever reading it.

use std::fmt;

/// How pcfail logs in to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Windows integrated authentication (not in this build yet; kept so runbooks can say it).
    Integrated,
    /// A SQL login whose password is read from the environment variable `password_env` at connect time.
    SqlLogin { user: String, password_env: String },
}

/// TDS encryption levels, as the runbook names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encryption {
    /// Plaintext; the only level the lab (and this build) supports.
    NotSupported,
    Off,
    On,
    Required,
    Strict,
}

impl Encryption {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Encryption::NotSupported => "not_supported",
            Encryption::Off => "off",
            Encryption::On => "on",
            Encryption::Required => "required",
            Encryption::Strict => "strict",
        }
    }
}

/// One instance's connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The runbook's role key (`backup`), used in every message.
    pub role: String,
    pub host: String,
    pub port: Option<u16>,
    pub instance_name: Option<String>,
    pub auth: Auth,
    pub encryption: Encryption,
    pub trust_server_certificate: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({}", self.role, self.host)?;
        match (&self.instance_name, self.port) {
            (_, Some(port)) => write!(f, ":{port}")?,
            (Some(name), None) => write!(f, "\\{name}")?,
            (None, None) => {}
        }
        match &self.auth {
            Auth::Integrated => write!(f, ", integrated auth")?,
            Auth::SqlLogin { user, password_env } => {
                write!(f, ", SQL login `{user}`, password from ${password_env}")?
            }
        }
        write!(f, ", encryption {})", self.encryption.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_password_variable_but_never_a_password() {
        // SAFETY of the test: the variable is unique to this test.
        let endpoint = Endpoint {
            role: "backup".into(),
            host: "dal-sql-001.litwareinc.com".into(),
            port: Some(1433),
            instance_name: None,
            auth: Auth::SqlLogin {
                user: "sa".into(),
                password_env: "PCFAIL_TEST_DISPLAY_PASSWORD".into(),
            },
            encryption: Encryption::Required,
            trust_server_certificate: false,
        };
        assert_eq!(
            endpoint.to_string(),
            "`backup` (dal-sql-001.litwareinc.com:1433, SQL login `sa`, password from $PCFAIL_TEST_DISPLAY_PASSWORD, encryption required)"
        );
    }

    #[test]
    fn display_shows_a_named_instance_with_a_backslash() {
        let endpoint = Endpoint {
            role: "primary".into(),
            host: "atl-sql-001".into(),
            port: None,
            instance_name: Some("PCHAT".into()),
            auth: Auth::Integrated,
            encryption: Encryption::On,
            trust_server_certificate: true,
        };
        assert_eq!(
            endpoint.to_string(),
            "`primary` (atl-sql-001\\PCHAT, integrated auth, encryption on)"
        );
    }
}
