//! The pcfail lab: simulated SQL Server instances and the Persistent Chat HA/DR world they form.
//!
//! Two halves share this crate. [`engine`] gives SQL its meaning (databases, backups, RESTORE, log
//! shipping, mirroring, sessions). The runtime (every other module) runs that world:
//!
//! ```text
//! LabOptions -> Lab::start -> one pcfail_lab_tds::run(listener, InstanceBackend) per instance (127.0.0.1)
//!                          -> tick loop (World::tick at lab time: chat traffic, log-shipping jobs)
//!                          -> persistence (DIR/state.json, DIR/lab.json)
//!                          -> control port (JSON lines) <- up/status/disaster/rebuild_primary/stop/start
//!                                                          instance/share/down/transcript
//! ```
//!
//! Disasters are the runtime's too: [`Lab::disaster`] leaves the primary data center silent (its
//! instances accept connections and never answer), [`Lab::disaster_with`] chooses silent or refusing
//! and whether the log-shipping share is lost, [`Lab::stop_instance`] is a stopped service.
//!
//! In-process users (tests, `pcfail drill`) hold a [`Lab`]; the CLI reaches a lab daemon in another
//! process through the free functions ([`up`], [`status`], [`down`], ...), which find it through DIR/lab.json
//! ([`Manifest`]). The directory layout and lab.json format are in docs/lab.md.

mod browser;
mod cli;
mod control;
pub mod engine;
mod error;
mod fsutil;
mod lab;
mod manifest;
mod options;
mod pki;
mod ports;
mod status;
mod topology;

pub use cli::{
    clear_transcripts, disaster, disaster_with, down, make_backlog, rebuild_primary,
    run_foreground, set_share_reachable, start_instance, status, stop_instance, transcript, up,
};
pub use engine::{
    Backlog, BacklogMade, LabTime, Role, SharedWorld, TranscriptEntry, VARIANTS, VariantSpec,
    parse_assignment as parse_variant,
};
pub use error::LabError;
pub use lab::{Disaster, Lab};
pub use manifest::{ChatServer, LabState, LoginInfo, Manifest, ManifestInstance};
pub use options::{ENCRYPTION_KEYS, Encryption, LabOptions, encryption_key, parse_encryption};
pub use status::{BackupFile, BackupFileKind, InstanceStatus, Status, format_utc};
pub use topology::{
    DOMAIN, INSTANCE_NAME, PASSWORD_ENV, POOL, WINDOWS_PASSWORD_ENV, WINDOWS_USER, parse_role,
};
