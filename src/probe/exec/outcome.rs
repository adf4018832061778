//! From a finished command to a measurement: the exit code as the command's own verdict, the
//! recorded value, the expectations, and messages that say what happened in the command's words.
//!
//! A value that cannot be read (no such performance datum, stdout not a number) is a failure —
//! unless the command itself reported critical or unknown: a plugin that could not reach its
//! service prints no performance data, and its own message already says why.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use super::ExecValue;
use super::nagios::{self, PluginOutput};
use super::process::{Captured, Finished, Invocation, OUTPUT_LIMIT, RunFailure};
use super::{ExecExpect, ProbeError};
use crate::probe::{Measurement, Reported, Sample};
use crate::result::{Status, Value};

/// Characters of the command's output or stderr quoted in a message.
const QUOTE_LIMIT: usize = 300;

/// The measurement of a command that ran to its end, or the error its exit makes.
pub fn measurement(
    name: &str,
    value: &ExecValue,
    expect: &ExecExpect,
    finished: &Finished,
) -> Result<Measurement, ProbeError> {
    let (code, status) = plugin_status(name, finished)?;
    let stdout = finished.stdout.text();
    let output = nagios::parse(&stdout);
    let mut m = Measurement {
        reported: Some(Reported {
            status,
            message: redact(reported_message(code, &output, &finished.stderr)),
        }),
        ..Default::default()
    };
    match recorded(value, code, &stdout, &output, &finished.stdout) {
        Ok((samples, unit)) => {
            m.samples = samples;
            m.unit = unit;
        }
        // The command's own crit/unknown explains a missing value better than we could.
        Err(why) if status < Status::Crit => m.failures.push(redact(why)),
        Err(_) => {}
    }
    if let Some(pattern) = &expect.stdout_matches {
        m.failures
            .extend(stdout_mismatch(pattern, &stdout).map(redact));
    }
    Ok(m)
}

/// The exit code and the status it reports under the plugin protocol; other codes and signals
/// are errors.
fn plugin_status(name: &str, finished: &Finished) -> Result<(i32, Status), ProbeError> {
    let Some(code) = finished.status.code() else {
        let how = match finished.status.signal() {
            Some(sig) => format!("was killed by {}", signal_name(sig)),
            None => "ended without an exit code".to_string(),
        };
        return Err(ended_badly(name, &how, finished));
    };
    let status = match code {
        0 => Status::Ok,
        1 => Status::Warn,
        2 => Status::Crit,
        3 => Status::Error,
        _ => {
            let how = format!("exited with code {code}{}", exit_code_hint(code));
            return Err(ended_badly(name, &how, finished));
        }
    };
    Ok((code, status))
}

/// An error naming how the command ended, with its first line of output and its stderr.
fn ended_badly(name: &str, how: &str, finished: &Finished) -> ProbeError {
    let output = nagios::parse(&finished.stdout.text());
    let mut msg =
        format!("{name} {how} (plugins exit with 0 ok, 1 warning, 2 critical, 3 unknown)");
    push_output(&mut msg, &output.summary, &finished.stderr);
    ProbeError::new(redact(msg))
}

/// What common exit codes mean when they are not a plugin's verdict.
fn exit_code_hint(code: i32) -> String {
    match code {
        126 => " (found but cannot be executed)".into(),
        127 => " (command not found)".into(),
        129..=192 => format!(
            " (a shell's report that its command was killed by {})",
            signal_name(code - 128)
        ),
        _ => String::new(),
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig} ({name})")
}

/// The plugin's first line; for unknown (3), or when it printed nothing, its stderr too.
fn reported_message(code: i32, output: &PluginOutput, stderr: &Captured) -> String {
    let mut msg = if output.summary.is_empty() {
        format!("no output (exit code {code})")
    } else {
        quote_limited(&output.summary)
    };
    if code == 3 || output.summary.is_empty() {
        push_stderr(&mut msg, stderr);
    }
    msg
}

