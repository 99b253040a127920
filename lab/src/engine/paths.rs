//! From a file name SQL Server is given (`TO DISK = N'...'`, `FROM DISK`, `STANDBY = N'...'`, the
//! log-shipping folders) to the lab file it means, or to the operating system error SQL Server would
//! report in 3201 ("Cannot open backup device '%ls'. Operating system error %ls.", reference B.4).
//!
//! An absolute Linux path always means itself, and so does, on Windows, an absolute name inside the
//! lab folder (the lab's folders there are `C:\...`). Windows names exist only
//! when the lab is started with Windows paths ([`WindowsNames`]): each instance's drive letters and
//! the UNC shares are mounted onto lab folders. Without them, and for anything they do not name, an
//! obviously Windows path is a path the instance does not have: `Z:\x.bak` is OS error 3 ("The system
//! cannot find the path specified.") and `\\nosuchserver\share\x.bak` is OS error 53 ("The network
//! path was not found."), and no file with backslashes in its name is ever created. A relative name
//! lives in the instance's default backup folder, as SQL Server puts it in its Backup directory.
//!
//! It also knows when the log-shipping share is unreachable (share.rs): paths under it fail with 53
//! (by UNC name) or 3 (by lab path). It does not read or write files; backupfile.rs does.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Role;
use super::errors::SqlError;
use super::world::World;

/// A Windows folder and the lab folder it is: a UNC share `\\host\Share` (reachable from every
/// instance; `instance` is `None`), or one instance's drive root `D:\` or folder `D:\LogShippingCopy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub instance: Option<Role>,
    pub windows: String,
    pub lab: PathBuf,
}

/// The Windows names of a lab started with Windows paths (`LabOptions::windows_paths`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsNames {
    /// Shares and drives; a UNC host may be written as its short name or its FQDN, and for drives the
    /// longest matching prefix wins.
    pub mounts: Vec<Mount>,
    /// The log-shipping share's UNC name (one of the shares).
    pub share: String,
    /// The primary's local name for the share's folder (log_shipping_primary_databases.backup_directory).
    pub share_local: String,
    /// The backup instance's copy folder as its msdb shows it (`D:\LogShippingCopy`).
    pub copy_folder: String,
    /// Where full backups go, by UNC name (one of the shares).
    pub backups: String,
}

/// A path as SQL Server was given it and the lab file it resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LabPath {
    /// What messages show: the name exactly as given.
    pub shown: String,
    pub real: PathBuf,
}

/// The Windows system errors SQL Server quotes in 3201 ("Operating system error N(text).").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OsError {
    FileNotFound,
    PathNotFound,
    AccessDenied,
    NetworkPathNotFound,
    NetworkNameNotFound,
    DeviceError,
}

impl OsError {
    /// The number and text as Windows words them (FormatMessage), as SQL Server prints them.
    pub(crate) fn render(self) -> &'static str {
        match self {
            OsError::FileNotFound => "2(The system cannot find the file specified.)",
            OsError::PathNotFound => "3(The system cannot find the path specified.)",
            OsError::AccessDenied => "5(Access is denied.)",
            OsError::NetworkPathNotFound => "53(The network path was not found.)",
            OsError::NetworkNameNotFound => "67(The network name cannot be found.)",
            OsError::DeviceError => {
                "1117(The request could not be performed because of an I/O device error.)"
            }
        }
    }

    /// 3201 for `shown` with this OS error.
    pub(crate) fn device(self, shown: &str) -> SqlError {
        SqlError::new(3201, &[shown, self.render()])
    }
}

