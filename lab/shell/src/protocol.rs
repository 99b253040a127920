//! Framing of pcfail's PowerShell host protocol (docs/powershell-host-protocol.md): the READY line,
//! one JSON request per line in, one `PCFAIL-RESULT {json}` line out.
//!
//! This module owns only the shapes on the wire. What a command means is `shell.rs`'s business; the
//! read loop lives in `lib.rs`.

use serde::Serialize;
use serde_json::Value as Json;

use crate::error::ErrorRecord;

/// The sentinel that separates responses from stray output on stdout.
pub(crate) const RESULT_PREFIX: &str = "PCFAIL-RESULT ";

/// `$Host.Name` and `$PSVersionTable.PSVersion` of the Windows PowerShell 5.1 the shell stands in for
/// (Windows Server 2019's build).
pub(crate) const HOST_NAME: &str = "ConsoleHost";
pub(crate) const PS_VERSION: &str = "5.1.17763.1";

/// The line announcing that the host is ready for its first request.
pub(crate) fn ready_line() -> String {
    // Written by hand to keep the documented key order.
    format!(r#"PCFAIL-READY {{"protocol":1,"host":"{HOST_NAME}","version":"{PS_VERSION}"}}"#)
}

/// One request: the id to echo and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub id: u64,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// The PowerShell text of one statement.
    Command(String),
    /// Open a PowerShell remoting session that every later command runs in.
    Remote(RemoteRequest),
}

/// The `remote` request's object, as pcfail's `[powershell.remote]` fills it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct RemoteRequest {
    pub computer: String,
    pub authentication: String,
    #[serde(default)]
    pub use_ssl: bool,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub configuration_name: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

/// A line that is not a valid request. `id` is set when the line had a usable id to echo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub id: Option<u64>,
    pub message: String,
}

/// Decodes one request line (without its line terminator).
pub(crate) fn parse_request(line: &[u8]) -> Result<Request, Malformed> {
    let text = std::str::from_utf8(line).map_err(|e| Malformed {
        id: None,
        message: format!("The request is not valid UTF-8: {e}."),
    })?;
    let json: Json = serde_json::from_str(text).map_err(|e| Malformed {
        id: None,
        message: format!("The request is not valid JSON: {e}."),
    })?;
    let id = json.get("id").and_then(Json::as_u64).filter(|&id| id > 0);
    let Some(id) = id else {
        return Err(Malformed {
            id: None,
            message: "The request has no positive integer `id`.".to_owned(),
        });
    };
    if let Some(remote) = json.get("remote") {
        return serde_json::from_value(remote.clone())
            .map(|remote| Request {
                id,
                body: Body::Remote(remote),
            })
            .map_err(|e| Malformed {
                id: Some(id),
                message: format!("The `remote` request is not valid: {e}."),
            });
    }
    match json.get("command").and_then(Json::as_str) {
        Some(command) => Ok(Request {
            id,
            body: Body::Command(command.to_owned()),
        }),
        None => Err(Malformed {
            id: Some(id),
            message: "The request has no string `command`.".to_owned(),
        }),
    }
}

/// One response, serialized in the field order of the protocol document.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Response {
    pub id: Option<u64>,
    pub ok: bool,
    pub output: Vec<Json>,
    pub warnings: Vec<String>,
    pub verbose: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

impl Response {
    /// The response to a request that could not be decoded.
    pub(crate) fn protocol_error(malformed: Malformed) -> Self {
        Response {
            id: malformed.id,
            ok: false,
            error: Some(ErrorRecord::new(
                "pcfail.ProtocolError",
                malformed.message,
                "pcfail.ProtocolError",
                "InvalidData",
                None,
            )),
            ..Response::default()
        }
    }

    /// The full stdout line, without its terminator.
    pub(crate) fn to_line(&self) -> String {
        format!(
            "{RESULT_PREFIX}{}",
            serde_json::to_string(self).expect("responses always serialize")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_decode_or_explain_why_not() {
        let cases: &[(&str, Result<Request, Malformed>)] = &[
            (
                r#"{"id":7,"command":"Get-X"}"#,
                Ok(Request {
                    id: 7,
                    body: Body::Command("Get-X".to_owned()),
                }),
            ),
            (
                r#"{"id":1,"remote":{"computer":"fe","authentication":"Kerberos"}}"#,
                Ok(Request {
                    id: 1,
                    body: Body::Remote(RemoteRequest {
                        computer: "fe".to_owned(),
                        authentication: "Kerberos".to_owned(),
                        use_ssl: false,
                        port: None,
                        configuration_name: None,
                        user: None,
                        password_env: None,
                    }),
                }),
            ),
            (
                r#"{"id":2,"remote":{"authentication":"Kerberos"}}"#,
                Err(Malformed {
                    id: Some(2),
                    message: "The `remote` request is not valid: missing field `computer`."
                        .to_owned(),
                }),
            ),
            (
                r#"{"id":0,"command":"Get-X"}"#,
                Err(Malformed {
                    id: None,
                    message: "The request has no positive integer `id`.".to_owned(),
                }),
            ),
            (
                r#"{"id":3}"#,
                Err(Malformed {
                    id: Some(3),
                    message: "The request has no string `command`.".to_owned(),
                }),
            ),
            (
                "not json",
                Err(Malformed {
                    id: None,
                    message: "The request is not valid JSON: expected ident at line 1 column 2."
                        .to_owned(),
                }),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse_request(line.as_bytes()), expected, "{line}");
        }
    }

    #[test]
    fn responses_keep_the_documented_field_order_and_omit_error_on_success() {
        let ok = Response {
            id: Some(1),
            ok: true,
            ..Response::default()
        };
        assert_eq!(
            ok.to_line(),
            r#"PCFAIL-RESULT {"id":1,"ok":true,"output":[],"warnings":[],"verbose":[]}"#
        );
        assert_eq!(
            ready_line(),
            r#"PCFAIL-READY {"protocol":1,"host":"ConsoleHost","version":"5.1.17763.1"}"#
        );
    }
}
