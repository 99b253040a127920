//! The `pcfail` binary: everything lives in the library so it can be tested.

fn main() -> std::process::ExitCode {
    pcfail::run(std::env::args_os())
}
