//! `Lab`: a running lab inside the current tokio runtime: listeners, scheduler, persistence, control.
//!
//! Owns the lifecycle only. The engine's `World` gives SQL its meaning and the TDS crate speaks the
//! wire; this file decides when each instance listens, when the world's clock ticks, when state.json
//! is written, and what lab.json says. Tests, `pcfail drill` and the `lab up` daemon all use it.
//!
//! Concurrency: the world sits behind a `std::sync::Mutex` that is only held for short, synchronous
//! calls (tick, status, serialize); nothing here awaits while holding it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::control;
use crate::daemon_lock::DaemonLock;
use crate::engine::{
    Backlog, BacklogMade, Clock, InstanceBackend, LabTime, Role, SharedWorld, TranscriptEntry,
    Variants, World,
};
use crate::error::LabError;
use crate::fsutil;
use crate::manifest::{LabState, Liveness, Manifest};
use crate::options::LabOptions;
use crate::ports;
use crate::status::Status;
use crate::topology;

/// How often state.json may be rewritten while the world changes.
const PERSIST_EVERY: Duration = Duration::from_millis(500);
/// How long a stopping instance's accept loop may take to let go of its port.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How the primary data center is lost ([`Lab::disaster_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disaster {
    /// Its instances go silent: connections are accepted by nothing and never answered, so clients
    /// wait for their own timeout, as when a data center's network is gone. False: they refuse at
    /// once, as stopped SQL Server services do (the "instance stopped" fault).
    pub silent: bool,
    /// The log-shipping share is lost with it (reference J.6): its uncopied backups are gone.
    pub share_lost: bool,
}

impl Default for Disaster {
    /// Silent, share kept: the data center's SQL Servers vanish, the share lives elsewhere.
    fn default() -> Self {
        Disaster {
            silent: true,
            share_lost: false,
        }
    }
}

/// A running lab. Dropping it without [`Lab::shutdown`] stops its tasks but does not save state.
pub struct Lab {
    inner: Arc<Inner>,
    manifest: Manifest,
    background: Vec<JoinHandle<()>>,
    /// Says that this lab is alive to other processes (declared last: released after the rest).
    _lock: DaemonLock,
}

/// What the control server and the background tasks share with the `Lab` handle.
pub(crate) struct Inner {
    dir: PathBuf,
    world: SharedWorld,
    clock: Arc<Clock>,
    backends: HashMap<Role, Arc<InstanceBackend>>,
    addresses: HashMap<Role, SocketAddr>,
    /// Each instance's encryption setting and certificate.
    security: HashMap<Role, Arc<pcfail_lab_tds::Security>>,
    /// The accept loop of each instance currently listening.
    listening: tokio::sync::Mutex<HashMap<Role, Listening>>,
    /// The manifest as last written (lab_time_ms moves with each save).
    manifest: Mutex<Manifest>,
    /// The world as last written to state.json, to skip writes when nothing changed.
    last_saved: Mutex<Vec<u8>>,
    /// Stops the scheduler, the persistence loop and the control server.
    stop: CancellationToken,
    /// Cancelled when a client asks the lab to go down (`pcfail lab down`).
    down_requested: CancellationToken,
}

struct Listening {
    token: CancellationToken,
    task: JoinHandle<()>,
}