/// What a name looks like before anything is looked up.
#[derive(Debug, PartialEq, Eq)]
enum Shape<'a> {
    /// `\\host\share\rest`.
    Unc {
        host: &'a str,
        share: &'a str,
        rest: Vec<&'a str>,
    },
    /// `X:\rest` or `X:/rest`.
    Drive { letter: char, rest: Vec<&'a str> },
    /// `/abs/path` on the lab's own machine.
    Linux,
    /// `name.bak` or `sub\name.bak`.
    Relative(Vec<&'a str>),
}

/// Components split on either separator, as Windows splits them; empty ones (doubled separators)
/// are dropped.
fn parts(s: &str) -> Vec<&str> {
    s.split(['\\', '/']).filter(|p| !p.is_empty()).collect()
}

fn shape(path: &str) -> Shape<'_> {
    if let Some(unc) = path
        .strip_prefix("\\\\")
        .or_else(|| path.strip_prefix("//"))
    {
        let mut p = parts(unc).into_iter();
        let host = p.next().unwrap_or("");
        let share = p.next().unwrap_or("");
        return Shape::Unc {
            host,
            share,
            rest: p.collect(),
        };
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Shape::Drive {
            letter: char::from(bytes[0]).to_ascii_uppercase(),
            rest: parts(&path[2..]),
        };
    }
    if path.starts_with('/') {
        return Shape::Linux;
    }
    Shape::Relative(parts(path))
}

/// Joins name components under `base`, refusing `..` (a lab path never leaves its mount).
fn join(base: &Path, rest: &[&str]) -> Result<PathBuf, OsError> {
    let mut out = base.to_path_buf();
    for part in rest {
        if *part == ".." {
            return Err(OsError::PathNotFound);
        }
        if *part != "." {
            out.push(part);
        }
    }
    Ok(out)
}

/// Whether a lab path lies in the log-shipping share's folder.
fn under(path: &Path, folder: &Path) -> bool {
    let norm = |p: &Path| -> Vec<String> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect()
    };
    let (p, f) = (norm(path), norm(folder));
    p.len() > f.len() && p[..f.len()] == f[..]
}

/// `name` inside the folder `dir`, written with the separator `dir` uses (what msdb records).
pub(crate) fn join_shown(dir: &str, name: &str) -> String {
    let sep = if dir.contains('\\') { '\\' } else { '/' };
    if dir.ends_with(sep) {
        format!("{dir}{name}")
    } else {
        format!("{dir}{sep}{name}")
    }
}

/// Resolves a folder SQL Server Agent works in (a log-shipping directory) and checks it can be
/// listed: a folder that is missing or unreachable is the 3201 text a job's history shows.
pub(crate) fn folder(world: &World, role: Role, dir: &str) -> Result<LabPath, String> {
    let lp = resolve(world, role, dir).map_err(|e| e.text)?;
    if lp.real.is_dir() {
        Ok(lp)
    } else {
        Err(OsError::PathNotFound.device(dir).text)
    }
}

/// Resolves `path` as instance `role` sees it.
pub(crate) fn resolve(world: &World, role: Role, path: &str) -> Result<LabPath, SqlError> {
    resolve_os(world, role, path)
        .map(|real| LabPath {
            shown: path.to_owned(),
            real,
        })
        .map_err(|os| os.device(path))
}

fn resolve_os(world: &World, role: Role, path: &str) -> Result<PathBuf, OsError> {
    let names = world.config.windows.as_ref();
    let share_down = !world.share_reachable();
    // On Windows the lab's own folders have drive-letter names (`C:\Users\...\share`): a name in
    // the lab folder means itself there, as a Linux absolute path does on Linux.
    let own = cfg!(windows)
        && Path::new(path).is_absolute()
        && under(Path::new(path), &world.config.lab_dir);
    match shape(path) {
        _ if own => {
            let real = PathBuf::from(path);
            if share_down && under(&real, &world.config.share) {
                return Err(OsError::PathNotFound);
            }
            Ok(real)
        }
        Shape::Linux => {
            let real = PathBuf::from(path);
            if share_down && under(&real, &world.config.share) {
                return Err(OsError::PathNotFound);
            }
            Ok(real)
        }
        Shape::Unc { host, share, rest } => {
            let names = names.ok_or(OsError::NetworkPathNotFound)?;
            if host.is_empty() || !known_host(world, host) {
                return Err(OsError::NetworkPathNotFound);
            }
            let mount = names
                .mounts
                .iter()
                .filter(|m| m.instance.is_none())
                .find(|m| unc_matches(world, &m.windows, host, share))
                .ok_or(OsError::NetworkNameNotFound)?;
            if share_down && unc_matches(world, &names.share, host, share) {
                return Err(OsError::NetworkPathNotFound);
            }
            join(&mount.lab, &rest)
        }
        Shape::Drive { letter, rest } => {
            let names = names.ok_or(OsError::PathNotFound)?;
            let wanted: Vec<String> = std::iter::once(format!("{letter}:"))
                .chain(rest.iter().map(|p| p.to_lowercase()))
                .collect();
            let best = names
                .mounts
                .iter()
                .filter(|m| m.instance == Some(role))
                .filter_map(|m| {
                    let prefix = drive_parts(&m.windows)?;
                    (wanted.len() >= prefix.len() && wanted[..prefix.len()] == prefix[..])
                        .then_some((prefix.len(), m))
                })
                .max_by_key(|(n, _)| *n)
                .ok_or(OsError::PathNotFound)?;
            let (n, mount) = best;
            join(&mount.lab, &rest[n - 1..])
        }
        Shape::Relative(rest) => join(&world.config.backups, &rest),
    }
}

