//! `LabOptions`: how a lab is started (directory, clock speed, job schedule, tick rate, variants,
//! and how much it looks like a real site: encryption, named instances, Windows paths).
//!
//! Plain data with the documented defaults: by default the lab looks like a real site (TLS required,
//! named instances behind SQL Browser, Windows paths); [`LabOptions::plain`] is the plaintext lab on
//! bare ports with Linux paths, for tests of SQL semantics that need none of that. The schedule only shapes a *new* world: a lab resumed
//! from state.json keeps the schedule its jobs were created with, as SQL Agent jobs would.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

pub use pcfail_lab_tds::Encryption;

#[derive(Clone, Debug, PartialEq)]
pub struct LabOptions {
    /// The lab directory (lab.json, state.json, share/, backup-copy/, backups/, lab.log).
    pub dir: PathBuf,
    /// Lab seconds per real second: 60 makes the 15-minute copy job run every 15 real seconds.
    pub clock_speed: f64,
    /// LSBackup_mgc schedule on the primary, in lab minutes.
    pub backup_every_min: u32,
    /// LSCopy_ schedule on the backup instance, in lab minutes.
    pub copy_every_min: u32,
    /// LSRestore_ schedule on the backup instance, in lab minutes.
    pub restore_every_min: u32,
    /// Real milliseconds between two runs of the world's scheduler (chat traffic and due jobs).
    pub tick_ms: u64,
    /// Readings of UNVERIFIED behaviour, by variant name (docs/lab.md lists them); a variant left
    /// out follows the reference's current reading.
    pub variants: BTreeMap<String, String>,
    /// The duration model: BACKUP and RESTORE move their bytes at this many MB per lab second, so
    /// their run time grows with their size. `None` (the default): they take no time of their own.
    pub io_mb_per_s: Option<f64>,
    /// Windows names as a real site has them: drive letters per instance and UNC shares, mapped onto
    /// the lab folders, and used in msdb's log-shipping configuration of a new lab.
    pub windows_paths: bool,
    /// How the instances treat encryption: `Required` (the default; TLS with a certificate from the
    /// lab's own CA, TDS 7.x or 8.0), `Strict` (TDS 8.0 only) or `NotSupported` (plaintext).
    pub encryption: Encryption,
    /// Each instance is a named instance (`PCHAT`) behind its host's SQL Browser (UDP), as lab.json
    /// records; false: clients use the TCP ports alone.
    pub named_instances: bool,
    /// The backup instance's log-shipping secondary restores WITH STANDBY (restore_mode 1): between
    /// restores its `mgc` is ONLINE, read-only, with is_in_standby = 1 (reference A.1, C). Off by
    /// default (NORECOVERY, as Microsoft's Persistent Chat HA/DR page configures it). Only for a new lab.
    pub standby_secondary: bool,
    /// Each SQL Server instance's service runs under its own Windows account
    /// (`LITWAREINC\svc-dal-sql-001`), so mirroring partners need a login and `GRANT CONNECT ON
    /// ENDPOINT` on each other's instance (reference J.5). Off by default: one account for all four,
    /// which needs no grant. Only for a new lab.
    pub distinct_service_accounts: bool,
    /// Each instance has only its own data directory (`...\DATA\<name>`, which
    /// `SERVERPROPERTY('InstanceDefaultDataPath')` gives): a full restore that would create a file in
    /// another instance's directory fails with 5133/3156/3119 unless MOVE relocates it (reference
    /// J.3). Off by default, where every path is accepted. Only for a new lab.
    pub data_paths_per_instance: bool,
}

/// The `--encryption` values, in the order of [`Encryption`]'s variants.
pub const ENCRYPTION_KEYS: [(&str, Encryption); 3] = [
    ("not_supported", Encryption::NotSupported),
    ("required", Encryption::Required),
    ("strict", Encryption::Strict),
];

/// The name `--encryption` and lab.json use for `e`.
pub fn encryption_key(e: Encryption) -> &'static str {
    ENCRYPTION_KEYS
        .iter()
        .find(|(_, v)| *v == e)
        .map(|(k, _)| *k)
        .expect("every level has a key")
}

