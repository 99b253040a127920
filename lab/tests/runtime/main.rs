//! Integration tests of the lab runtime: a real `Lab` on loopback, clients speaking TDS through tiberius,
//! and the CLI-level functions talking to the lab's control port. One topic per file.

mod control_port;
mod daemon;
mod disaster;
mod lifecycle;
mod log_shipping;
mod real_site;
mod status_json;
mod support;
mod windows_paths;