/// Appends "; output: …" and "; stderr: …" for whichever is not empty.
fn push_output(msg: &mut String, summary: &str, stderr: &Captured) {
    if !summary.is_empty() {
        msg.push_str("; output: ");
        msg.push_str(&quote_limited(summary));
    }
    push_stderr(msg, stderr);
}

fn push_stderr(msg: &mut String, stderr: &Captured) {
    let text = one_line(&stderr.text());
    if !text.is_empty() {
        msg.push_str("; stderr: ");
        msg.push_str(&quote_limited(&text));
    }
}

/// Lines joined with ⏎, blank ones dropped: several lines of stderr fit one message.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ")
}

fn quote_limited(text: &str) -> String {
    let mut out: String = text.chars().take(QUOTE_LIMIT).collect();
    if text.chars().nth(QUOTE_LIMIT).is_some() {
        out.push('…');
    }
    out
}

/// The samples and unit `value` asks for, or why they cannot be read.
fn recorded(
    value: &ExecValue,
    code: i32,
    stdout: &str,
    output: &PluginOutput,
    captured: &Captured,
) -> Result<(Vec<Sample>, String), String> {
    let cut = if captured.truncated() {
        format!(" (stdout was cut at {} KiB)", OUTPUT_LIMIT / 1024)
    } else {
        String::new()
    };
    match value {
        ExecValue::ExitCode => Ok((
            vec![Sample::single(Value::Num(f64::from(code)))],
            String::new(),
        )),
        ExecValue::Stdout => {
            let n = stdout_number(stdout).map_err(|e| format!("{e}{cut}"))?;
            Ok((vec![Sample::single(Value::Num(n))], String::new()))
        }
        ExecValue::Perf(label) => {
            let d = output
                .datum(label)
                .ok_or_else(|| format!("{}{cut}", missing_label(label, output)))?;
            let n = d.value.ok_or_else(|| {
                format!("value: perf:{label} is U (the plugin could not determine it)")
            })?;
            Ok((vec![Sample::single(Value::Num(n))], d.uom.clone()))
        }
        ExecValue::PerfAll => all_perfdata(output).map_err(|e| format!("{e}{cut}")),
    }
}

/// The whole stdout, trimmed, as a number.
fn stdout_number(stdout: &str) -> Result<f64, String> {
    let text = stdout.trim();
    if text.is_empty() {
        return Err("value: stdout is empty, expected a number".into());
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("value: stdout is not a number: {:?}", quote_limited(text)))
}

fn missing_label(label: &str, output: &PluginOutput) -> String {
    let labels = output.labels();
    let mut msg = if labels.is_empty() {
        format!("value: perf:{label}: the output has no performance data")
    } else {
        format!(
            "value: perf:{label}: no such performance data; labels: {}",
            labels.join(", ")
        )
    };
    if !output.malformed.is_empty() {
        msg.push_str(&format!(
            "; not understood: {}",
            quote_limited(&output.malformed.join(" "))
        ));
    }
    msg
}

/// One sample per label (first occurrence); `U` values are left out (the plugin says it could
/// not measure them, which is no reason to fail). The unit is shared only when all agree.
fn all_perfdata(output: &PluginOutput) -> Result<(Vec<Sample>, String), String> {
    if output.perfdata.is_empty() {
        let mut msg = "value: perf: the output has no performance data".to_string();
        if !output.malformed.is_empty() {
            msg.push_str(&format!(
                "; not understood: {}",
                quote_limited(&output.malformed.join(" "))
            ));
        }
        return Err(msg);
    }
    let mut samples: Vec<Sample> = Vec::new();
    let mut units: Vec<&str> = Vec::new();
    for d in &output.perfdata {
        if samples.iter().any(|s| s.series == d.label) {
            continue;
        }
        if let Some(n) = d.value {
            samples.push(Sample {
                series: d.label.clone(),
                value: Value::Num(n),
            });
            units.push(&d.uom);
        }
    }
    let unit = match units.split_first() {
        Some((first, rest)) if rest.iter().all(|u| u == first) => first.to_string(),
        _ => String::new(),
    };
    Ok((samples, unit))
}

