//! The ways an operator (or the system) stops a run: Ctrl-C, SIGTERM (a service manager, `kill`),
//! SIGHUP (the terminal closed) on Unix; Ctrl-C, Ctrl-Break and closing the console on Windows. All
//! end a run the same way: the step in flight is abandoned (and examined again on resume), the
//! PowerShell host is stopped, the journal records the interruption, and the exit status is 130.
//!
//! The handlers are installed before the run prints anything ([`Interrupts::install`]): a signal
//! that arrived between a prompt and the first poll of a lazily registered handler would otherwise
//! take its inherited disposition, which is "ignore" for a process started in the background by a
//! non-interactive shell: the run would then wait at its prompt for ever.

/// The installed handlers. A handler that cannot be installed is simply not waited for (the
/// default action, ending the process, still applies).
pub(crate) struct Interrupts {
    #[cfg(unix)]
    streams: [(Option<tokio::signal::unix::Signal>, &'static str); 3],
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(windows)]
    ctrl_break: Option<tokio::signal::windows::CtrlBreak>,
    #[cfg(windows)]
    ctrl_close: Option<tokio::signal::windows::CtrlClose>,
}

impl Interrupts {
    /// Installs every handler now. Must be called inside the Tokio runtime.
    pub(crate) fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                streams: [
                    (signal(SignalKind::interrupt()).ok(), "Ctrl-C (SIGINT)"),
                    (signal(SignalKind::terminate()).ok(), "SIGTERM"),
                    (signal(SignalKind::hangup()).ok(), "SIGHUP"),
                ],
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
            Self {
                ctrl_c: ctrl_c().ok(),
                ctrl_break: ctrl_break().ok(),
                ctrl_close: ctrl_close().ok(),
            }
        }
    }

    /// Resolves when one of the signals arrives, naming it.
    pub(crate) async fn first(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let [(int, int_name), (term, term_name), (hup, hup_name)] = &mut self.streams;
            tokio::select! {
                _ = recv(int) => int_name,
                _ = recv(term) => term_name,
                _ = recv(hup) => hup_name,
            }
        }
        #[cfg(windows)]
        {
            // Tokio's three console-event types share no trait, hence one block each.
            let Self {
                ctrl_c,
                ctrl_break,
                ctrl_close,
            } = self;
            let ctrl_c = async {
                match ctrl_c.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            let ctrl_break = async {
                match ctrl_break.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            let ctrl_close = async {
                match ctrl_close.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ctrl_c => "Ctrl-C",
                _ = ctrl_break => "Ctrl-Break",
                _ = ctrl_close => "the console was closed",
            }
        }
    }
}

/// Waits on one signal stream; a handler that was not installed never resolves.
#[cfg(unix)]
async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) {
    match stream {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
