//! `Manifest`: the lab.json file (docs/lab.md), the one thing other processes read to find a lab.
//!
//! It tells a client everything needed to connect (addresses, login, password env var name) and a
//! runbook generator everything it needs (fqdns, data centers, mirroring endpoints, pool, folders,
//! Persistent Chat servers). Beyond docs/lab.md it records the daemon's lifecycle (`state`) and the lab
//! clock at the last save (`lab_time_ms`), so a restarted lab resumes its own time instead of jumping back
//! to the wall clock (log backup file names must keep increasing).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::daemon_lock::DaemonLock;
use crate::engine::{Role, WindowsNames};
use crate::error::LabError;
use crate::fsutil;
use crate::topology;

/// The lab.json format version; bumped on incompatible change.
pub const PROTOCOL: u32 = 1;

/// Where a lab's lifecycle stands, as lab.json records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabState {
    /// Listeners bound, control port not yet answering.
    Starting,
    /// Everything answers; `lab up` returns once it sees this.
    Ready,
    /// Shut down cleanly; the ports and password are kept for the next `lab up`.
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub protocol: u32,
    pub state: LabState,
    /// The daemon's process id; `None` once stopped.
    pub pid: Option<u32>,
    /// The control port (JSON lines on 127.0.0.1); `None` while starting and once stopped.
    pub control: Option<SocketAddr>,
    pub login: LoginInfo,
    /// FQDN of the Persistent Chat pool (the `service:` identity of Set-CsPersistentChatState).
    pub pool: String,
    pub clock_speed: f64,
    /// The lab clock (ms since the Unix epoch, UTC) when the lab last saved its state.
    #[serde(default)]
    pub lab_time_ms: Option<i64>,
    pub instances: Vec<ManifestInstance>,
    pub persistent_chat_servers: Vec<ChatServer>,
    /// The Front End servers that can run the Central Management Server's master, by data center.
    #[serde(default)]
    pub front_end_servers: Vec<ChatServer>,
    /// The active Persistent Chat servers the lab started with (cms.json holds the current ones).
    pub active_servers: Vec<String>,
    pub share: PathBuf,
    pub copy_folder: PathBuf,
    pub backups: PathBuf,
    /// Every lab variant with the value this lab follows (docs/lab.md), so that other processes
    /// (the simulated shell, a test) can see which reading of the reference is in force.
    #[serde(default)]
    pub variants: BTreeMap<String, String>,
    /// With `lab up --windows-paths`: the Windows view of the same folders (`share`, `copy_folder`
    /// and `backups` above are their Linux view) and every drive and share mounted onto a lab folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_paths: Option<WindowsNames>,
    /// How the instances treat encryption: `not_supported`, `required` or `strict`.
    #[serde(default = "plaintext")]
    pub encryption: String,
    /// The lab CA's certificate (PEM), which issued every instance's certificate; `None` for a
    /// plaintext lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The Windows account every instance accepts through NTLM (`DOMAIN\user`), its password and
    /// the variable pcfail's runbook reads it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_login: Option<LoginInfo>,
}

