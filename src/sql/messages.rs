//! What the server said besides results and errors: INFO messages (e.g. "RESTORE LOG successfully
//! processed 12 pages ...") and environment changes, kept for the journal and audit log.
//!
//! tiberius 0.13 has no API for INFO tokens; it only emits each one as a DEBUG tracing event from its
//! token reader (with ENVCHANGE and LOGINACK descriptions alongside, which are the server's words too).
//! This layer catches those events into a buffer that the session drains after each statement.
//! pcfail runs one statement at a time per process, so the buffer needs no per-connection routing.

use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};

/// Where tiberius emits the tokens it does not surface.
const TOKEN_TARGET: &str = "tiberius::tds::stream::token";

static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The layer to install in the subscriber, already filtered to tiberius's token events.
pub(crate) fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    Capture.with_filter(Targets::new().with_target(TOKEN_TARGET, tracing::Level::DEBUG))
}

/// Everything caught since the last call.
pub(crate) fn take() -> Vec<String> {
    std::mem::take(&mut *MESSAGES.lock().unwrap_or_else(|e| e.into_inner()))
}

struct Capture;

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = MessageField(None);
        event.record(&mut visitor);
        if let Some(text) = visitor.0 {
            MESSAGES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(text);
        }
    }
}

struct MessageField(Option<String>);

impl Visit for MessageField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
