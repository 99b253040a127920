//! pcfail's integration tests: one binary, one module per topic, each driving the real `pcfail`
//! binary through the small builder in `test.rs`.

mod cli;
mod no_side_effects;
mod plan;
mod powershell_syntax;
mod test;
mod validate;
