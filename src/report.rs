//! `pcfail report RUN`: the run as the post-incident review reads it, from its journal alone. A
//! self-contained HTML page (inline style and an SVG timeline, no script, nothing fetched) or
//! Markdown: the situation before and after, the data-loss ledger as confirmed and who confirmed
//! what, each step's statements and cmdlets with the servers' messages and durations, a timeline of
//! where the time went (SQL Server, the shell, the operator, pcfail itself), RPO and RTO, and whether
//! the journal's chain is intact.
//!
//! Everything shown comes from the journal, which holds no secret; every text is escaped. Checking the
//! anchors on the backup instance is `pcfail journal verify`'s job, and the report says so.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::Value;

use crate::journal::{Event, Record};

/// Where a stretch of a step's time went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spent {
    Sql,
    Shell,
    Operator,
    Pcfail,
}

impl Spent {
    fn label(self) -> &'static str {
        match self {
            Spent::Sql => "SQL Server",
            Spent::Shell => "Management Shell",
            Spent::Operator => "operator",
            Spent::Pcfail => "pcfail",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Spent::Sql => "#2f6fb0",
            Spent::Shell => "#8a4fb0",
            Spent::Operator => "#d08a1c",
            Spent::Pcfail => "#9aa3ab",
        }
    }
}

/// One command as the journal recorded it.
struct CommandRow {
    end: Timestamp,
    target: String,
    text: String,
    micros: u64,
    ok: bool,
    error: Option<String>,
    messages: Vec<String>,
}

/// One attempt of one step.
struct StepRow {
    number: usize,
    id: String,
    start: Timestamp,
    end: Option<Timestamp>,
    outcome: String,
    commands: Vec<CommandRow>,
    confirmations: Vec<(Timestamp, String)>,
}

/// The run, read from its journal.
pub(crate) struct Report {
    run: String,
    operation: String,
    pool: String,
    runbook: String,
    runbook_sha256: String,
    version: String,
    attempts: Vec<(Timestamp, String, String, &'static str)>,
    start: Timestamp,
    end: Timestamp,
    outcome: String,
    reason: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
    ledger: Option<Value>,
    confirmations: Vec<(Timestamp, String, String, String)>,
    steps: Vec<StepRow>,
    records: usize,
    chain: Result<(), String>,
}

fn time(r: &Record) -> Timestamp {
    r.time.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()).max(0) as f64 / 1000.0
}

