//! [`PowerShellArgs`]: the trailing `powershell.exe` arguments the lab shell is started with, checked
//! the way Windows PowerShell 5.1's console host checks them.
//!
//! Switch names match case-insensitively by prefix with each switch's minimum abbreviation (`-nop`,
//! `-noni`, `-ex`/`-ep`, `-f`, `-e`/`-ec`), and `/` works like `-`. As in 5.1, the first argument that is
//! not a known switch starts the command text, so `-Bogus` ends up "not recognized" as a command.
//! `-EncodedCommand` takes base64 of UTF-16LE text (reference I.2) and parsing goes on after it;
//! `-File` must name an existing `.ps1` file and ends the switches: what follows goes to the script.
//! The lab runs only pcfail's host script, given either way (pcfail uses `-EncodedCommand`); an
//! interactive session, `-Command`, or an encoded command that is not the host script is refused.

use std::path::{Path, PathBuf};

/// The host's exit code for a bad command line. Windows PowerShell uses -196608, which a Unix exit
/// status cannot carry (it would read as 0); pwsh on Unix uses 64, and so does the lab.
pub(crate) const BAD_COMMAND_LINE: i32 = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PowerShellArgs {
    pub non_interactive: bool,
    pub no_profile: bool,
    pub execution_policy: Option<String>,
    pub script: Script,
}

/// How the host script was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    /// `-File path args...`.
    File { path: PathBuf, args: Vec<String> },
    /// `-EncodedCommand base64`: the decoded text. PowerShell then writes the records of its error,
    /// warning and verbose streams to a redirected stderr as CLIXML (reference I.2).
    Encoded(String),
}

/// How pcfail's host script begins (assets/host.ps1): what an encoded command must be to be simulated.
const HOST_SCRIPT_FIRST_LINE: &str = "# pcfail PowerShell host, protocol 1";

/// Why the shell would not start: the text for stderr and the exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArgsError {
    pub message: String,
    pub exit_code: i32,
}

/// (full name, shortest accepted abbreviations, takes a value)
const SWITCHES: &[(&str, &[&str], bool)] = &[
    ("psconsolefile", &["psconsolefile"], true),
    ("version", &["v"], true),
    ("nologo", &["nol"], false),
    ("noexit", &["noe"], false),
    ("sta", &["s"], false),
    ("mta", &["mta"], false),
    ("noprofile", &["nop"], false),
    ("noninteractive", &["noni"], false),
    ("inputformat", &["in", "if"], true),
    ("outputformat", &["o", "of"], true),
    ("windowstyle", &["w"], true),
    ("encodedcommand", &["e", "ec"], true),
    ("configurationname", &["config"], true),
    ("file", &["f"], true),
    ("executionpolicy", &["ex", "ep"], true),
    ("command", &["c"], true),
    ("help", &["?", "h"], false),
];

const EXECUTION_POLICIES: &[&str] = &[
    "Unrestricted",
    "RemoteSigned",
    "AllSigned",
    "Restricted",
    "Default",
    "Bypass",
    "Undefined",
];

fn match_switch(typed: &str) -> Option<(&'static str, bool)> {
    let key = typed.to_ascii_lowercase();
    SWITCHES.iter().find_map(|(name, shortcuts, takes_value)| {
        let matches = (name.starts_with(&key) && shortcuts.iter().any(|s| key.starts_with(s)))
            || shortcuts.contains(&key.as_str());
        matches.then_some((*name, *takes_value))
    })
}

fn bad(message: String) -> ArgsError {
    ArgsError {
        message,
        exit_code: BAD_COMMAND_LINE,
    }
}

/// The error block PowerShell prints for a command that is not recognized, run from the command line.
fn command_not_found_block(command_text: &str) -> ArgsError {
    let first = command_text
        .split_whitespace()
        .next()
        .unwrap_or(command_text);
    let message = format!(
        "{first} : The term '{first}' is not recognized as the name of a cmdlet, function, script file, or operable program. \
         Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\n\
         At line:1 char:1\n\
         + {command_text}\n\
         + {tildes}\n    \
         + CategoryInfo          : ObjectNotFound: ({first}:String) [], CommandNotFoundException\n    \
         + FullyQualifiedErrorId : CommandNotFoundException\n",
        tildes = "~".repeat(first.chars().count())
    );
    // A command that fails in -Command mode exits 1 (reference I.1).
    ArgsError {
        message,
        exit_code: 1,
    }
}