/// `--encryption KEY`.
pub fn parse_encryption(key: &str) -> Result<Encryption, String> {
    ENCRYPTION_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            format!("unknown encryption `{key}`; expected `not_supported`, `required` or `strict`")
        })
}

impl LabOptions {
    /// The documented defaults for a lab in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LabOptions {
            dir: dir.into(),
            clock_speed: 60.0,
            backup_every_min: 5,
            copy_every_min: 15,
            restore_every_min: 15,
            tick_ms: 200,
            variants: BTreeMap::new(),
            io_mb_per_s: None,
            windows_paths: true,
            encryption: Encryption::Required,
            named_instances: true,
            standby_secondary: false,
            distinct_service_accounts: false,
            data_paths_per_instance: false,
        }
    }

    /// The lab before it looked like a real site: plaintext TDS on bare ports, Linux paths. For
    /// tests of the engine's SQL semantics, and `lab up --encryption not_supported --ports
    /// --linux-paths`.
    pub fn plain(dir: impl Into<PathBuf>) -> Self {
        LabOptions {
            windows_paths: false,
            encryption: Encryption::NotSupported,
            named_instances: false,
            ..LabOptions::new(dir)
        }
    }

    /// The arguments `lab up` gives the `pcfail` binary to run this lab as a detached daemon:
    /// `lab up --foreground --dir DIR --clock-speed S --backup-every-min B --copy-every-min C
    /// --restore-every-min R --tick-ms T --encryption E [--linux-paths] [--ports] [--standby-secondary]
    /// [--distinct-service-accounts] [--data-paths-per-instance] [--io-mb-per-s N]
    /// [--variant NAME=VALUE]...`. The CLI must accept exactly these flags.
    pub fn foreground_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["lab", "up", "--foreground", "--dir"]
            .into_iter()
            .map(OsString::from)
            .collect();
        args.push(self.dir.clone().into_os_string());
        let pairs = [
            ("--clock-speed", self.clock_speed.to_string()),
            ("--backup-every-min", self.backup_every_min.to_string()),
            ("--copy-every-min", self.copy_every_min.to_string()),
            ("--restore-every-min", self.restore_every_min.to_string()),
            ("--tick-ms", self.tick_ms.to_string()),
            ("--encryption", encryption_key(self.encryption).to_owned()),
        ];
        for (flag, value) in pairs {
            args.push(flag.into());
            args.push(value.into());
        }
        if !self.windows_paths {
            args.push("--linux-paths".into());
        }
        if !self.named_instances {
            args.push("--ports".into());
        }
        for (on, flag) in [
            (self.standby_secondary, "--standby-secondary"),
            (
                self.distinct_service_accounts,
                "--distinct-service-accounts",
            ),
            (self.data_paths_per_instance, "--data-paths-per-instance"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if let Some(rate) = self.io_mb_per_s {
            args.push("--io-mb-per-s".into());
            args.push(rate.to_string().into());
        }
        for (name, value) in &self.variants {
            args.push("--variant".into());
            args.push(format!("{name}={value}").into());
        }
        args
    }

    /// The inverse of [`LabOptions::foreground_args`]: reads `lab up --foreground --dir DIR ...` back into
    /// options (flags in any order, defaults for missing ones). For daemons and tests that are not the
    /// `pcfail` CLI; the CLI parses the same flags with clap.
    pub fn from_foreground_args<I, S>(args: I) -> Result<LabOptions, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let rest = match args.iter().position(|a| a == "--foreground") {
            Some(i) => &args[i + 1..],
            None => return Err("expected `lab up --foreground`".to_owned()),
        };
        let mut opts = LabOptions::default();
        let mut dir = None;
        let mut iter = rest.iter();
        while let Some(flag) = iter.next() {
            let flag = flag.to_string_lossy();
            match flag.as_ref() {
                "--linux-paths" => {
                    opts.windows_paths = false;
                    continue;
                }
                "--ports" => {
                    opts.named_instances = false;
                    continue;
                }
                "--standby-secondary" => {
                    opts.standby_secondary = true;
                    continue;
                }
                "--distinct-service-accounts" => {
                    opts.distinct_service_accounts = true;
                    continue;
                }
                "--data-paths-per-instance" => {
                    opts.data_paths_per_instance = true;
                    continue;
                }
                _ => {}
            }
            let value = iter
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            let text = value.to_string_lossy();
            let number = |what: &str| format!("`{flag}` expects {what}, not `{text}`");
            match flag.as_ref() {
                "--dir" => dir = Some(PathBuf::from(value)),
                "--clock-speed" => {
                    opts.clock_speed = text
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0)
                        .ok_or_else(|| number("a positive number"))?
                }
                "--backup-every-min" => {
                    opts.backup_every_min = text.parse().map_err(|_| number("minutes"))?
                }
                "--copy-every-min" => {
                    opts.copy_every_min = text.parse().map_err(|_| number("minutes"))?
                }
                "--restore-every-min" => {
                    opts.restore_every_min = text.parse().map_err(|_| number("minutes"))?
                }
                "--tick-ms" => opts.tick_ms = text.parse().map_err(|_| number("milliseconds"))?,
                "--encryption" => opts.encryption = parse_encryption(&text)?,
                "--io-mb-per-s" => {
                    opts.io_mb_per_s = Some(
                        text.parse()
                            .ok()
                            .filter(|r: &f64| *r > 0.0)
                            .ok_or_else(|| number("a positive number"))?,
                    )
                }
                "--variant" => {
                    let (name, value) = crate::engine::parse_assignment(&text)?;
                    opts.variants.insert(name, value);
                }
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        opts.dir = dir.ok_or("`--dir` is required")?;
        Ok(opts)
    }
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions::new("pcfail-lab")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = LabOptions::default();
        assert_eq!(
            (
                o.clock_speed,
                o.backup_every_min,
                o.copy_every_min,
                o.restore_every_min,
                o.tick_ms
            ),
            (60.0, 5, 15, 15, 200)
        );
    }

    #[test]
    fn foreground_args_read_back_into_the_same_options() {
        let o = LabOptions {
            clock_speed: 600.0,
            backup_every_min: 1,
            tick_ms: 20,
            variants: [("tail_log_on_mirrored".to_owned(), "allowed".to_owned())].into(),
            io_mb_per_s: Some(2.5),
            windows_paths: false,
            encryption: Encryption::Strict,
            named_instances: false,
            standby_secondary: true,
            distinct_service_accounts: true,
            data_paths_per_instance: true,
            ..LabOptions::new("/tmp/lab")
        };
        assert_eq!(LabOptions::from_foreground_args(o.foreground_args()), Ok(o));
        let real = LabOptions::new("/tmp/lab");
        assert_eq!(
            LabOptions::from_foreground_args(real.foreground_args()),
            Ok(real)
        );
    }

    #[test]
    fn bad_foreground_args_are_explained() {
        let cases: [(&[&str], &str); 5] = [
            (&["lab", "up"], "expected `lab up --foreground`"),
            (&["--foreground"], "`--dir` is required"),
            (&["--foreground", "--dir"], "`--dir` needs a value"),
            (
                &["--foreground", "--dir", "d", "--clock-speed", "0"],
                "`--clock-speed` expects a positive number, not `0`",
            ),
            (
                &["--foreground", "--dir", "d", "--fast", "1"],
                "unknown flag `--fast`",
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(
                LabOptions::from_foreground_args(args.iter().copied()),
                Err(expected.to_owned()),
                "{args:?}"
            );
        }
    }

    #[test]
    fn foreground_args_carry_every_option() {
        let o = LabOptions {
            clock_speed: 600.0,
            tick_ms: 50,
            ..LabOptions::new("/tmp/my lab")
        };
        let args: Vec<String> = o
            .foreground_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "lab",
                "up",
                "--foreground",
                "--dir",
                "/tmp/my lab",
                "--clock-speed",
                "600",
                "--backup-every-min",
                "5",
                "--copy-every-min",
                "15",
                "--restore-every-min",
                "15",
                "--tick-ms",
                "50",
                "--encryption",
                "required",
            ]
        );
    }
}