/// `pattern` in multi-line mode: `^` and `$` match at each line (as grep users expect), so
/// `streaming$` matches output that ends in "streaming\n".
pub fn stdout_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .multi_line(true)
        .crlf(true)
        .build()
}

/// The failure of `expect.stdout_matches`, if it fails.
fn stdout_mismatch(pattern: &str, stdout: &str) -> Option<String> {
    let re = match stdout_regex(pattern) {
        Ok(re) => re,
        Err(e) => return Some(crate::condition::regex_error(pattern, &e)),
    };
    if re.is_match(stdout) {
        return None;
    }
    let start = quote_limited(stdout.trim());
    Some(if start.is_empty() {
        format!("expect.stdout_matches: stdout does not match {pattern:?} (stdout is empty)")
    } else {
        format!(
            "expect.stdout_matches: stdout does not match {pattern:?} (stdout starts {start:?})"
        )
    })
}

/// The error of a command that did not run to its end.
pub fn run_failure(
    name: &str,
    inv: &Invocation,
    timeout: Duration,
    failure: RunFailure,
) -> ProbeError {
    let msg = match failure {
        RunFailure::Spawn(e) => {
            let hint = if e.raw_os_error() == Some(libc::ENOEXEC) {
                " (a script needs a #! line naming its interpreter)"
            } else {
                ""
            };
            format!("cannot run {}: {e}{hint}", inv.program.display())
        }
        RunFailure::TimedOut { stdout, stderr } => {
            let mut msg = format!(
                "timed out after {}; {name} and the processes it started were killed",
                crate::config::duration::format(timeout)
            );
            push_output(&mut msg, &nagios::parse(&stdout.text()).summary, &stderr);
            msg
        }
        RunFailure::Wait(e) => format!("waiting for {name} failed: {e}"),
    };
    ProbeError::new(redact(msg))
}

