//! The ways an operator (or the system) stops a run: Ctrl-C, SIGTERM (a service manager, `kill`),
//! SIGHUP (the terminal closed) on Unix; Ctrl-C, Ctrl-Break and closing the console on Windows. All
//! end a run the same way: the step in flight is abandoned (and examined again on resume), the
//! PowerShell host is stopped, the journal records the interruption, and the exit status is 130.

/// Resolves when one of the signals arrives, naming it. If a handler cannot be installed, that signal
/// is simply not waited for (the default action, ending the process, still applies).
pub(crate) async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let hup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C (SIGINT)",
            _ = term => "SIGTERM",
            _ = hup => "SIGHUP",
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close};
        let mut brk = ctrl_break().ok();
        let mut close = ctrl_close().ok();
        let brk = async {
            match brk.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let close = async {
            match close.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = brk => "Ctrl-Break",
            _ = close => "the console was closed",
        }
    }
}