impl Report {
    /// Builds the report from a journal's records; `chain` says whether its hash chain is intact.
    pub(crate) fn from_records(records: &[Record], chain: Result<(), String>) -> Option<Report> {
        let first = records.first()?;
        let Event::RunStarted {
            operation,
            pool,
            runbook,
            runbook_sha256,
            operator,
            host,
            version,
        } = &first.event
        else {
            return None;
        };
        let mut report = Report {
            run: first.run.clone(),
            operation: operation.clone(),
            pool: pool.clone(),
            runbook: runbook.clone(),
            runbook_sha256: runbook_sha256.clone(),
            version: version.clone(),
            attempts: vec![(time(first), operator.clone(), host.clone(), "started")],
            start: time(first),
            end: time(records.last().unwrap_or(first)),
            outcome: "unfinished".to_owned(),
            reason: None,
            before: None,
            after: None,
            ledger: None,
            confirmations: Vec::new(),
            steps: Vec::new(),
            records: records.len(),
            chain,
        };
        for r in records {
            match &r.event {
                Event::RunResumed { operator, host } => {
                    report
                        .attempts
                        .push((time(r), operator.clone(), host.clone(), "resumed"));
                }
                Event::Captured { key, value } => match key.as_str() {
                    // The first situation is the one the run started from; a resumed attempt adds its own.
                    "situation" if report.before.is_none() => report.before = Some(value.clone()),
                    "situation_after" => report.after = Some(value.clone()),
                    "data_loss_ledger" => report.ledger = Some(value.clone()),
                    _ => {}
                },
                Event::Confirmed { step, how, what } => {
                    let what = what.clone().unwrap_or_else(|| "confirmation".to_owned());
                    report
                        .confirmations
                        .push((time(r), step.clone(), what, how.clone()));
                    if let Some(s) = report.steps.last_mut().filter(|s| &s.id == step) {
                        s.confirmations.push((time(r), how.clone()));
                    }
                }
                Event::StepStarted { step, number } => report.steps.push(StepRow {
                    number: *number,
                    id: step.clone(),
                    start: time(r),
                    end: None,
                    outcome: "started, not finished".to_owned(),
                    commands: Vec::new(),
                    confirmations: Vec::new(),
                }),
                Event::StepSkipped { .. } => {
                    if let Some(s) = report.steps.last_mut() {
                        s.outcome = "already done".to_owned();
                    }
                }
                Event::StepFinished { step, ok, message } => {
                    if let Some(s) = report.steps.last_mut().filter(|s| &s.id == step) {
                        s.end = Some(time(r));
                        if s.outcome != "already done" || !ok {
                            s.outcome = match (ok, message) {
                                (true, Some(m)) => format!("done ({m})"),
                                (true, None) => "done".to_owned(),
                                (false, Some(m)) => format!("failed: {m}"),
                                (false, None) => "failed".to_owned(),
                            };
                        }
                    }
                }
                Event::Command {
                    step,
                    target,
                    text,
                    duration_us,
                    ok,
                    error,
                    messages,
                } => {
                    if let Some(s) = report.steps.last_mut().filter(|s| &s.id == step) {
                        s.commands.push(CommandRow {
                            end: time(r),
                            target: target.clone(),
                            text: text.clone(),
                            micros: *duration_us,
                            ok: *ok,
                            error: error.as_ref().map(|e| match e {
                                Value::String(s) => s.clone(),
                                Value::Object(m) => m
                                    .get("message")
                                    .and_then(Value::as_str)
                                    .map(|msg| match m.get("number") {
                                        Some(n) => format!("Msg {n}: {msg}"),
                                        None => msg.to_owned(),
                                    })
                                    .unwrap_or_else(|| e.to_string()),
                                other => other.to_string(),
                            }),
                            messages: messages.clone(),
                        });
                    }
                }
                Event::RunFinished { outcome, reason } => {
                    report.outcome = outcome.clone();
                    report.reason = reason.clone();
                }
                Event::RunStarted { .. } => {}
            }
        }
        Some(report)
    }

    fn title(&self) -> String {
        format!(
            "{} of {} — {} (run {})",
            self.operation.replace('_', " "),
            self.pool,
            self.outcome,
            self.run
        )
    }

    /// Seconds spent by each party within one step: commands to SQL Server or the shell, the
    /// operator's confirmations (from the step's start to the answer), and the rest pcfail's own.
    fn split(step: &StepRow) -> Vec<(Spent, f64, f64)> {
        let end = step.end.unwrap_or(step.start);
        let mut parts = Vec::new();
        for (at, _) in &step.confirmations {
            parts.push((
                Spent::Operator,
                seconds(step.start, step.start),
                seconds(step.start, *at),
            ));
        }
        for c in &step.commands {
            let kind = if c.target == "powershell" {
                Spent::Shell
            } else if c.target == "filesystem" {
                Spent::Pcfail
            } else {
                Spent::Sql
            };
            let stop = seconds(step.start, c.end);
            let begin = (stop - c.micros as f64 / 1e6).max(0.0);
            parts.push((kind, begin, stop));
        }
        parts.retain(|(_, a, b)| b > a);
        let _ = end;
        parts
    }

    /// The totals per party over the whole run, in seconds.
    fn totals(&self) -> Vec<(Spent, f64)> {
        let mut totals = vec![
            (Spent::Sql, 0.0),
            (Spent::Shell, 0.0),
            (Spent::Operator, 0.0),
            (Spent::Pcfail, 0.0),
        ];
        let mut accounted = 0.0;
        for step in &self.steps {
            for (kind, a, b) in Self::split(step) {
                if let Some(t) = totals.iter_mut().find(|(k, _)| *k == kind) {
                    t.1 += b - a;
                }
                accounted += b - a;
            }
        }
        let all = seconds(self.start, self.end);
        if let Some(t) = totals.iter_mut().find(|(k, _)| *k == Spent::Pcfail) {
            t.1 += (all - accounted).max(0.0);
        }
        totals
    }

