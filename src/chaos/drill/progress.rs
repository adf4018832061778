//! The live line on a terminal while a drill runs: phase, elapsed time, active faults, SSE
//! subscribers connected and events lost so far. Nothing is drawn when stderr is not a terminal
//! (CI logs, tests): the report says it all.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the live line shows.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub phase: &'static str,
    /// Short names of the active faults (`#1 process`).
    pub active: Vec<String>,
    /// (connected, subscribers) of the SSE workload.
    pub subscribers: Option<(u64, u64)>,
    pub lost: Option<u64>,
    pub http: Option<(u64, u64)>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// A live line when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool, started: Instant) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, started }
    }

    pub fn show(&self, status: &Status) {
        if let Some(bar) = &self.bar {
            bar.set_message(line(status, self.started.elapsed()));
        }
    }

    /// Prints a line above the live line (or to stderr when there is none).
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `fault phase · 0:42 · faults: #1 process · subscribers 1998/2000 · lost 0`.
pub fn line(s: &Status, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let mut parts = vec![
        s.phase.to_string(),
        format!("{}:{:02}", secs / 60, secs % 60),
    ];
    if !s.active.is_empty() {
        parts.push(format!("faults: {}", s.active.join(", ")));
    }
    if let Some((connected, total)) = s.subscribers {
        parts.push(format!("subscribers {connected}/{total}"));
    }
    if let Some(lost) = s.lost {
        parts.push(format!("lost {lost}"));
    }
    if let Some((ok, total)) = s.http {
        parts.push(format!("http {ok}/{total} ok"));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_what_matters() {
        let s = Status {
            phase: "fault phase",
            active: vec!["#1 process".into()],
            subscribers: Some((1998, 2000)),
            lost: Some(0),
            http: None,
        };
        assert_eq!(
            line(&s, Duration::from_secs(62)),
            "fault phase · 1:02 · faults: #1 process · subscribers 1998/2000 · lost 0"
        );
    }
}
