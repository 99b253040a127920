//! The lab's SQL engine: a behavioural model of the SQL Server features pcfail uses.
//!
//! It owns the meaning of SQL in the lab: databases with LSNs and chat records, backup files, RESTORE,
//! log shipping and its Agent jobs, mirroring, sessions and their running requests, KILL and
//! application locks, the catalog views that expose them, and how instances and the share are lost.
//! It does not own bytes on the wire (`pcfail-lab-tds` does) nor the lab daemon's lifecycle,
//! persistence file or control socket (the rest of `pcfail-lab` does).
//!
//! ```text
//! TDS request -> backend (login, admit: transcript, liveness, faults) -> request (a task of its own)
//!             -> compile (lexer/parser, variables) -> Statements
//!             -> exec (dispatch, batch rules) -> query | backup | restore | kill | mirroring | procs
//!                                                 -> log_shipping | agent | applock ; paths | share
//!             -> Events (rows, DONE, INFO, ERROR) back to the TDS layer
//! World::tick -> faults + chat traffic + agent (log-shipping jobs) ; World::status -> status.rs
//! ```
//!
//! What it understands (anything else SQL Server would reject keeps SQL Server's error, such as
//! 102/156 syntax, 208 object, 2812 procedure, 195 function; real T-SQL the lab does not model is the
//! lab's own 59999 "the lab does not model: ..."; never a silent success):
//! - SELECT with aliases and `*`, FROM one catalog view or an INNER/LEFT JOIN of two, WHERE (AND, OR,
//!   NOT, comparisons, IS [NOT] NULL, IN, LIKE), ORDER BY, TOP, COUNT/MAX/MIN/SUM over one group,
//!   CASE, CAST/CONVERT, `SELECT @v = expr`; DECLARE, SET @v, SET <option> (NOCOUNT, XACT_ABORT),
//!   USE, PRINT, EXEC (`@rc =`, named/positional/OUTPUT/DEFAULT arguments), sp_executesql (RPC id 10
//!   or in a batch), BEGIN/COMMIT/ROLLBACK TRAN (counted, for @@TRANCOUNT, 3021/6115 and
//!   transaction-owned app locks).
//! - BACKUP DATABASE|LOG, RESTORE DATABASE|LOG|HEADERONLY|FILELISTONLY|VERIFYONLY, KILL, sp_who2,
//!   sp_who, sys.dm_exec_sessions/dm_exec_requests/sysprocesses, ALTER DATABASE SET
//!   PARTNER/WITNESS/RECOVERY/<user access>, CREATE/ALTER/DROP ENDPOINT.
//! - The log-shipping procedures of reference G, msdb's sp_add_schedule, sp_attach_schedule,
//!   sp_update_job, sp_start_job, and sp_getapplock/sp_releaseapplock.
//! - Not modelled (59999): IF/WHILE, INSERT/UPDATE/DELETE, WAITFOR, GROUP BY, subqueries, joins of
//!   three or more tables, most catalog views and system procedures; nor temp tables, witnesses,
//!   differential backups.
//!
//! Where the reference is UNVERIFIED, the reading follows [`Variants`] (variants.rs).
//!
//! The seam with the runtime is this module's public API: [`World`] (the four instances and their
//! state, serializable), [`Clock`] (lab time), and [`InstanceBackend`] (one per instance, the
//! `pcfail_lab_tds::Backend` whose sessions run statements against the shared world).

mod agent;
mod applock;
mod backend;
mod backlog;
mod backup;
mod backupfile;
mod catalog;
mod clock;
mod compile;
mod config;
mod errorlog;
mod errors;
mod exec;
mod expr;
mod faults;
mod guid;
mod kill;
mod lexer;
mod log_shipping;
mod logins;
mod lsn;
mod mirroring;
mod model;
mod parser;
mod paths;
mod procs;
mod query;
mod request;
mod restore;
mod share;
mod status;
mod time;
mod variants;
mod world;

#[cfg(test)]
mod tests;

pub use backend::{EngineSession, InstanceBackend};
pub use backlog::{Backlog, BacklogMade};
pub use clock::{Clock, LabTime};
pub use config::{InstanceConfig, Role, WorldConfig};
pub use paths::{Mount, WindowsNames};
pub use variants::{VARIANTS, VariantSpec, Variants, parse_assignment};
pub use world::{SharedWorld, TranscriptEntry, World};
// For the lab's status report, which shows lab time in the same calendar.
pub(crate) use time::civil;