impl Lab {
    /// Creates DIR (or resumes the world from DIR/state.json), binds one 127.0.0.1 listener per instance
    /// (free ports below the ephemeral range the first time, see `ports`; the ports from lab.json afterwards), starts the scheduler, persistence and
    /// the control port, creates share/, backup-copy/ and backups/, and writes DIR/lab.json as ready.
    /// Refuses a DIR whose lab.json names a live lab.
    pub async fn start(opts: LabOptions) -> Result<Lab, LabError> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| LabError::io("create", &opts.dir, e))?;
        let dir = absolute_dir(&opts.dir).map_err(|e| LabError::io("resolve", &opts.dir, e))?;

        let previous = match Manifest::load(&dir) {
            Ok(m) => Some(m),
            Err(LabError::NoLab { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(m) = &previous {
            match m.liveness(&dir) {
                Liveness::Running { pid } => {
                    let control = m
                        .control
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "not yet open".to_owned());
                    return Err(LabError::AlreadyRunning { dir, pid, control });
                }
                Liveness::Stale { pid } => {
                    tracing::warn!(pid, "taking over a lab whose process is gone")
                }
                Liveness::Stopped => {}
            }
        }
        // Held until this `Lab` is dropped (after `shutdown` has saved the state), or this process ends.
        let Some(lock) = DaemonLock::acquire(&dir)? else {
            // Another lab started in `dir` since lab.json was read.
            let m = Manifest::load(&dir).ok();
            return Err(LabError::AlreadyRunning {
                dir,
                pid: m.as_ref().and_then(|m| m.pid).unwrap_or(0),
                control: m
                    .and_then(|m| m.control)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "not yet open".to_owned()),
            });
        };
        for sub in ["share", "backup-copy", "backups"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|e| LabError::io("create", &path, e))?;
        }

        let variants = Variants::new(&opts.variants).map_err(LabError::BadVariant)?;
        let password = match &previous {
            Some(m) => m.login.password.clone(),
            None => random_password()?,
        };
        let (mut world, origin) = load_or_create_world(&dir, previous.as_ref(), &opts, &password)?;
        // What the runtime decides afresh at every start, for new and resumed worlds alike: the
        // fixed Persistent Chat topology and the variants this start asked for.
        world.config.chat_servers = topology::chat_servers();
        world.config.initial_active_servers = topology::initial_active_servers();
        world.config.variants = variants.clone();
        world.config.io_mb_per_s = opts.io_mb_per_s;
        // The drives and shares follow this start's option; msdb keeps the paths its log-shipping
        // configuration was created with.
        world.config.windows = opts.windows_paths.then(|| topology::windows_names(&dir));
        for mount in world.config.windows.iter().flat_map(|w| &w.mounts) {
            std::fs::create_dir_all(&mount.lab)
                .map_err(|e| LabError::io("create", &mount.lab, e))?;
        }
        let windows_password = match previous.as_ref().and_then(|m| m.windows_login.as_ref()) {
            Some(login) => login.password.clone(),
            None => random_password()?,
        };
        world.config.windows_login =
            Some((topology::WINDOWS_USER.to_owned(), windows_password.clone()));
        let security = security(&dir, opts.encryption)?;
        let clock = Arc::new(Clock::new(origin, opts.clock_speed));
        let (listeners, addresses) = bind_instances(&world, previous.as_ref()).await?;
        let world: SharedWorld = Arc::new(Mutex::new(world));
        let mut manifest =
            Manifest::fresh(&dir, password, opts.clock_speed, &|role| addresses[&role]);
        manifest.variants = variants.effective();
        manifest.windows_paths = opts.windows_paths.then(|| topology::windows_names(&dir));
        manifest.lab_time_ms = Some(clock.now().0);
        manifest.encryption = crate::options::encryption_key(opts.encryption).to_owned();
        manifest.ca_file = security.ca_file.clone();
        manifest.windows_login = Some(crate::manifest::LoginInfo {
            user: topology::WINDOWS_USER.to_owned(),
            password: windows_password,
            password_env: topology::WINDOWS_PASSWORD_ENV.to_owned(),
        });
        let mut browsers = Vec::new();
        if opts.named_instances {
            for instance in &mut manifest.instances {
                let wanted = previous
                    .as_ref()
                    .and_then(|m| m.instance(instance.role))
                    .and_then(|i| i.browser);
                let socket = ports::bind_udp(instance.role.as_str(), wanted).await?;
                let local = socket.local_addr().map_err(|e| LabError::Listen {
                    role: instance.role.as_str(),
                    address: "udp 127.0.0.1".to_owned(),
                    source: e,
                })?;
                instance.instance_name = Some(topology::INSTANCE_NAME.to_owned());
                instance.browser = Some(local);
                let listing = crate::browser::Listing {
                    host: instance.name.clone(),
                    instance: topology::INSTANCE_NAME.to_owned(),
                    version: "13.0.5026.0".to_owned(),
                    tcp: instance.address,
                };
                browsers.push((instance.role, socket, listing));
            }
        }
        let backends = Role::ALL
            .into_iter()
            .map(|role| {
                (
                    role,
                    Arc::new(InstanceBackend::new(world.clone(), role, clock.clone())),
                )
            })
            .collect();
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            world,
            clock,
            backends,
            addresses,
            security: security.by_role,
            listening: tokio::sync::Mutex::new(HashMap::new()),
            manifest: Mutex::new(manifest.clone()),
            last_saved: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            down_requested: CancellationToken::new(),
        });
        {
            let mut listening = inner.listening.lock().await;
            for (role, listener) in listeners {
                listening.insert(role, inner.serve(role, listener));
            }
        }

        let control_listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| LabError::io("open the control port in", &dir, e))?;
        manifest.control = Some(
            control_listener
                .local_addr()
                .map_err(|e| LabError::io("open the control port in", &dir, e))?,
        );
        manifest.state = LabState::Ready;
        *inner.manifest.lock().expect("manifest lock") = manifest.clone();
        inner.persist(true)?;

        let mut background = vec![
            tokio::spawn(control::serve(control_listener, inner.clone())),
            tokio::spawn(inner.clone().tick_loop(opts.tick_ms)),
            tokio::spawn(inner.clone().persist_loop()),
        ];
        for (role, socket, listing) in browsers {
            background.push(tokio::spawn(crate::browser::serve(
                socket,
                listing,
                inner.backends[&role].clone(),
                inner.stop.clone(),
            )));
        }
        tracing::info!(dir = %dir.display(), control = ?manifest.control, "lab ready");
        Ok(Lab {
            inner,
            manifest,
            background,
            _lock: lock,
        })
    }

    /// The lab.json content as written when the lab became ready.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn world(&self) -> SharedWorld {
        self.inner.world.clone()
    }

    /// The lab clock now.
    pub fn now(&self) -> LabTime {
        self.inner.clock.now()
    }

    /// Makes a log-shipping backlog at once (see [`Backlog`]) and moves the lab clock past it.
    pub fn make_backlog(&self, spec: &Backlog) -> Result<BacklogMade, LabError> {
        self.inner.make_backlog(spec)
    }

    /// The primary data center is lost the realistic way ([`Disaster::default`]): the primary and
    /// the primary mirror become silent, so every connection to them, old or new, waits for the
    /// client's own timeout.
    pub async fn disaster(&self) -> Result<(), LabError> {
        self.inner.disaster(Disaster::default()).await
    }

    /// The primary data center is lost as `how` says: silent or refusing, with or without the
    /// log-shipping share.
    pub async fn disaster_with(&self, how: Disaster) -> Result<(), LabError> {
        self.inner.disaster(how).await
    }

    /// The primary data center comes back on the same ports, rebuilt by Topology Builder; a share
    /// lost with it is reachable again.
    pub async fn rebuild_primary(&self) -> Result<(), LabError> {
        self.inner.rebuild_primary().await
    }

    /// One instance's SQL Server service stops: its port refuses connections at once and its
    /// sessions are closed. Its databases are kept for [`Lab::start_instance`].
    pub async fn stop_instance(&self, role: Role) -> Result<(), LabError> {
        self.inner.stop_instance(role).await
    }

    /// A stopped (or lost) instance answers again, with the databases it had.
    pub async fn start_instance(&self, role: Role) -> Result<(), LabError> {
        self.inner.start_instance(role).await
    }

    /// The log-shipping share becomes unreachable (false) or reachable again (true), on its own,
    /// with every instance still up: the SQL engine answers 3201 for paths under it and listing its
    /// folder fails for other processes (docs/lab.md).
    pub fn set_share_reachable(&self, reachable: bool) {
        self.inner.set_share_reachable(reachable);
    }

    pub async fn status(&self) -> Status {
        self.inner.status().await
    }

    /// What clients sent to one instance (logins and statements), in order.
    pub fn transcript(&self, role: Role) -> Vec<TranscriptEntry> {
        self.inner
            .world
            .lock()
            .expect("world lock")
            .transcript(role)
    }

    /// Resolves when a client asked this lab to go down through its control port.
    pub async fn down_requested(&self) {
        self.inner.down_requested.cancelled().await
    }

    /// Stops everything, writes state.json, and marks lab.json stopped (ports and password are kept).
    pub async fn shutdown(mut self) -> Result<(), LabError> {
        self.inner.stop.cancel();
        for task in self.background.drain(..) {
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!("a lab background task panicked: {e}");
            }
        }
        for role in Role::ALL {
            self.inner.stop_listening(role).await;
        }
        self.inner.persist(true)?;
        let mut manifest = self.inner.manifest.lock().expect("manifest lock").clone();
        manifest.state = LabState::Stopped;
        manifest.pid = None;
        manifest.control = None;
        manifest.save(&self.inner.dir)?;
        tracing::info!(dir = %self.inner.dir.display(), "lab stopped");
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Without shutdown (a panicking test): stop the tasks; accept loops end with their tokens.
        self.inner.stop.cancel();
        if let Ok(listening) = self.inner.listening.try_lock() {
            for l in listening.values() {
                l.token.cancel();
            }
        }
    }
}

