//! Integration tests for the simulated management shell, driving `pcfail_lab_shell::run` with
//! in-memory I/O over a temporary lab directory. One topic per file.

mod active_server;
mod chat_state;
mod faults;
mod mirror_database;
mod mirror_sql;
mod module;
mod protocol;
mod quoting;
mod scripted_sql;
mod support;
mod test_message;