pub(crate) fn parse(args: &[String]) -> Result<PowerShellArgs, ArgsError> {
    let mut non_interactive = false;
    let mut no_profile = false;
    let mut execution_policy = None;
    let mut encoded = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(key) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('/')) else {
            return Err(command_not_found_block(&args[i..].join(" ")));
        };
        let Some((name, takes_value)) = match_switch(key) else {
            // 5.1: "The first parameter we fail to recognize marks the beginning of the command string."
            return Err(command_not_found_block(&args[i..].join(" ")));
        };
        let value = if takes_value {
            i += 1;
            match args.get(i) {
                Some(v) => Some(v.clone()),
                // UNVERIFIED wording.
                None => {
                    return Err(bad(format!(
                        "Missing argument for parameter {arg}. Specify a value and try again.\n"
                    )));
                }
            }
        } else {
            None
        };
        match name {
            "noninteractive" => non_interactive = true,
            "noprofile" => no_profile = true,
            "executionpolicy" => {
                let policy = value.unwrap_or_default();
                let Some(known) = EXECUTION_POLICIES
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(&policy))
                else {
                    // UNVERIFIED wording.
                    return Err(bad(format!(
                        "Invalid argument '{policy}' for parameter -ExecutionPolicy.\n"
                    )));
                };
                execution_policy = Some((*known).to_owned());
            }
            "file" if encoded.is_some() => return Err(both_command_and_file()),
            "file" => {
                let file = PathBuf::from(value.unwrap_or_default());
                check_script(&file)?;
                return Ok(PowerShellArgs {
                    non_interactive,
                    no_profile,
                    execution_policy,
                    script: Script::File {
                        path: file,
                        args: args[i + 1..].to_vec(),
                    },
                });
            }
            "encodedcommand" => encoded = Some(decode_command(&value.unwrap_or_default())?),
            "command" => {
                return Err(bad(format!(
                    "pcfail lab shell: -{name} is not simulated; start the host script with -EncodedCommand or -File.\n"
                )));
            }
            _ => {}
        }
        i += 1;
    }
    match encoded {
        Some(text) => Ok(PowerShellArgs {
            non_interactive,
            no_profile,
            execution_policy,
            script: Script::Encoded(text),
        }),
        None => Err(bad("pcfail lab shell: an interactive session is not simulated; start the host script with -EncodedCommand or -File.\n".to_owned())),
    }
}

