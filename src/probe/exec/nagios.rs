//! The output half of the Nagios plugin protocol
//! (<https://nagios-plugins.org/doc/guidelines.html#AEN200>): the first line is the summary, text
//! after a `|` is performance data, further lines are long output, and once a later line has a
//! `|` every line after it is performance data too:
//!
//! ```text
//! DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968
//! / 15272 MB (77%);
//! /var/log 819 MB (84%); | /boot=68MB;88;93;0;98
//! /var/log=818MB;970;975;0;980
//! ```
//!
//! A performance datum is `'label'=value[UOM];[warn];[crit];[min];[max]`: labels with spaces are
//! quoted with `'` (a quote inside is written `''`), the value may be `U` (the plugin could not
//! measure it), trailing fields may be left out. Plugins in the wild stray from the list of units,
//! so any suffix after the number is kept as the unit rather than rejected.

/// A plugin's stdout, split by the protocol.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginOutput {
    /// The first line up to its `|`, trimmed: the plugin's verdict in its own words.
    pub summary: String,
    /// Lines of long output (without their performance data).
    pub long_text: Vec<String>,
    pub perfdata: Vec<PerfDatum>,
    /// Performance data items that do not follow the syntax, as written.
    pub malformed: Vec<String>,
}

impl PluginOutput {
    /// The first datum called `label`.
    pub fn datum(&self, label: &str) -> Option<&PerfDatum> {
        self.perfdata.iter().find(|d| d.label == label)
    }

    /// The labels present, in order, for messages.
    pub fn labels(&self) -> Vec<&str> {
        self.perfdata.iter().map(|d| d.label.as_str()).collect()
    }
}

/// One `label=value[UOM];warn;crit;min;max` item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerfDatum {
    pub label: String,
    /// `None` when the plugin wrote `U` (it could not determine the value).
    pub value: Option<f64>,
    /// Unit of measurement as written (`s`, `ms`, `%`, `B`, `KB`, `c`, …), "" for none.
    pub uom: String,
    /// Warning and critical ranges as written (`10`, `10:20`, `@~:5`), `None` when empty.
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Splits a plugin's stdout into summary, long output and performance data.
pub fn parse(stdout: &str) -> PluginOutput {
    let mut out = PluginOutput::default();
    let mut lines = stdout.lines();
    let mut perf_text = Vec::new();
    if let Some(first) = lines.next() {
        let (text, perf) = split_at_bar(first);
        out.summary = text.trim().to_string();
        perf_text.extend(perf);
    }
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            perf_text.push(line);
            continue;
        }
        let (text, perf) = split_at_bar(line);
        out.long_text.push(text.trim_end().to_string());
        if let Some(perf) = perf {
            perf_text.push(perf);
            in_perf = true;
        }
    }
    // Trailing blank lines are the plugin's final newline(s), not long output.
    while out.long_text.last().is_some_and(|l| l.trim().is_empty()) {
        out.long_text.pop();
    }
    for text in perf_text {
        parse_perfdata(text, &mut out);
    }
    out
}

fn split_at_bar(line: &str) -> (&str, Option<&str>) {
    match line.split_once('|') {
        Some((text, perf)) => (text, Some(perf)),
        None => (line, None),
    }
}

/// Parses the space-separated items of one stretch of performance data into `out`.
fn parse_perfdata(text: &str, out: &mut PluginOutput) {
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (item, after) = next_item(rest);
        match parse_item(item) {
            Some(d) => out.perfdata.push(d),
            None => out.malformed.push(item.to_string()),
        }
        rest = after.trim_start();
    }
}

/// The next item of `text` (which starts at a non-space) and what follows it. A quoted label may
/// hold spaces, so the item ends at the first space after the label's closing quote.
fn next_item(text: &str) -> (&str, &str) {
    let mut end_of_label = 0;
    if text.starts_with('\'') {
        let bytes = text.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                end_of_label = i + 1;
                break;
            }
            i += 1;
        }
        if end_of_label == 0 {
            // An unterminated quote: the rest is one malformed item.
            return (text, "");
        }
    }
    match text[end_of_label..].find(char::is_whitespace) {
        Some(i) => text.split_at(end_of_label + i),
        None => (text, ""),
    }
}

