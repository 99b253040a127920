//! Repetitions summarized: min, median and max, and ratios of medians between arms of one run.

use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }

    pub(crate) fn min(&self) -> Duration {
        self.sorted().first().copied().unwrap_or_default()
    }

    pub(crate) fn max(&self) -> Duration {
        self.sorted().last().copied().unwrap_or_default()
    }

    /// The middle sample (the lower middle of an even count).
    pub(crate) fn median(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default()
    }

    /// `min / median / max` in `unit`.
    pub(crate) fn show(&self, unit: Unit) -> String {
        format!(
            "{} / {} / {}",
            unit.show(self.min()),
            unit.show(self.median()),
            unit.show(self.max())
        )
    }

    /// This arm's median over `other`'s.
    pub(crate) fn ratio(&self, other: &Samples) -> f64 {
        self.median().as_secs_f64() / other.median().as_secs_f64().max(1e-12)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Unit {
    Ms,
    S,
}

impl Unit {
    pub(crate) fn show(self, d: Duration) -> String {
        match self {
            Unit::Ms => format!("{:.3} ms", d.as_secs_f64() * 1e3),
            Unit::S => format!("{:.2} s", d.as_secs_f64()),
        }
    }
}

/// A Markdown table, printed as it is complete.
pub(crate) fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("\n### {title}\n");
    println!("| {} |", header.join(" | "));
    println!(
        "|{}|",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}
