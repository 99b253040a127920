//! Progress for the long steps (copying and applying log backups): a drawn bar on a terminal, plain
//! lines otherwise (a log file, CI, a pipe), nothing with `-q`.
//!
//! indicatif draws the bar and hides it when stderr is not a terminal; the plain lines keep the same
//! information for everything that reads stderr as text, at most one every [`LINE_EVERY`] plus the
//! first and the last: a 10,000-file apply is not 10,000 lines (the journal has every file).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a plain progress line may be written.
const LINE_EVERY: Duration = Duration::from_secs(2);

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) struct Bar {
    verb: &'static str,
    quiet: bool,
    bar: Option<ProgressBar>,
    /// When the last plain line was written.
    last_line: Option<Instant>,
}

impl Bar {
    pub(crate) fn new(verb: &'static str, quiet: bool) -> Bar {
        Bar {
            verb,
            quiet,
            bar: None,
            last_line: None,
        }
    }

    /// `done` of `total` items are finished; `item` is the one just handled (or about to be).
    pub(crate) fn update(&mut self, done: usize, total: usize, item: &str) {
        if self.quiet {
            return;
        }
        if !std::io::stderr().is_terminal() {
            let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY);
            if due || done == total {
                say!("      {} {done}/{total} {item}", self.verb);
                self.last_line = Some(Instant::now());
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(total as u64);
            let style =
                ProgressStyle::with_template("      {prefix} [{bar:30}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(self.verb);
            bar
        });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(item.to_owned());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