/// Secrets substituted into `env:` or arguments never leave in what the command printed.
fn redact(text: String) -> String {
    crate::secrets::redact_owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitStatus;

    fn finished(code: i32, stdout: &str, stderr: &str) -> Finished {
        let capture = |s: &str| Captured {
            bytes: s.as_bytes().to_vec(),
            total: s.len(),
        };
        Finished {
            status: ExitStatus::from_raw(code << 8),
            stdout: capture(stdout),
            stderr: capture(stderr),
        }
    }

    fn measure(value: ExecValue, f: &Finished) -> Result<Measurement, ProbeError> {
        measurement("check_x", &value, &ExecExpect::default(), f)
    }

    fn reported(m: &Measurement) -> (Status, &str) {
        let r = m.reported.as_ref().unwrap();
        (r.status, r.message.as_str())
    }

    #[test]
    fn exit_codes_are_the_plugin_verdict() {
        for (code, status) in [
            (0, Status::Ok),
            (1, Status::Warn),
            (2, Status::Crit),
            (3, Status::Error),
        ] {
            let m = measure(ExecValue::ExitCode, &finished(code, "SAID SO | t=1s\n", "")).unwrap();
            assert_eq!(reported(&m), (status, "SAID SO"));
            assert_eq!(m.samples, vec![Sample::single(Value::Num(f64::from(code)))]);
            assert!(m.failures.is_empty());
        }
    }

    #[test]
    fn unknown_shows_stderr_and_silence_is_described() {
        let m = measure(
            ExecValue::ExitCode,
            &finished(3, "UNKNOWN - bad config\n", "line 1\n\nline 2\n"),
        )
        .unwrap();
        assert_eq!(
            reported(&m).1,
            "UNKNOWN - bad config; stderr: line 1 ⏎ line 2"
        );
        let m = measure(ExecValue::ExitCode, &finished(2, "", "disk full\n")).unwrap();
        assert_eq!(
            reported(&m),
            (Status::Crit, "no output (exit code 2); stderr: disk full")
        );
        let m = measure(
            ExecValue::ExitCode,
            &finished(0, "OK\n", "a warning nobody needs\n"),
        )
        .unwrap();
        assert_eq!(reported(&m).1, "OK");
    }

    #[test]
    fn other_exit_codes_and_signals_are_errors() {
        let err = measure(ExecValue::ExitCode, &finished(7, "half done\n", "boom\n")).unwrap_err();
        assert_eq!(
            err.0,
            "check_x exited with code 7 (plugins exit with 0 ok, 1 warning, 2 critical, 3 unknown); \
             output: half done; stderr: boom"
        );
        let err = measure(
            ExecValue::ExitCode,
            &finished(127, "", "sh: 1: nope: not found\n"),
        )
        .unwrap_err();
        assert!(
            err.0.contains("exited with code 127 (command not found)"),
            "{err}"
        );
        let err = measure(ExecValue::ExitCode, &finished(137, "", "")).unwrap_err();
        assert!(err.0.contains("killed by signal 9 (SIGKILL)"), "{err}");
        let killed = Finished {
            status: ExitStatus::from_raw(libc::SIGSEGV),
            ..finished(0, "", "")
        };
        let err = measure(ExecValue::ExitCode, &killed).unwrap_err();
        assert!(
            err.0
                .starts_with("check_x was killed by signal 11 (SIGSEGV)"),
            "{err}"
        );
    }

    #[test]
    fn perf_label_value_and_unit() {
        let f = finished(0, "TCP OK|time=0.000098s;;;0.000000;10.000000\n", "");
        let m = measure(ExecValue::Perf("time".into()), &f).unwrap();
        assert_eq!(m.samples, vec![Sample::single(Value::Num(0.000098))]);
        assert_eq!(m.unit, "s");
    }

    #[test]
    fn a_missing_label_names_the_present_ones() {
        let f = finished(0, "OK | time=1s size=10B junk\n", "");
        let m = measure(ExecValue::Perf("tme".into()), &f).unwrap();
        assert!(m.samples.is_empty());
        assert_eq!(
            m.failures,
            vec![
                "value: perf:tme: no such performance data; labels: time, size; not understood: junk"
            ]
        );
        let m = measure(ExecValue::Perf("time".into()), &finished(1, "WARN\n", "")).unwrap();
        assert_eq!(
            m.failures,
            vec!["value: perf:time: the output has no performance data"]
        );
    }

    #[test]
    fn a_failing_plugin_without_the_value_is_not_a_second_failure() {
        let f = finished(2, "CRITICAL - Socket timeout\n", "");
        for value in [
            ExecValue::Perf("time".into()),
            ExecValue::Stdout,
            ExecValue::PerfAll,
        ] {
            let m = measure(value, &f).unwrap();
            assert!(m.samples.is_empty() && m.failures.is_empty(), "{m:?}");
            assert_eq!(reported(&m), (Status::Crit, "CRITICAL - Socket timeout"));
        }
    }

    #[test]
    fn unknown_perf_values_fail_when_asked_for_and_are_skipped_in_all() {
        let f = finished(0, "OK | rta=U;100;500 pl=0%\n", "");
        let m = measure(ExecValue::Perf("rta".into()), &f).unwrap();
        assert_eq!(
            m.failures,
            vec!["value: perf:rta is U (the plugin could not determine it)"]
        );
        let m = measure(ExecValue::PerfAll, &f).unwrap();
        assert_eq!(
            m.samples,
            vec![Sample {
                series: "pl".into(),
                value: Value::Num(0.0)
            }]
        );
        assert_eq!(m.unit, "%");
    }

    #[test]
    fn all_perfdata_share_a_unit_only_when_they_agree() {
        let f = finished(0, "OK | time=1s size=10B time=9s\n", "");
        let m = measure(ExecValue::PerfAll, &f).unwrap();
        let series: Vec<_> = m
            .samples
            .iter()
            .map(|s| (s.series.as_str(), s.value.clone()))
            .collect();
        assert_eq!(
            series,
            vec![("time", Value::Num(1.0)), ("size", Value::Num(10.0))]
        );
        assert_eq!(m.unit, "");
        let m = measure(ExecValue::PerfAll, &finished(0, "OK | a=1ms b=2ms\n", "")).unwrap();
        assert_eq!(m.unit, "ms");
    }

    #[test]
    fn stdout_as_a_number() {
        let m = measure(ExecValue::Stdout, &finished(0, "  42.5\n", "")).unwrap();
        assert_eq!(m.samples, vec![Sample::single(Value::Num(42.5))]);
        let m = measure(ExecValue::Stdout, &finished(0, "forty-two\n", "")).unwrap();
        assert_eq!(
            m.failures,
            vec!["value: stdout is not a number: \"forty-two\""]
        );
        let m = measure(ExecValue::Stdout, &finished(0, "", "")).unwrap();
        assert_eq!(
            m.failures,
            vec!["value: stdout is empty, expected a number"]
        );
        let long = "x".repeat(1000);
        let m = measure(ExecValue::Stdout, &finished(0, &long, "")).unwrap();
        assert!(m.failures[0].ends_with("…\""), "{}", m.failures[0]);
        assert!(m.failures[0].len() < 400);
    }

    #[test]
    fn a_cut_output_says_so_when_the_value_is_missing() {
        let mut f = finished(0, "OK | a=1\n", "");
        f.stdout.total = OUTPUT_LIMIT * 3;
        let m = measure(ExecValue::Perf("z".into()), &f).unwrap();
        assert!(
            m.failures[0].ends_with("(stdout was cut at 64 KiB)"),
            "{:?}",
            m.failures
        );
    }

    #[test]
    fn stdout_expectation() {
        let f = finished(0, "state: degraded\n", "");
        let expect = ExecExpect {
            stdout_matches: Some("state: (ok|fine)".into()),
        };
        let m = measurement("x", &ExecValue::ExitCode, &expect, &f).unwrap();
        assert_eq!(
            m.failures,
            vec![
                "expect.stdout_matches: stdout does not match \"state: (ok|fine)\" (stdout starts \"state: degraded\")"
            ]
        );
        let expect = ExecExpect {
            stdout_matches: Some("^state: degraded$".into()),
        };
        assert!(
            measurement("x", &ExecValue::ExitCode, &expect, &f)
                .unwrap()
                .failures
                .is_empty()
        );
    }

    #[test]
    fn timeouts_and_spawn_failures_name_the_command() {
        let inv = Invocation {
            program: "/opt/x/check_y".into(),
            arg0: "check_y".into(),
            args: vec![],
            env: Default::default(),
            workdir: None,
        };
        let timed_out = RunFailure::TimedOut {
            stdout: Captured {
                bytes: b"working\n".to_vec(),
                total: 8,
            },
            stderr: Captured::default(),
        };
        let err = run_failure("check_y", &inv, Duration::from_secs(2), timed_out);
        assert_eq!(
            err.0,
            "timed out after 2s; check_y and the processes it started were killed; output: working"
        );
        let spawn = RunFailure::Spawn(std::io::Error::from_raw_os_error(libc::ENOEXEC));
        let err = run_failure("check_y", &inv, Duration::from_secs(2), spawn);
        assert!(err.0.starts_with("cannot run /opt/x/check_y: "), "{err}");
        assert!(
            err.0
                .ends_with("(a script needs a #! line naming its interpreter)"),
            "{err}"
        );
    }
}
