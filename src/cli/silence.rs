//! `patrol silence add | list | expire`: silences made straight in the store (`--store`,
//! `PATROL_STORE`). The daemon reads silences from the store, so these commands work while it
//! runs, and without its API being reachable. Exit codes: 0 done, 1 the store refused or the
//! silence to expire is not in force, 2 invalid input (a bad matcher names its column).

use std::time::Duration;

use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets};

use super::{DEFAULT_STORE, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::alert::matcher::{Matcher, parse_matchers};
use crate::alert::silence::NewSilence;
use crate::api::silences::{SilenceView, from_stored, to_store};
use crate::config;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub command: SilenceCommand,
    /// Where silences are kept (the daemon's store).
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE, global = true)]
    pub store: String,
}

#[derive(clap::Subcommand, Debug)]
pub enum SilenceCommand {
    /// Mute the notifications of matching alerts from now for a duration or until a time.
    Add(AddArgs),
    /// List silences in force or still to start (with --all, ended ones too).
    List {
        /// Also show silences that have ended.
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("end").required(true).args(["duration", "until"])))]
pub struct AddArgs {
    /// A label matcher such as 'service="orders"' or '{env=~"prod|stage", team!="qa"}'
    /// (repeatable; all must hold).
    #[arg(long = "matcher", value_name = "MATCHER", required = true)]
    pub matchers: Vec<String>,
    /// How long the silence lasts from now (30m, 2h, 1d).
    #[arg(long, value_parser = config::duration::parse)]
    pub duration: Option<Duration>,
    /// When the silence ends (RFC 3339, e.g. 2026-05-01T06:00:00Z).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Who made the silence.
    #[arg(long)]
    pub author: String,
    /// Why (shown to whoever wonders where the alerts went).
    #[arg(long)]
    pub comment: String,
}

pub async fn silence(args: SilenceArgs) -> u8 {
    let now = Utc::now();
    let request = match &args.command {
        SilenceCommand::Add(add) => match new_silence(add, now) {
            Ok(r) => Some(r),
            Err(message) => {
                eprintln!("patrol: {message}");
                return EXIT_INVALID;
            }
        },
        _ => None,
    };
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_INVALID;
        }
    };
    match (args.command, request) {
        (SilenceCommand::Add(_), Some(request)) => add(&store, request, now).await,
        (SilenceCommand::List { all }, _) => list(&store, all, now).await,
        (SilenceCommand::Expire { id }, _) => expire(&store, &id, now).await,
        (SilenceCommand::Add(_), None) => EXIT_INVALID,
    }
}

/// The silence request the arguments describe; a bad matcher names the argument and column.
fn new_silence(args: &AddArgs, now: DateTime<Utc>) -> Result<NewSilence, String> {
    let mut matchers: Vec<Matcher> = Vec::new();
    for text in &args.matchers {
        let parsed =
            parse_matchers(text).map_err(|e| format!("invalid --matcher {text:?}: {e}"))?;
        matchers.extend(parsed);
    }
    let ends_at = match (args.duration, args.until) {
        (Some(d), _) => chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| "--duration is too long".to_string())?,
        (None, Some(until)) => until,
        (None, None) => return Err("give --duration or --until".into()),
    };
    Ok(NewSilence {
        matchers,
        starts_at: Some(now),
        ends_at,
        created_by: args.author.clone(),
        comment: args.comment.clone(),
    })
}

async fn add(store: &Store, request: NewSilence, now: DateTime<Utc>) -> u8 {
    let silence = match request.into_silence(now) {
        Ok(s) => s,
        Err(problems) => {
            for line in problems.lines() {
                eprintln!("patrol: {line}");
            }
            return EXIT_INVALID;
        }
    };
    match store.add_silence(&to_store(&silence)).await {
        Ok(stored) => {
            println!("{}", stored.id);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("patrol: {e}");
            EXIT_FAILED
        }
    }
}

async fn list(store: &Store, all: bool, now: DateTime<Utc>) -> u8 {
    let stored = match store.list_silences((!all).then_some(now)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_FAILED;
        }
    };
    let views: Result<Vec<SilenceView>, _> = stored
        .into_iter()
        .map(|s| from_stored(s).map(|s| SilenceView::at(s, now)))
        .collect();
    match views {
        Ok(views) => {
            print!("{}", table(&views));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("patrol: {e}");
            EXIT_FAILED
        }
    }
}

async fn expire(store: &Store, id: &str, now: DateTime<Utc>) -> u8 {
    match store.expire_silence(id, now).await {
        Ok(true) => {
            println!("expired {id}");
            EXIT_OK
        }
        Ok(false) => {
            eprintln!("patrol: no silence {id:?} in force (unknown or already ended)");
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("patrol: {e}");
            EXIT_FAILED
        }
    }
}

/// One row per silence: id, state, times (UTC, to the second), creator, matchers, comment.
fn table(views: &[SilenceView]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header([
            "ID",
            "STATE",
            "STARTS",
            "ENDS",
            "CREATED BY",
            "MATCHERS",
            "COMMENT",
        ]);
    for v in views {
        let s = &v.silence;
        let matchers: Vec<String> = s.matchers.iter().map(Matcher::to_string).collect();
        let state = serde_json::to_value(v.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        t.add_row(vec![
            s.id.clone(),
            state,
            time_text(s.starts_at),
            time_text(s.ends_at),
            s.created_by.clone(),
            matchers.join(", "),
            s.comment.clone(),
        ]);
    }
    format!("{t}\n")
}

fn time_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(matchers: &[&str], duration: Option<&str>, until: Option<&str>) -> AddArgs {
        AddArgs {
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            duration: duration.map(|d| config::duration::parse(d).unwrap()),
            until: until.map(|u| u.parse().unwrap()),
            author: "ana".into(),
            comment: "deploy".into(),
        }
    }

    #[test]
    fn matchers_may_be_repeated_or_braced_and_the_end_follows_the_duration() {
        let now = Utc::now();
        let a = args(
            &[r#"service="orders""#, r#"{env=~"prod|stage", team!="qa"}"#],
            Some("2h"),
            None,
        );
        let r = new_silence(&a, now).unwrap();
        let texts: Vec<String> = r.matchers.iter().map(Matcher::to_string).collect();
        assert_eq!(
            texts,
            [
                r#"service="orders""#,
                r#"env=~"prod|stage""#,
                r#"team!="qa""#
            ]
        );
        assert_eq!(r.ends_at, now + chrono::Duration::hours(2));
        assert_eq!(r.starts_at, Some(now));
    }

    #[test]
    fn until_sets_the_end_and_a_bad_matcher_names_its_column() {
        let now = Utc::now();
        let a = args(&[r#"a="1""#], None, Some("2099-01-01T00:00:00Z"));
        assert_eq!(
            new_silence(&a, now).unwrap().ends_at.to_rfc3339(),
            "2099-01-01T00:00:00+00:00"
        );
        let bad = args(&[r#"service="orders"#], Some("1h"), None);
        let e = new_silence(&bad, now).unwrap_err();
        assert!(e.contains("column"), "{e}");
        assert!(e.contains("--matcher"), "{e}");
    }
}