fn plaintext() -> String {
    "not_supported".to_owned()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginInfo {
    pub user: String,
    pub password: String,
    /// The environment variable pcfail's runbook reads the password from.
    pub password_env: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInstance {
    pub role: Role,
    /// `@@SERVERNAME`, e.g. `ATL-SQL-001`.
    pub name: String,
    pub fqdn: String,
    /// Where the simulated instance listens (TDS).
    pub address: SocketAddr,
    /// The named instance (`PCHAT`) that the host's SQL Browser resolves to `address`; `None` when
    /// the lab runs on bare ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// The host's SQL Browser (UDP; 1434 at a real site, one port per lab host here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<SocketAddr>,
    pub data_center: String,
    /// Database mirroring endpoint, `TCP://fqdn:5022`.
    pub endpoint: String,
    /// FQDN of the instance the topology pairs with this one as its mirror.
    pub mirror: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatServer {
    pub fqdn: String,
    pub data_center: String,
}

/// What a lab.json says about the process behind it, checked against the live system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The process exists and (once ready) its control port accepts connections.
    Running {
        pid: u32,
    },
    /// The manifest names a process that is gone, or whose control port is dead: a crashed daemon.
    Stale {
        pid: u32,
    },
    Stopped,
}

impl Manifest {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }

    /// Reads DIR/lab.json. A missing file is [`LabError::NoLab`], which tells the operator how to start one.
    pub fn load(dir: &Path) -> Result<Manifest, LabError> {
        let path = Manifest::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NoLab {
                    dir: dir.to_path_buf(),
                });
            }
            Err(source) => return Err(LabError::io("read", path, source)),
        };
        serde_json::from_slice(&bytes).map_err(|source| LabError::BadManifest { path, source })
    }

    /// Writes DIR/lab.json atomically, readable by its owner only (it holds the password).
    pub(crate) fn save(&self, dir: &Path) -> Result<(), LabError> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        bytes.push(b'\n');
        fsutil::write_atomic(&Manifest::path(dir), &bytes, true)
    }

    /// A new lab's manifest: the fixed topology with the given addresses and password.
    pub(crate) fn fresh(
        dir: &Path,
        password: String,
        clock_speed: f64,
        addresses: &dyn Fn(Role) -> SocketAddr,
    ) -> Manifest {
        let instances = topology::INSTANCES
            .iter()
            .map(|s| ManifestInstance {
                role: s.role,
                name: s.name.to_owned(),
                fqdn: s.fqdn(),
                address: addresses(s.role),
                instance_name: None,
                browser: None,
                data_center: s.data_center.to_owned(),
                endpoint: s.endpoint(),
                mirror: s.mirror_fqdn(),
            })
            .collect();
        let persistent_chat_servers = topology::PERSISTENT_CHAT_SERVERS
            .iter()
            .map(|(fqdn, dc)| ChatServer {
                fqdn: (*fqdn).to_owned(),
                data_center: (*dc).to_owned(),
            })
            .collect::<Vec<_>>();
        let front_end_servers = topology::FRONT_END_SERVERS
            .iter()
            .map(|(fqdn, dc)| ChatServer {
                fqdn: (*fqdn).to_owned(),
                data_center: (*dc).to_owned(),
            })
            .collect::<Vec<_>>();
        let active_servers = topology::initial_active_servers();
        Manifest {
            protocol: PROTOCOL,
            state: LabState::Starting,
            pid: Some(std::process::id()),
            control: None,
            login: LoginInfo {
                user: topology::LOGIN_USER.to_owned(),
                password,
                password_env: topology::PASSWORD_ENV.to_owned(),
            },
            pool: topology::POOL.to_owned(),
            clock_speed,
            lab_time_ms: None,
            instances,
            persistent_chat_servers,
            front_end_servers,
            active_servers,
            share: dir.join("share"),
            copy_folder: dir.join("backup-copy"),
            backups: dir.join("backups"),
            variants: BTreeMap::new(),
            windows_paths: None,
            encryption: plaintext(),
            ca_file: None,
            windows_login: None,
        }
    }

    pub fn instance(&self, role: Role) -> Option<&ManifestInstance> {
        self.instances.iter().find(|i| i.role == role)
    }

    /// Checks the lab in `dir` (whose lab.json this is): its process alive (it holds the lab's lock,
    /// [`DaemonLock`]), and (when ready) its control port answering. The port check catches a wedged
    /// daemon.
    pub(crate) fn liveness(&self, dir: &Path) -> Liveness {
        let Some(pid) = self.pid.filter(|_| self.state != LabState::Stopped) else {
            return Liveness::Stopped;
        };
        if !DaemonLock::held(dir) {
            return Liveness::Stale { pid };
        }
        match (self.state, self.control) {
            (LabState::Ready, Some(control)) => {
                match std::net::TcpStream::connect_timeout(&control, Duration::from_millis(500)) {
                    Ok(_) => Liveness::Running { pid },
                    Err(_) => Liveness::Stale { pid },
                }
            }
            // Still starting (or a ready manifest without a port, which the runtime never writes).
            _ => Liveness::Running { pid },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Manifest {
        let port = |role: Role| -> SocketAddr {
            let n = Role::ALL.iter().position(|r| *r == role).unwrap() as u16;
            SocketAddr::from(([127, 0, 0, 1], 40001 + n))
        };
        Manifest::fresh(dir, "pw".into(), 60.0, &port)
    }

    #[test]
    fn a_fresh_manifest_has_the_documented_shape() {
        let m = sample(Path::new("/abs/DIR"));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["protocol"], 1);
        assert_eq!(json["login"]["user"], "sa");
        assert_eq!(json["login"]["password_env"], "PCFAIL_LAB_PASSWORD");
        assert_eq!(json["pool"], "atl-cs-001.litwareinc.com");
        assert_eq!(json["instances"][0]["role"], "primary");
        assert_eq!(json["instances"][0]["address"], "127.0.0.1:40001");
        assert_eq!(json["instances"][0]["mirror"], "atl-sql-002.litwareinc.com");
        assert_eq!(json["instances"][3]["name"], "DAL-SQL-002");
        assert_eq!(json["instances"][3]["mirror"], serde_json::Value::Null);
        assert_eq!(
            json["active_servers"],
            serde_json::json!(["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"])
        );
        assert_eq!(json["persistent_chat_servers"][2]["data_center"], "DAL");
        assert_eq!(json["share"], "/abs/DIR/share");
        assert_eq!(json["copy_folder"], "/abs/DIR/backup-copy");
        assert_eq!(json["backups"], "/abs/DIR/backups");
    }

    #[test]
    fn load_round_trips_and_a_missing_file_says_how_to_start_a_lab() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(err, LabError::NoLab { .. }), "{err}");
        let m = sample(dir.path());
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
    }

    #[test]
    fn liveness_distinguishes_running_stale_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample(dir.path());
        m.state = LabState::Starting;
        m.pid = Some(4242);
        // Its process is gone: nobody holds the lab's lock.
        assert_eq!(m.liveness(dir.path()), Liveness::Stale { pid: 4242 });

        let lock = DaemonLock::acquire(dir.path()).unwrap().unwrap();
        assert_eq!(m.liveness(dir.path()), Liveness::Running { pid: 4242 });

        // Alive but its control port does not answer: a wedged daemon.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        m.state = LabState::Ready;
        m.control = Some(closed);
        assert_eq!(m.liveness(dir.path()), Liveness::Stale { pid: 4242 });

        m.state = LabState::Stopped;
        assert_eq!(m.liveness(dir.path()), Liveness::Stopped);
        drop(lock);
    }
}