/// `D:\LogShippingCopy` as lower-cased components with the drive first: `["D:", "logshippingcopy"]`.
fn drive_parts(windows: &str) -> Option<Vec<String>> {
    match shape(windows) {
        Shape::Drive { letter, rest } => Some(
            std::iter::once(format!("{letter}:"))
                .chain(rest.iter().map(|p| p.to_lowercase()))
                .collect(),
        ),
        _ => None,
    }
}

/// A host name the lab's network knows: an instance's short name or FQDN.
fn known_host(world: &World, host: &str) -> bool {
    world.config.instances.iter().any(|i| {
        i.fqdn.eq_ignore_ascii_case(host)
            || i.name.eq_ignore_ascii_case(host)
            || i.fqdn
                .split('.')
                .next()
                .is_some_and(|short| short.eq_ignore_ascii_case(host))
    })
}

/// Whether `\\host\share` names the mount `unc` (hosts compared by the instance they name).
fn unc_matches(world: &World, unc: &str, host: &str, share: &str) -> bool {
    let Shape::Unc {
        host: m_host,
        share: m_share,
        ..
    } = shape(unc)
    else {
        return false;
    };
    let instance_of = |h: &str| {
        world.config.instances.iter().position(|i| {
            i.fqdn.eq_ignore_ascii_case(h)
                || i.name.eq_ignore_ascii_case(h)
                || i.fqdn
                    .split('.')
                    .next()
                    .is_some_and(|s| s.eq_ignore_ascii_case(h))
        })
    };
    m_share.eq_ignore_ascii_case(share)
        && instance_of(m_host).is_some()
        && instance_of(m_host) == instance_of(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_by_shape() {
        assert_eq!(
            shape(r"\\nosuchserver\share\x.bak"),
            Shape::Unc {
                host: "nosuchserver",
                share: "share",
                rest: vec!["x.bak"]
            }
        );
        assert_eq!(
            shape(r"z:\dir\x.bak"),
            Shape::Drive {
                letter: 'Z',
                rest: vec!["dir", "x.bak"]
            }
        );
        assert_eq!(shape("/lab/share/x.trn"), Shape::Linux);
        assert_eq!(shape(r"sub\x.bak"), Shape::Relative(vec!["sub", "x.bak"]));
    }

    #[test]
    fn os_errors_render_as_sql_server_quotes_them() {
        let e = OsError::NetworkPathNotFound.device(r"\\nosuchserver\share\x.bak");
        assert_eq!(e.number, 3201);
        assert_eq!(
            e.text,
            r"Cannot open backup device '\\nosuchserver\share\x.bak'. Operating system error 53(The network path was not found.)."
        );
    }

    #[test]
    fn a_path_under_a_folder_is_recognised_component_by_component() {
        assert!(under(
            Path::new("/lab/share/x.trn"),
            Path::new("/lab/share")
        ));
        assert!(!under(
            Path::new("/lab/shared/x.trn"),
            Path::new("/lab/share")
        ));
        assert!(!under(Path::new("/lab/share"), Path::new("/lab/share")));
    }
}