impl Inner {
    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    pub(crate) fn request_down(&self) {
        self.down_requested.cancel();
    }

    pub(crate) fn transcript(&self, role: Role) -> Vec<TranscriptEntry> {
        self.world.lock().expect("world lock").transcript(role)
    }

    pub(crate) fn clear_transcripts(&self) {
        self.world.lock().expect("world lock").clear_transcripts();
    }

    /// Starts the accept loop of one instance on an already bound listener.
    fn serve(&self, role: Role, listener: TcpListener) -> Listening {
        let token = self.stop.child_token();
        let backend = self.backends[&role].clone();
        let security = self.security[&role].clone();
        let task = tokio::spawn(pcfail_lab_tds::run_secured(
            listener,
            backend,
            security,
            token.clone(),
        ));
        Listening { token, task }
    }

    /// Closes an instance's listener and waits until its port is free again.
    async fn stop_listening(&self, role: Role) {
        let Some(listening) = self.listening.lock().await.remove(&role) else {
            return;
        };
        listening.token.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, listening.task)
            .await
            .is_err()
        {
            tracing::warn!(
                role = role.as_str(),
                "instance accept loop did not stop in time"
            );
        }
    }

    pub(crate) async fn disaster(&self, how: Disaster) -> Result<(), LabError> {
        for role in [Role::Primary, Role::PrimaryMirror] {
            if how.silent {
                // The listener stays: connections are accepted by nothing and never answered.
                self.world.lock().expect("world lock").lose_instance(role);
                self.ensure_listening(role).await?;
            } else {
                self.stop_instance(role).await?;
            }
        }
        {
            let mut world = self.world.lock().expect("world lock");
            if let Some(dc) = world.data_center(Role::Primary) {
                world.set_data_center_lost(&dc, true);
            }
            if how.share_lost {
                world.set_share_lost(true);
            }
        }
        tracing::info!(
            silent = how.silent,
            share_lost = how.share_lost,
            "disaster: primary data center lost"
        );
        self.persist(true)
    }

    pub(crate) async fn stop_instance(&self, role: Role) -> Result<(), LabError> {
        // Listener first, so no new session slips in after the world has dropped the old ones.
        self.stop_listening(role).await;
        self.world
            .lock()
            .expect("world lock")
            .set_instance_up(role, false);
        tracing::info!(role = role.as_str(), "instance stopped");
        self.persist(true)
    }

    pub(crate) async fn start_instance(&self, role: Role) -> Result<(), LabError> {
        self.world
            .lock()
            .expect("world lock")
            .set_instance_up(role, true);
        self.ensure_listening(role).await?;
        tracing::info!(role = role.as_str(), "instance started");
        self.persist(true)
    }

    pub(crate) fn make_backlog(&self, spec: &Backlog) -> Result<BacklogMade, LabError> {
        let made = {
            let mut world = self.world.lock().expect("world lock");
            let made = world
                .make_backlog(self.clock.now(), spec)
                .map_err(LabError::Backlog)?;
            self.clock.advance_to(made.now);
            made
        };
        tracing::info!(
            pending = made.pending,
            applied = made.applied,
            "backlog made"
        );
        self.persist(true)?;
        Ok(made)
    }

    pub(crate) fn set_share_reachable(&self, reachable: bool) {
        self.world
            .lock()
            .expect("world lock")
            .set_share_lost(!reachable);
        tracing::info!(reachable, "log-shipping share");
    }

    /// Binds the instance's recorded address again if nothing listens there.
    async fn ensure_listening(&self, role: Role) -> Result<(), LabError> {
        let mut listening = self.listening.lock().await;
        if let std::collections::hash_map::Entry::Vacant(slot) = listening.entry(role) {
            let listener = bind(role, self.addresses[&role]).await?;
            slot.insert(self.serve(role, listener));
        }
        Ok(())
    }

    pub(crate) async fn rebuild_primary(&self) -> Result<(), LabError> {
        {
            let mut world = self.world.lock().expect("world lock");
            world.rebuild_primary(self.clock.now());
            world.set_instance_up(Role::Primary, true);
            world.set_instance_up(Role::PrimaryMirror, true);
        }
        for role in [Role::Primary, Role::PrimaryMirror] {
            self.ensure_listening(role).await?;
        }
        tracing::info!("primary data center rebuilt");
        self.persist(true)
    }

    pub(crate) async fn status(&self) -> Status {
        let (engine, up, now) = {
            let world = self.world.lock().expect("world lock");
            let up: HashMap<Role, bool> =
                Role::ALL.into_iter().map(|r| (r, world.is_up(r))).collect();
            (world.status(), up, self.clock.now())
        };
        let listening = self.listening.lock().await;
        let manifest = self.manifest.lock().expect("manifest lock").clone();
        let answering = |role: Role| up[&role] && listening.contains_key(&role);
        Status::gather(&self.dir, &manifest, true, Some(now), &engine, &answering)
    }

    async fn tick_loop(self: Arc<Self>, tick_ms: u64) {
        let mut interval = tokio::time::interval(Duration::from_millis(tick_ms.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = interval.tick() => {
                    let now = self.clock.now();
                    self.world.lock().expect("world lock").tick(now);
                }
            }
        }
    }

    async fn persist_loop(self: Arc<Self>) {
        let mut interval = tokio::time::interval(PERSIST_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = interval.tick() => {
                    let inner = self.clone();
                    // File writes (with fsync) belong on a blocking thread, not on a runtime worker.
                    match tokio::task::spawn_blocking(move || inner.persist(false)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!("could not save the lab state: {e}"),
                        Err(e) => tracing::error!("the lab state writer failed: {e}"),
                    }
                }
            }
        }
    }

    /// Writes state.json (and lab.json's lab time) if the world changed since the last write, or always
    /// when `force`. Serializing happens under the world lock; writing does not.
    fn persist(&self, force: bool) -> Result<(), LabError> {
        let (bytes, now) = {
            let world = self.world.lock().expect("world lock");
            (
                serde_json::to_vec(&*world).expect("the world always serializes"),
                self.clock.now(),
            )
        };
        let mut last = self.last_saved.lock().expect("persist lock");
        if !force && *last == bytes {
            return Ok(());
        }
        fsutil::write_atomic(&self.dir.join("state.json"), &bytes, false)?;
        *last = bytes;
        let manifest = {
            let mut manifest = self.manifest.lock().expect("manifest lock");
            manifest.lab_time_ms = Some(now.0);
            manifest.clone()
        };
        manifest.save(&self.dir)
    }
}