/// One item, or `None` when it does not follow the syntax.
fn parse_item(item: &str) -> Option<PerfDatum> {
    let (label, fields) = split_label(item)?;
    let mut fields = fields.split(';');
    let (value, uom) = parse_value(fields.next().unwrap_or(""))?;
    let mut next_text = || {
        fields
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let warn = next_text();
    let crit = next_text();
    let min = next_text().and_then(|s| number_prefix(&s).map(|(n, _)| n));
    let max = next_text().and_then(|s| number_prefix(&s).map(|(n, _)| n));
    Some(PerfDatum {
        label,
        value,
        uom,
        warn,
        crit,
        min,
        max,
    })
}

/// `'quoted label'=rest` or `label=rest`; the label without quotes (`''` → `'`).
fn split_label(item: &str) -> Option<(String, &str)> {
    if let Some(quoted) = item.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            if chars.peek().map(|&(_, c)| c) == Some('\'') {
                chars.next();
                label.push('\'');
                continue;
            }
            let rest = quoted[i + 1..].strip_prefix('=')?;
            return (!label.is_empty()).then_some((label, rest));
        }
        return None;
    }
    let (label, rest) = item.split_once('=')?;
    (!label.is_empty() && !label.contains('\'')).then(|| (label.to_string(), rest))
}

/// `12.5ms` → (Some(12.5), "ms"); `U` → (None, ""); `Ums`… is not a value.
fn parse_value(text: &str) -> Option<(Option<f64>, String)> {
    let text = text.trim();
    if text == "U" {
        return Some((None, String::new()));
    }
    let (n, unit) = number_prefix(text)?;
    Some((Some(n), unit.trim().to_string()))
}

