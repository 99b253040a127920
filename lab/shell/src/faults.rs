//! Cmdlet fault injection from `<lab dir>/faults.json` (format in docs/lab.md).
//!
//! Only rules of `"kind": "cmdlet"` are the shell's; the SQL rules belong to the engine, which reads
//! and writes the same file, so the file is handled as generic JSON and every other rule and field is
//! written back untouched. A rule with `times` fires that many times; the remaining count is kept in
//! the file (a rule at 0 stays, inert).

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use thiserror::Error;

use crate::cms::write_atomically;

/// What a matching rule makes the cmdlet do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Fail with this message.
    Error(String),
    /// Never answer.
    Hang,
    /// Exit the process with code 1 without answering.
    Crash,
}

#[derive(Debug, Error)]
pub(crate) enum FaultsError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid JSON: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The first live cmdlet rule for `cmdlet` (case-insensitive), consuming one of its `times`.
pub(crate) fn take(lab_dir: &Path, cmdlet: &str) -> Result<Option<Fault>, FaultsError> {
    let path = lab_dir.join("faults.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FaultsError::Read { path, source }),
    };
    let mut doc: Json = serde_json::from_slice(&bytes).map_err(|source| FaultsError::Invalid {
        path: path.clone(),
        source,
    })?;
    let Some(rules) = doc.get_mut("rules").and_then(Json::as_array_mut) else {
        return Ok(None);
    };
    let Some(rule) = rules.iter_mut().find(|rule| {
        rule.get("kind").and_then(Json::as_str) == Some("cmdlet")
            && rule
                .get("cmdlet")
                .and_then(Json::as_str)
                .is_some_and(|c| c.eq_ignore_ascii_case(cmdlet))
            && rule
                .get("times")
                .and_then(Json::as_u64)
                .is_none_or(|times| times > 0)
    }) else {
        return Ok(None);
    };
    let fault = if rule.get("crash").and_then(Json::as_bool) == Some(true) {
        Fault::Crash
    } else if rule.get("hang").and_then(Json::as_bool) == Some(true) {
        Fault::Hang
    } else if let Some(message) = rule.get("error").and_then(Json::as_str) {
        Fault::Error(message.to_owned())
    } else {
        // A rule that says nothing to do does nothing, and is not consumed.
        return Ok(None);
    };
    if let Some(times) = rule.get("times").and_then(Json::as_u64) {
        rule["times"] = Json::from(times - 1);
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("JSON values serialize");
        bytes.push(b'\n');
        write_atomically(&path, &bytes).map_err(|source| FaultsError::Write { path, source })?;
    }
    Ok(Some(fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_cmdlet_and_times_count_down_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"rules":[
            {"kind":"sql","instance":"backup","pattern":"RESTORE LOG","times":1,"error":3201},
            {"kind":"cmdlet","cmdlet":"Set-CsPersistentChatState","error":"boom","times":2},
            {"kind":"cmdlet","cmdlet":"Get-CsPersistentChatState","hang":true},
            {"kind":"cmdlet","cmdlet":"Test-CsPersistentChatMessage","crash":true}
        ]}"#;
        std::fs::write(dir.path().join("faults.json"), text).unwrap();
        let cases: &[(&str, Option<Fault>)] = &[
            (
                "set-cspersistentchatstate",
                Some(Fault::Error("boom".to_owned())),
            ),
            (
                "Set-CsPersistentChatState",
                Some(Fault::Error("boom".to_owned())),
            ),
            ("Set-CsPersistentChatState", None),
            ("Get-CsPersistentChatState", Some(Fault::Hang)),
            ("Get-CsPersistentChatState", Some(Fault::Hang)),
            ("Test-CsPersistentChatMessage", Some(Fault::Crash)),
            ("Install-CsMirrorDatabase", None),
        ];
        for (cmdlet, expected) in cases {
            assert_eq!(&take(dir.path(), cmdlet).unwrap(), expected, "{cmdlet}");
        }
        let after: Json =
            serde_json::from_slice(&std::fs::read(dir.path().join("faults.json")).unwrap())
                .unwrap();
        assert_eq!(
            after["rules"][0]["times"], 1,
            "the engine's rule is untouched"
        );
        assert_eq!(after["rules"][1]["times"], 0);
    }

    #[test]
    fn a_missing_faults_file_means_no_faults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(take(dir.path(), "Get-CsPersistentChatState").unwrap(), None);
    }
}