/// The world from DIR/state.json (with lab time resumed from lab.json), or Microsoft's HA/DR layout for
/// a new lab; and the lab time its clock starts at.
fn load_or_create_world(
    dir: &Path,
    previous: Option<&Manifest>,
    opts: &LabOptions,
    password: &str,
) -> Result<(World, LabTime), LabError> {
    let state_path = dir.join("state.json");
    match std::fs::read(&state_path) {
        Ok(bytes) => {
            let mut world: World =
                serde_json::from_slice(&bytes).map_err(|source| LabError::BadState {
                    path: state_path.clone(),
                    source,
                })?;
            world.restore_runtime(password);
            // Resume the lab's own time: log backup names must keep increasing across restarts.
            let origin = previous
                .and_then(|m| m.lab_time_ms)
                .map(LabTime)
                .unwrap_or_else(wall_clock);
            Ok((world, origin))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let now = wall_clock();
            let mut config = topology::world_config(
                dir,
                password,
                opts.backup_every_min,
                opts.copy_every_min,
                opts.restore_every_min,
                opts.windows_paths,
            );
            config.standby_secondary = opts.standby_secondary;
            config.distinct_service_accounts = opts.distinct_service_accounts;
            config.data_paths_per_instance = opts.data_paths_per_instance;
            Ok((World::new_hadr(config, now), now))
        }
        Err(e) => Err(LabError::io("read", state_path, e)),
    }
}