/// The longest leading number of `text` (`-0.5`, `1e3`) and what follows it.
fn number_prefix(text: &str) -> Option<(f64, &str)> {
    let numeric_len = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(text.len());
    // Backing off finds the number in `5e` or `1.5E` (a unit that starts with e/E is not one of
    // the protocol's, but the number before it must still be read).
    (1..=numeric_len).rev().find_map(|len| {
        let n: f64 = text[..len].parse().ok()?;
        n.is_finite().then_some((n, &text[len..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(label: &str, value: Option<f64>, uom: &str) -> PerfDatum {
        PerfDatum {
            label: label.into(),
            value,
            uom: uom.into(),
            ..Default::default()
        }
    }

    #[test]
    fn summary_without_perfdata() {
        let out = parse("PING OK - Packet loss = 0%\n");
        assert_eq!(out.summary, "PING OK - Packet loss = 0%");
        assert!(out.perfdata.is_empty() && out.long_text.is_empty());
        assert!(out.malformed.is_empty());
    }

    #[test]
    fn check_tcp_output_is_read_whole() {
        let out = parse(
            "TCP OK - 0.000 second response time on 127.0.0.1 port 80|time=0.000098s;;;0.000000;10.000000\n",
        );
        assert_eq!(
            out.summary,
            "TCP OK - 0.000 second response time on 127.0.0.1 port 80"
        );
        assert_eq!(
            out.perfdata,
            vec![PerfDatum {
                min: Some(0.0),
                max: Some(10.0),
                ..datum("time", Some(0.000098), "s")
            }]
        );
    }

    #[test]
    fn several_items_with_thresholds_and_units() {
        let out = parse(
            "HTTP OK: 200 |time=0.001294s;1.5;3;0.000000;10.000000 size=3013B;;;0; load1=0.5;15;30;0 'pct used'=56%;80;90",
        );
        assert_eq!(out.labels(), vec!["time", "size", "load1", "pct used"]);
        let time = out.datum("time").unwrap();
        assert_eq!(time.warn.as_deref(), Some("1.5"));
        assert_eq!(time.crit.as_deref(), Some("3"));
        let size = out.datum("size").unwrap();
        assert_eq!((size.value, size.uom.as_str()), (Some(3013.0), "B"));
        assert_eq!(
            (size.warn.clone(), size.min, size.max),
            (None, Some(0.0), None)
        );
        let load = out.datum("load1").unwrap();
        assert_eq!((load.value, load.uom.as_str()), (Some(0.5), ""));
        let pct = out.datum("pct used").unwrap();
        assert_eq!((pct.value, pct.uom.as_str()), (Some(56.0), "%"));
        assert_eq!((pct.min, pct.max), (None, None));
    }

    #[test]
    fn ranges_are_kept_as_written() {
        let out = parse("X | a=5;10:20;@~:5;;");
        let a = out.datum("a").unwrap();
        assert_eq!(a.warn.as_deref(), Some("10:20"));
        assert_eq!(a.crit.as_deref(), Some("@~:5"));
        assert_eq!((a.min, a.max), (None, None));
    }

    #[test]
    fn every_guideline_unit_is_read() {
        for uom in ["s", "ms", "us", "%", "B", "KB", "MB", "TB", "c", ""] {
            let out = parse(&format!("X | v=12.5{uom}"));
            assert_eq!(out.perfdata, vec![datum("v", Some(12.5), uom)], "{uom}");
        }
    }

    #[test]
    fn quoted_labels_hold_spaces_equals_and_escaped_quotes() {
        let out =
            parse("OK | 'label with spaces'=1 'it''s'=2 'a=b'=3ms '/var/log'=818MB;970;975;0;980");
        assert_eq!(
            out.labels(),
            vec!["label with spaces", "it's", "a=b", "/var/log"]
        );
        assert_eq!(out.datum("a=b").unwrap().uom, "ms");
        assert_eq!(out.datum("/var/log").unwrap().max, Some(980.0));
        assert!(out.malformed.is_empty(), "{:?}", out.malformed);
    }

    #[test]
    fn unknown_values_are_none() {
        let out = parse("UNKNOWN | rta=U;100;500 pl=U%");
        assert_eq!(out.datum("rta").unwrap().value, None);
        assert_eq!(out.datum("rta").unwrap().warn.as_deref(), Some("100"));
        // `U` followed by a unit is not the protocol's unknown value, nor a number.
        assert_eq!(out.malformed, vec!["pl=U%"]);
    }

    #[test]
    fn negative_and_exponent_values() {
        let out = parse("OK | temp=-3.5 big=1e3B small=2.5E-3s");
        assert_eq!(out.datum("temp").unwrap().value, Some(-3.5));
        assert_eq!(out.datum("big").unwrap().value, Some(1000.0));
        assert_eq!(out.datum("big").unwrap().uom, "B");
        assert_eq!(out.datum("small").unwrap().value, Some(0.0025));
    }

    #[test]
    fn malformed_items_are_set_aside_and_the_rest_kept() {
        let out = parse("OK | novalue= =5 plain 'open=1 ok=2");
        assert!(out.perfdata.is_empty(), "{:?}", out.perfdata);
        assert_eq!(
            out.malformed,
            vec!["novalue=", "=5", "plain", "'open=1 ok=2"]
        );
        let out = parse("OK | bad=abc good=7");
        assert_eq!(out.malformed, vec!["bad=abc"]);
        assert_eq!(out.datum("good").unwrap().value, Some(7.0));
    }

    #[test]
    fn guideline_long_output_example() {
        let out = parse(
            "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
             / 15272 MB (77%);\n\
             /boot 68 MB (69%);\n\
             /home 69357 MB (27%);\n\
             /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
             /home=69357MB;253404;253409;0;253414 \n\
             /var/log=818MB;970;975;0;980\n",
        );
        assert_eq!(out.summary, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(
            out.long_text,
            vec![
                "/ 15272 MB (77%);",
                "/boot 68 MB (69%);",
                "/home 69357 MB (27%);",
                "/var/log 819 MB (84%);"
            ]
        );
        assert_eq!(out.labels(), vec!["/", "/boot", "/home", "/var/log"]);
        assert_eq!(out.datum("/home").unwrap().value, Some(69357.0));
        assert_eq!(out.datum("/var/log").unwrap().crit.as_deref(), Some("975"));
        assert!(out.malformed.is_empty());
    }

    #[test]
    fn long_output_without_perfdata_and_empty_output() {
        let out = parse("WARNING - 2 jobs late\njob a\njob b\n\n");
        assert_eq!(out.summary, "WARNING - 2 jobs late");
        assert_eq!(out.long_text, vec!["job a", "job b"]);
        assert_eq!(parse(""), PluginOutput::default());
    }

    #[test]
    fn first_matching_label_wins() {
        let out = parse("OK | a=1\nmore | a=2");
        assert_eq!(out.datum("a").unwrap().value, Some(1.0));
        assert_eq!(out.perfdata.len(), 2);
    }
}