    /// The RPO the operator confirmed (from the ledger) and the time to service: from the run's
    /// start to the end of the step that made servers active again.
    fn rpo_rto(&self) -> (String, String) {
        let rpo = match &self.ledger {
            Some(l) if l["no_data_loss_expected"] == true => {
                "none expected (planned: the tail-log backup was applied)".to_owned()
            }
            Some(l) => match l["rpo_minutes_upper_bound"].as_i64() {
                Some(m) => format!("up to {m} minute(s), as of the backup instance's clock"),
                None => "not known from the ledger".to_owned(),
            },
            None => "no ledger in the journal".to_owned(),
        };
        let serving = self
            .steps
            .iter()
            .rev()
            .find(|s| s.id.contains("active-servers") && s.end.is_some())
            .and_then(|s| s.end);
        let rto = match serving {
            Some(end) => format!(
                "{:.1} s from the run's start to the active servers set (step `{}`)",
                seconds(self.start, end),
                self.steps
                    .iter()
                    .rev()
                    .find(|s| s.end == Some(end))
                    .map_or("", |s| s.id.as_str())
            ),
            None => format!(
                "{:.1} s from the run's start to its end (no active-servers step finished)",
                seconds(self.start, self.end)
            ),
        };
        (rpo, rto)
    }

    pub(crate) fn html(&self) -> String {
        let mut h = String::new();
        let (rpo, rto) = self.rpo_rto();
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pcfail report: {}</title>\n<style>{STYLE}</style></head><body>\n",
            esc(&self.title())
        );
        let _ = writeln!(h, "<h1>{}</h1>", esc(&self.title()));
        h.push_str("<table class=\"facts\">\n");
        let mut fact = |k: &str, v: String| {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), v);
        };
        fact("Run", esc(&self.run));
        fact(
            "Outcome",
            esc(&match &self.reason {
                Some(r) => format!("{} ({r})", self.outcome),
                None => self.outcome.clone(),
            }),
        );
        fact(
            "Attempts",
            self.attempts
                .iter()
                .map(|(t, who, host, how)| esc(&format!("{how} {t} by {who} on {host}")))
                .collect::<Vec<_>>()
                .join("<br>"),
        );
        fact(
            "Duration",
            esc(&format!(
                "{:.1} s ({} to {})",
                seconds(self.start, self.end),
                self.start,
                self.end
            )),
        );
        fact("RPO", esc(&rpo));
        fact("RTO", esc(&rto));
        fact(
            "Runbook",
            esc(&format!(
                "{} (SHA-256 {})",
                self.runbook, self.runbook_sha256
            )),
        );
        fact("pcfail", esc(&self.version));
        fact(
            "Journal",
            esc(&match &self.chain {
                Ok(()) => format!(
                    "{} records, hash chain intact (the anchors on the backup instance: `pcfail journal verify {}`)",
                    self.records, self.run
                ),
                Err(e) => format!("DAMAGED: {e}"),
            }),
        );
        h.push_str("</table>\n");

        h.push_str("<h2>Situation before</h2>\n");
        h.push_str(&situation_html(self.before.as_ref()));
        h.push_str("<h2>Data-loss ledger, as confirmed</h2>\n");
        match self.ledger.as_ref().and_then(|l| l["text"].as_array()) {
            Some(lines) => {
                let text: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                let _ = writeln!(h, "<pre>{}</pre>", esc(&text.join("\n")));
            }
            None => h.push_str("<p>No ledger in the journal.</p>\n"),
        }
        h.push_str("<h3>Confirmations</h3>\n<table><tr><th>When</th><th>Before step</th><th>What</th><th>How</th></tr>\n");
        for (t, step, what, how) in &self.confirmations {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.to_string()),
                esc(step),
                esc(what),
                esc(how)
            );
        }
        h.push_str("</table>\n");

        h.push_str("<h2>Timeline</h2>\n");
        h.push_str(&self.timeline_svg());
        h.push_str("<p class=\"legend\">");
        for (kind, secs) in self.totals() {
            let _ = write!(
                h,
                "<span><i style=\"background:{}\"></i>{}: {:.1} s</span> ",
                kind.colour(),
                esc(kind.label()),
                secs
            );
        }
        h.push_str("</p>\n");

        h.push_str("<h2>Steps</h2>\n");
        for step in &self.steps {
            let _ = writeln!(
                h,
                "<h3 id=\"step-{}\">Step {} <code>{}</code>: {}</h3>",
                esc(&step.id),
                step.number,
                esc(&step.id),
                esc(&step.outcome)
            );
            if step.commands.is_empty() {
                h.push_str("<p>No statement or cmdlet.</p>\n");
                continue;
            }
            h.push_str("<table class=\"commands\"><tr><th>Finished</th><th>Where</th><th>ms</th><th>Statement or cmdlet</th><th>Server's answer</th></tr>\n");
            for c in &step.commands {
                let mut answer = String::new();
                if let Some(e) = &c.error {
                    let _ = write!(answer, "<span class=\"error\">{}</span>", esc(e));
                }
                for m in &c.messages {
                    let _ = write!(answer, "<div>{}</div>", esc(m));
                }
                let _ = writeln!(
                    h,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    if c.ok { "ok" } else { "failed" },
                    esc(&c.end.to_string()),
                    esc(&c.target),
                    shown_ms(c.micros),
                    esc(&c.text),
                    answer
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Situation after</h2>\n");
        h.push_str(&situation_html(self.after.as_ref()));
        h.push_str("</body></html>\n");
        h
    }

    /// One bar per step attempt on a time axis, coloured by who the time went to.
    fn timeline_svg(&self) -> String {
        const WIDTH: f64 = 900.0;
        const LABEL: f64 = 220.0;
        const ROW: f64 = 22.0;
        let total = seconds(self.start, self.end).max(0.001);
        let scale = (WIDTH - LABEL - 10.0) / total;
        let height = ROW * (self.steps.len() as f64 + 1.0) + 10.0;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"timeline of the run's steps\">\n"
        );
        for (i, step) in self.steps.iter().enumerate() {
            let y = ROW * i as f64 + 4.0;
            let x0 = LABEL + seconds(self.start, step.start) * scale;
            let w = (seconds(step.start, step.end.unwrap_or(step.start)) * scale).max(1.0);
            let _ = writeln!(
                s,
                "<text x=\"4\" y=\"{:.1}\" font-size=\"12\">{} {}</text>",
                y + 14.0,
                step.number,
                esc(&step.id)
            );
            let _ = writeln!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{}\"><title>{}: {:.2} s</title></rect>",
                Spent::Pcfail.colour(),
                esc(&step.id),
                seconds(step.start, step.end.unwrap_or(step.start))
            );
            for (kind, a, b) in Self::split(step) {
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{}\"><title>{}: {:.3} s</title></rect>",
                    x0 + a * scale,
                    ((b - a) * scale).max(0.5),
                    kind.colour(),
                    esc(kind.label()),
                    b - a
                );
            }
        }
        let _ = writeln!(
            s,
            "<text x=\"{LABEL}\" y=\"{:.1}\" font-size=\"11\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{total:.1} s</text>",
            height - 4.0,
            WIDTH - 10.0,
            height - 4.0
        );
        s.push_str("</svg>\n");
        s
    }

    pub(crate) fn markdown(&self) -> String {
        let (rpo, rto) = self.rpo_rto();
        let mut m = format!("# {}\n\n", self.title());
        let _ = writeln!(m, "| | |\n|---|---|");
        let _ = writeln!(m, "| Run | {} |", md(&self.run));
        let _ = writeln!(m, "| Outcome | {} |", md(&self.outcome));
        for (t, who, host, how) in &self.attempts {
            let _ = writeln!(m, "| Attempt | {how} {t} by {} on {} |", md(who), md(host));
        }
        let _ = writeln!(m, "| Duration | {:.1} s |", seconds(self.start, self.end));
        let _ = writeln!(m, "| RPO | {} |", md(&rpo));
        let _ = writeln!(m, "| RTO | {} |", md(&rto));
        let _ = writeln!(
            m,
            "| Journal | {} |\n",
            md(&match &self.chain {
                Ok(()) => format!("{} records, hash chain intact", self.records),
                Err(e) => format!("DAMAGED: {e}"),
            })
        );
        let situation = |v: Option<&Value>| match v {
            Some(v) => format!(
                "{}: {}\n",
                v["assessment"]["kind"].as_str().unwrap_or("?"),
                v["assessment"]["summary"].as_str().unwrap_or("")
            ),
            None => "not recorded\n".to_owned(),
        };
        let _ = write!(
            m,
            "## Situation before\n\n{}\n",
            situation(self.before.as_ref())
        );
        m.push_str("## Data-loss ledger, as confirmed\n\n```\n");
        if let Some(lines) = self.ledger.as_ref().and_then(|l| l["text"].as_array()) {
            for line in lines.iter().filter_map(Value::as_str) {
                let _ = writeln!(m, "{line}");
            }
        }
        m.push_str(
            "```\n\n## Confirmations\n\n| When | Before step | What | How |\n|---|---|---|---|\n",
        );
        for (t, step, what, how) in &self.confirmations {
            let _ = writeln!(m, "| {t} | {} | {} | {} |", md(step), md(what), md(how));
        }
        m.push_str("\n## Where the time went\n\n");
        for (kind, secs) in self.totals() {
            let _ = writeln!(m, "- {}: {secs:.1} s", kind.label());
        }
        m.push_str("\n## Steps\n");
        for step in &self.steps {
            let _ = write!(
                m,
                "\n### Step {} `{}`: {}\n\n",
                step.number,
                step.id,
                md(&step.outcome)
            );
            for c in &step.commands {
                let _ = writeln!(
                    m,
                    "- `{}` on {} ({} ms, {}){}",
                    c.text.replace('`', "'"),
                    md(&c.target),
                    shown_ms(c.micros),
                    if c.ok { "ok" } else { "failed" },
                    c.error
                        .as_ref()
                        .map(|e| format!(": {}", md(e)))
                        .unwrap_or_default()
                );
            }
        }
        let _ = write!(
            m,
            "\n## Situation after\n\n{}",
            situation(self.after.as_ref())
        );
        m
    }
}