/// The instances' encryption settings, and the CA file clients check their certificates with.
struct LabSecurity {
    by_role: HashMap<Role, Arc<pcfail_lab_tds::Security>>,
    ca_file: Option<PathBuf>,
}

/// A fresh CA and one certificate per instance, unless the lab is plaintext.
fn security(dir: &Path, encryption: pcfail_lab_tds::Encryption) -> Result<LabSecurity, LabError> {
    use pcfail_lab_tds::{Encryption, Security};
    if encryption == Encryption::NotSupported {
        let plain = Arc::new(Security::plaintext());
        return Ok(LabSecurity {
            by_role: Role::ALL.into_iter().map(|r| (r, plain.clone())).collect(),
            ca_file: None,
        });
    }
    let ca = crate::pki::LabCa::create(dir)?;
    let mut by_role = HashMap::new();
    for role in Role::ALL {
        let cert = ca.issue(&topology::spec(role).fqdn())?;
        let security = Security::new(encryption, cert.chain, cert.key).map_err(LabError::Tls)?;
        by_role.insert(role, Arc::new(security));
    }
    Ok(LabSecurity {
        by_role,
        ca_file: Some(ca.file),
    })
}

type Listeners = HashMap<Role, TcpListener>;

/// Binds every instance that is up or lost (a lost one listens so that it can leave connections
/// unanswered); a stopped one only keeps its address, so it refuses connections until it is started.
async fn bind_instances(
    world: &World,
    previous: Option<&Manifest>,
) -> Result<(Listeners, HashMap<Role, SocketAddr>), LabError> {
    let mut listeners = HashMap::new();
    let mut addresses = HashMap::new();
    for role in Role::ALL {
        let wanted = previous.and_then(|m| m.instance(role)).map(|i| i.address);
        let up = world.is_up(role) || world.is_lost(role);
        let address = if up {
            let listener = match wanted {
                Some(address) => bind(role, address).await?,
                None => ports::bind_fresh(role.as_str()).await?,
            };
            let address = listener
                .local_addr()
                .map_err(|e| listen_error(role, wanted, e))?;
            listeners.insert(role, listener);
            address
        } else if let Some(address) = wanted {
            address
        } else {
            // A down instance with no recorded port (state.json without lab.json): reserve a free one.
            let probe = ports::bind_fresh(role.as_str()).await?;
            probe
                .local_addr()
                .map_err(|e| listen_error(role, None, e))?
        };
        addresses.insert(role, address);
    }

    Ok((listeners, addresses))
}

