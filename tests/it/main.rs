//! pcfail's integration tests: one binary, one module per topic, each driving the real `pcfail`
//! binary through the small builder in `test.rs`.

mod cli;
mod crash;
mod drill;
mod journal;
mod lab_realism;
mod lab_support;
mod lab_variants;
mod log_shipping_setup;
// Needs the `kerberos` build and MIT Kerberos's KDC tools.
#[cfg(feature = "kerberos")]
mod kerberos;
// Its fake PowerShell is a shell script.
#[cfg(unix)]
mod no_side_effects;
mod plan;
mod powershell_host;
mod powershell_syntax;
mod procedure;
mod real_server;
mod real_site;
mod remoting;
mod report;
mod run_end_to_end;
mod run_failback_faults;
mod run_faults;
mod run_safety;
mod runbook_text;
mod situation;
mod test;
mod validate;