/// A situation as captured in the journal: its name, summary, findings and the instances.
fn situation_html(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "<p>Not recorded in the journal.</p>\n".to_owned();
    };
    let a = &v["assessment"];
    let mut h = format!(
        "<p><b>{}</b>: {}</p>\n",
        esc(a["kind"].as_str().unwrap_or("?")),
        esc(a["summary"].as_str().unwrap_or(""))
    );
    if let Some(findings) = a["findings"].as_array().filter(|f| !f.is_empty()) {
        h.push_str("<ul>");
        for f in findings.iter().filter_map(Value::as_str) {
            let _ = write!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<table><tr><th>Role</th><th>Host</th><th>Answers</th><th>Databases</th></tr>\n");
    for i in v["observation"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let dbs: Vec<String> = i["databases"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                format!(
                    "{} {}{}",
                    d["name"].as_str().unwrap_or("?"),
                    d["state"].as_str().unwrap_or("(none)"),
                    d["mirroring"]["role"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(i["role"].as_str().unwrap_or("?")),
            esc(i["host"].as_str().unwrap_or("")),
            if i["reachable"] == true { "yes" } else { "no" },
            esc(&dbs.join(", "))
        );
    }
    h.push_str("</table>\n");
    h
}

/// HTML-escapes text (element content and attribute values alike).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown table cells: no pipe, no newline.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#1b1f23}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code,pre{font-family:ui-monospace,monospace;font-size:.9em}pre{background:#f6f8fa;padding:.75em;white-space:pre-wrap}\
tr.failed td{background:#ffebe9}.error{color:#b3261e;font-weight:bold}.legend span{margin-right:1.5em}\
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}";

/// A command's duration in milliseconds, to the microsecond the journal keeps.
fn shown_ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_journal_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }
}