async fn bind(role: Role, address: SocketAddr) -> Result<TcpListener, LabError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| listen_error(role, Some(address), e))
}

fn listen_error(role: Role, address: Option<SocketAddr>, source: std::io::Error) -> LabError {
    let address = address
        .map(|a| a.to_string())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    LabError::Listen {
        role: role.as_str(),
        address,
        source,
    }
}

/// The lab folder as an absolute path, which lab.json, msdb and the runbook quote. On Unix symbolic
/// links are resolved. On Windows `canonicalize` would give a verbatim `\\?\C:\...` name, which
/// SQL Server paths never have and the engine would read as a UNC share, so the folder is only made
/// absolute there.
fn absolute_dir(dir: &Path) -> std::io::Result<PathBuf> {
    if cfg!(windows) {
        std::path::absolute(dir)
    } else {
        std::fs::canonicalize(dir)
    }
}

/// The real UTC time, where a new lab's clock starts.
fn wall_clock() -> LabTime {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    LabTime(since_epoch.as_millis() as i64)
}

/// A fresh sa password: 20 characters from the operating system's random source, with upper case, lower case and a
/// digit guaranteed (SQL Server's password policy), and nothing that needs quoting in T-SQL or PowerShell.
fn random_password() -> Result<String, LabError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(LabError::Random)?;
    let body: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    Ok(format!("Lab{body}7"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn lab_futures_can_be_spawned_on_a_multi_threaded_runtime() {
        // Compile-time property: `pcfail drill` and the daemon spawn these; nothing here is polled.
        let opts = LabOptions::new("/nonexistent");
        assert_send(Lab::start(opts.clone()));
        assert_send(crate::cli::run_foreground(opts));
    }

    #[test]
    fn passwords_are_random_and_meet_the_sql_server_policy() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_ne!(a, b);
        for p in [a, b] {
            assert_eq!(p.len(), 24);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_lowercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
        }
    }
}
