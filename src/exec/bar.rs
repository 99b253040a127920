//! Progress for the long steps (copying and applying log backups): a drawn bar on a terminal, plain
//! lines otherwise (a log file, CI, a pipe), nothing with `-q`.
//!
//! indicatif draws the bar and hides it when stderr is not a terminal; the plain lines keep the same
//! information for everything that reads stderr as text.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) struct Bar {
    verb: &'static str,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Bar {
    pub(crate) fn new(verb: &'static str, quiet: bool) -> Bar {
        Bar {
            verb,
            quiet,
            bar: None,
        }
    }

    /// `done` of `total` items are finished; `item` is the one just handled (or about to be).
    pub(crate) fn update(&mut self, done: usize, total: usize, item: &str) {
        if self.quiet {
            return;
        }
        if !std::io::stderr().is_terminal() {
            say!("      {} {done}/{total} {item}", self.verb);
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