/// The text of `-EncodedCommand`: base64 of UTF-16LE, and (for the lab) pcfail's host script.
fn decode_command(value: &str) -> Result<String, ArgsError> {
    use base64::Engine as _;
    // UNVERIFIED wording (5.1's BadCommandValue resource, as quoted in forum posts).
    let not_encoded = || {
        bad("Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\n".to_owned())
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| not_encoded())?;
    if bytes.len() % 2 != 0 {
        return Err(not_encoded());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    if !text.starts_with(HOST_SCRIPT_FIRST_LINE) {
        let first = text.lines().next().unwrap_or_default();
        return Err(bad(format!(
            "pcfail lab shell: only pcfail's host script (protocol 1) is simulated; the encoded command begins `{first}`.\n"
        )));
    }
    Ok(text)
}

/// A lab message: PowerShell's own answer to both a command and a file is not simulated.
fn both_command_and_file() -> ArgsError {
    bad(
        "pcfail lab shell: give the host script once, with -EncodedCommand or with -File.\n"
            .to_owned(),
    )
}

fn check_script(file: &Path) -> Result<(), ArgsError> {
    let shown = file.display();
    if !file.is_file() {
        return Err(bad(format!(
            "The argument '{shown}' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\n"
        )));
    }
    if !file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ps1"))
    {
        return Err(bad(format!(
            "Processing -File '{shown}' failed because the file does not have a '.ps1' extension. Specify a valid Windows PowerShell script file name, and then try again.\n"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_documented_command_line_and_its_abbreviations_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host.ps1");
        std::fs::write(&host, "# host").unwrap();
        let host = host.to_str().unwrap();
        let cases: Vec<Vec<String>> = vec![
            strings(&[
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-File",
                host,
            ]),
            strings(&["-nop", "-noni", "-ep", "bypass", "-f", host]),
            strings(&[
                "/NoProfile",
                "-NONINTERACTIVE",
                "-ex",
                "Bypass",
                "-file",
                host,
            ]),
        ];
        for args in cases {
            let parsed = parse(&args).unwrap();
            assert!(parsed.non_interactive && parsed.no_profile, "{args:?}");
            assert_eq!(parsed.execution_policy.as_deref(), Some("Bypass"));
            assert!(
                matches!(&parsed.script, Script::File { path, .. } if path.as_path() == Path::new(host))
            );
        }
        let with_script_args = parse(&strings(&["-File", host, "-NonInteractive", "x"])).unwrap();
        assert!(
            !with_script_args.non_interactive,
            "arguments after -File belong to the script"
        );
        assert_eq!(
            with_script_args.script,
            Script::File {
                path: PathBuf::from(host),
                args: strings(&["-NonInteractive", "x"])
            }
        );
    }

    /// Base64 of UTF-16LE, as pcfail encodes the host script (written again here, not shared).
    fn encode(text: &str) -> String {
        use base64::Engine as _;
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn the_host_script_is_accepted_as_an_encoded_command_with_switches_around_it() {
        let script =
            format!("{HOST_SCRIPT_FIRST_LINE} (docs/powershell-host-protocol.md)\r\n$x = 'é'\r\n");
        let encoded = encode(&script);
        let cases: Vec<Vec<String>> = vec![
            strings(&[
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-EncodedCommand",
                &encoded,
            ]),
            strings(&["-e", &encoded, "-noni", "-nop"]),
            strings(&["/ec", &encoded, "/NonInteractive", "/NoProfile"]),
        ];
        for args in cases {
            let parsed = parse(&args).unwrap();
            assert!(parsed.non_interactive && parsed.no_profile, "{args:?}");
            assert_eq!(parsed.script, Script::Encoded(script.clone()));
        }
    }

    #[test]
    fn bad_command_lines_fail_like_powershell_exe() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("host.txt");
        std::fs::write(&txt, "").unwrap();
        let missing = dir.path().join("missing.ps1");
        let cases: Vec<(Vec<String>, String, i32)> = vec![
            (
                strings(&["-NoProfile", "-File", missing.to_str().unwrap()]),
                format!("The argument '{}' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\n", missing.display()),
                64,
            ),
            (
                strings(&["-File", txt.to_str().unwrap()]),
                format!("Processing -File '{}' failed because the file does not have a '.ps1' extension. Specify a valid Windows PowerShell script file name, and then try again.\n", txt.display()),
                64,
            ),
            (
                strings(&["-Bogus", "-File", "x.ps1"]),
                "-Bogus : The term '-Bogus' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\nAt line:1 char:1\n+ -Bogus -File x.ps1\n+ ~~~~~~\n    + CategoryInfo          : ObjectNotFound: (-Bogus:String) [], CommandNotFoundException\n    + FullyQualifiedErrorId : CommandNotFoundException\n".to_owned(),
                1,
            ),
            (strings(&["-ExecutionPolicy"]), "Missing argument for parameter -ExecutionPolicy. Specify a value and try again.\n".to_owned(), 64),
            (strings(&["-NoProfile"]), "pcfail lab shell: an interactive session is not simulated; start the host script with -EncodedCommand or -File.\n".to_owned(), 64),
            (strings(&["-EncodedCommand", "not base64!"]), "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\n".to_owned(), 64),
            // Base64 of an odd number of bytes cannot be UTF-16.
            (strings(&["-EncodedCommand", "YWJj"]), "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\n".to_owned(), 64),
            // "dir" in UTF-16LE: PowerShell would run it; the lab runs only the host script.
            (strings(&["-ec", "ZABpAHIA"]), "pcfail lab shell: only pcfail's host script (protocol 1) is simulated; the encoded command begins `dir`.\n".to_owned(), 64),
            (strings(&["-EncodedCommand", &encode(HOST_SCRIPT_FIRST_LINE), "-File", txt.to_str().unwrap()]), "pcfail lab shell: give the host script once, with -EncodedCommand or with -File.\n".to_owned(), 64),
        ];
        for (args, message, code) in cases {
            assert_eq!(
                parse(&args),
                Err(ArgsError {
                    message,
                    exit_code: code
                }),
                "{args:?}"
            );
        }
    }
}
