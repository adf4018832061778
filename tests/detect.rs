//! Black-box tests of `patrol detect` (offline scores of CSV series) and `patrol bench detect`
//! (the evaluation benchmark) on the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const EXIT_INVALID: i32 = 2;
/// 2024-01-01T00:00:00Z.
const START: i64 = 1_704_067_200;
const STEP: i64 = 300;

fn patrol(args: &[&str], dir: &Path) -> Output {
    Command::new(common::patrol_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("patrol runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// Deterministic noise in [-0.5, 0.5).
fn noise(i: usize) -> f64 {
    let x = (i as u64 ^ 0x5eed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    ((x >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A day-shaped series of `n` 5-minute samples: a sine with period 1 day around 100 plus noise.
fn daily(n: usize) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| {
            let t = START + i as i64 * STEP;
            let phase = 2.0 * std::f64::consts::PI * (t % 86_400) as f64 / 86_400.0;
            (t, 100.0 + 40.0 * phase.sin() + 6.0 * noise(i))
        })
        .collect()
}

fn write_csv(path: &Path, header: bool, rows: &[(String, String)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut s = String::new();
    if header {
        s.push_str("timestamp,value\n");
    }
    for (t, v) in rows {
        s.push_str(&format!("{t},{v}\n"));
    }
    std::fs::write(path, s).unwrap();
}

fn rows_of(series: &[(i64, f64)]) -> Vec<(String, String)> {
    series
        .iter()
        .map(|(t, v)| (rfc3339(*t), format!("{v:.3}")))
        .collect()
}

/// The scored CSV: header checked, then (timestamp, score or None for an empty cell).
fn read_scores(path: &Path) -> Vec<(String, Option<f64>)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,anomaly_score"),
        "{}",
        path.display()
    );
    lines
        .map(|l| {
            let (t, s) = l.split_once(',').unwrap_or_else(|| panic!("{l:?}"));
            let score = (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
            (t.to_string(), score)
        })
        .collect()
}

#[test]
fn output_mirrors_the_input_tree_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    // a.csv: header, RFC 3339, a duplicate timestamp and an out-of-order pair.
    let mut a = rows_of(&daily(300));
    a.insert(100, a[99].clone());
    a.swap(200, 201);
    write_csv(&input.join("a.csv"), true, &a);
    // nested/deeper/b.csv: unix seconds, no header, an empty value and an unreadable one.
    let mut b: Vec<(String, String)> = daily(120)
        .iter()
        .map(|(t, v)| (t.to_string(), format!("{v:.2}")))
        .collect();
    b[50].1 = String::new();
    b[70].1 = "n/a".into();
    write_csv(&input.join("nested/deeper/b.csv"), false, &b);
    std::fs::write(input.join("notes.txt"), "not a series").unwrap();

    let (stdout, stderr) = ok(patrol(
        &["detect", "--input", "in", "--output", "out"],
        dir.path(),
    ));
    assert!(
        stdout.contains("scored 2 file(s), 421 row(s) with ewma"),
        "{stdout}"
    );
    // Line 71 of b.csv (no header) holds "n/a".
    assert!(
        stderr.contains("b.csv:71: value is not a number; 1 such row(s) scored empty"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/notes.txt").exists());
    // An output directory inside the input is not read back as input, however often it runs.
    for _ in 0..2 {
        let (stdout, _) = ok(patrol(
            &["detect", "--input", "in", "--output", "in/scored"],
            dir.path(),
        ));
        assert!(stdout.contains("scored 2 file(s)"), "{stdout}");
    }
    assert!(!dir.path().join("in/scored/scored").exists());

    for (rel, rows) in [("a.csv", &a), ("nested/deeper/b.csv", &b)] {
        let scores = read_scores(&dir.path().join("out").join(rel));
        assert_eq!(scores.len(), rows.len(), "{rel}: one row per input row");
        for (i, ((t, score), (t_in, v_in))) in scores.iter().zip(rows.iter()).enumerate() {
            assert_eq!(t, t_in, "{rel} row {i}: the input's timestamp, in order");
            let numeric = v_in.parse::<f64>().is_ok();
            match score {
                Some(s) => {
                    assert!(numeric, "{rel} row {i}: scored without a value");
                    assert!((0.0..=1.0).contains(s), "{rel} row {i}: score {s}");
                }
                None => assert!(!numeric, "{rel} row {i}: a value without a score"),
            }
        }
    }
}

/// Scores of the same series, then with every row from `changed_from` on altered, then cut
/// before it: the rows before `changed_from` must score the same in all three.
fn assert_online(method_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let n = 3 * 288; // three days: a seasonal model is fitted from day 2 on
    let changed_from = 700;
    let mut original = rows_of(&daily(n));
    // Messy on purpose: a duplicate and an out-of-order pair before the change.
    original.insert(400, original[399].clone());
    original.swap(500, 501);
    let mut changed = original.clone();
    for (i, row) in changed.iter_mut().enumerate().skip(changed_from) {
        row.1 = format!("{:.3}", 400.0 + 30.0 * noise(i + 7));
    }
    write_csv(&input.join("original.csv"), true, &original);
    write_csv(&input.join("changed.csv"), true, &changed);
    write_csv(&input.join("cut.csv"), true, &original[..changed_from]);

    let mut args = vec!["detect", "--input", "in", "--output", "out"];
    args.extend_from_slice(method_args);
    ok(patrol(&args, dir.path()));

    let read = |name: &str| read_scores(&dir.path().join("out").join(name));
    let (o, c, cut) = (read("original.csv"), read("changed.csv"), read("cut.csv"));
    assert_eq!(o.len(), original.len());
    assert_eq!(
        o[..changed_from],
        c[..changed_from],
        "{method_args:?}: a later row changed an earlier score"
    );
    assert_eq!(
        o[..changed_from],
        cut[..],
        "{method_args:?}: the prefix alone scores the same"
    );
    assert_ne!(
        o[changed_from..],
        c[changed_from..],
        "{method_args:?}: the change must show in the later scores"
    );
    let later_max = c[changed_from..]
        .iter()
        .filter_map(|r| r.1)
        .fold(0.0, f64::max);
    assert!(
        later_max > 0.5,
        "{method_args:?}: a jump to 400 is unusual ({later_max})"
    );
}

#[test]
fn ewma_scores_are_online() {
    assert_online(&["--method", "ewma"]);
}

#[test]
fn seasonal_scores_are_online_across_refits() {
    assert_online(&["--method", "seasonal", "--periods", "1d", "--refit", "2h"]);
}

#[test]
fn a_spike_scores_higher_than_every_typical_row() {
    let dir = tempfile::tempdir().unwrap();
    let spike_at = 150;
    let rows: Vec<(String, String)> = (0..200)
        .map(|i| {
            let v = if i == spike_at {
                80.0
            } else {
                50.0 + 4.0 * noise(i)
            };
            (rfc3339(START + i as i64 * STEP), format!("{v:.2}"))
        })
        .collect();
    write_csv(&dir.path().join("in/s.csv"), true, &rows);
    ok(patrol(
        &["detect", "--input", "in", "--output", "out"],
        dir.path(),
    ));
    let scores: Vec<f64> = read_scores(&dir.path().join("out/s.csv"))
        .into_iter()
        .map(|r| r.1.unwrap())
        .collect();
    let spike = scores[spike_at];
    assert!(spike > 0.9, "{spike}");
    // After the warm-up (20 samples), no ordinary row comes close.
    for (i, s) in scores.iter().enumerate().skip(20) {
        if i != spike_at {
            assert!(*s < spike, "row {i} scored {s} ≥ the spike's {spike}");
        }
    }
    let typical: f64 = scores[20..].iter().sum::<f64>() / (scores.len() - 20) as f64;
    assert!(typical < 0.2, "mean score {typical}");
}

#[test]
fn bad_input_names_file_and_line_and_good_files_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = rows_of(&daily(30));
    write_csv(&dir.path().join("in/good.csv"), true, &good);
    let mut bad = rows_of(&daily(30));
    bad[2].0 = "yesterday".into();
    write_csv(&dir.path().join("in/sub/bad.csv"), true, &bad);

    let out = patrol(&["detect", "--input", "in", "--output", "out"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(EXIT_INVALID), "{stdout}\n{stderr}");
    // Header on line 1, so the third row is line 4.
    assert!(
        stderr.contains("bad.csv:4: invalid timestamp \"yesterday\""),
        "{stderr}"
    );
    assert!(stdout.contains("1 file(s) invalid"), "{stdout}");
    assert_eq!(read_scores(&dir.path().join("out/good.csv")).len(), 30);
    assert!(!dir.path().join("out/sub/bad.csv").exists());

    let short = dir.path().join("in2/short.csv");
    std::fs::create_dir_all(short.parent().unwrap()).unwrap();
    std::fs::write(&short, "timestamp,value\n1704067200\n").unwrap();
    let out = patrol(
        &["detect", "--input", "in2", "--output", "out2"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    assert!(
        text(&out)
            .1
            .contains("short.csv:2: expected the columns timestamp,value")
    );
}

#[test]
fn bad_arguments_are_invalid_usage() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(&dir.path().join("in/a.csv"), true, &rows_of(&daily(10)));
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    for (args, says) in [
        (vec!["--alpha", "0"], "--alpha: alpha must be in (0, 1]"),
        (vec!["--level", "0.3"], "--level: level must be in (0.5, 1)"),
        (
            vec!["--periods", "1d"],
            "--periods: periods apply to method seasonal only",
        ),
        (
            vec!["--method", "seasonal", "--refit", "10s"],
            "--refit: refit must be at least 1m",
        ),
    ] {
        let mut argv = vec!["detect", "--input", "in", "--output", "out"];
        argv.extend_from_slice(&args);
        let out = patrol(&argv, dir.path());
        assert_eq!(out.status.code(), Some(EXIT_INVALID), "{args:?}");
        assert!(text(&out).1.contains(says), "{args:?}: {}", text(&out).1);
    }
    for (input, says) in [("missing", "--input missing"), ("empty", "no *.csv files")] {
        let out = patrol(&["detect", "--input", input, "--output", "out"], dir.path());
        assert_eq!(out.status.code(), Some(EXIT_INVALID), "{input}");
        assert!(text(&out).1.contains(says), "{input}: {}", text(&out).1);
    }
    assert!(
        !dir.path().join("out/a.csv").exists(),
        "nothing scored with bad flags"
    );
}

#[test]
fn bench_detect_runs_on_a_small_generated_set() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(patrol(
        &[
            "bench",
            "detect",
            "--generate",
            "set",
            "--count",
            "2",
            "--days",
            "3",
        ],
        dir.path(),
    ));
    assert!(stdout.contains("wrote 2 series"), "{stdout}");
    let labels: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("set/labels.json")).unwrap())
            .unwrap();
    let names: Vec<&String> = labels.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 2);
    for name in &names {
        assert!(dir.path().join(format!("set/series/{name}.csv")).exists());
    }

    let (stdout, stderr) = ok(patrol(
        &[
            "bench",
            "detect",
            "--set",
            "set",
            "--refit",
            "2h",
            "--refit-series",
            "3",
            "--updates",
            "100000",
        ],
        dir.path(),
    ));
    let header = stdout
        .lines()
        .find(|l| l.starts_with("method "))
        .unwrap_or_else(|| panic!("no table:\n{stdout}\n{stderr}"));
    for column in ["precision", "recall", "F1", "F1/peer", "delay", "ROC AUC"] {
        assert!(header.contains(column), "{header}");
    }
    for method in ["ewma", "seasonal", "ets", "peer"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{method} ")))
            .unwrap_or_else(|| panic!("no {method} row:\n{stdout}"));
        let f1: f64 = row.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&f1), "{row}");
    }
    assert!(
        stdout.contains("ns per update (100000 updates)"),
        "{stdout}"
    );
    assert!(stdout.contains("definitions:"), "{stdout}");

    let (json, _) = ok(patrol(
        &[
            "bench",
            "detect",
            "--set",
            "set",
            "--methods",
            "ewma",
            "--refit-series",
            "0",
            "--updates",
            "1000",
            "--json",
        ],
        dir.path(),
    ));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let methods = report["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2, "ewma and the peer");
    assert_eq!(methods[1]["method"], "peer");
    let windows = report["windows"].as_u64().unwrap();
    assert!(windows >= 3, "{windows}");
    for m in methods {
        assert_eq!(m["events"]["windows"].as_u64(), Some(windows));
        let recall = m["recall"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&recall), "{m}");
    }
}

#[test]
fn bench_detect_without_a_set_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = patrol(&["bench", "detect", "--set", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    assert!(text(&out).1.contains("--generate"), "{}", text(&out).1);
}
