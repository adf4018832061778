use super::*;
use crate::playbook::step::test_support::{load, problems, rules};

const RULES: &str = "targets:\n  ro: { kind: postgres, url: \"postgres://u@127.0.0.1:1/db\" }\n  rw: { kind: postgres, url: \"postgres://u@127.0.0.1:1/db\", allow_write: true }\n  my: { kind: mysql, url: \"mysql://u@127.0.0.1:1/db\" }\n  cache: { kind: redis, url: \"redis://127.0.0.1:1\" }\n";

/// A step from its YAML mapping (through the crate's own YAML reader).
fn step(yaml: &str) -> SqlStep {
    serde_json::from_value(crate::config::parse_yaml(yaml).unwrap().to_json()).unwrap()
}

#[test]
fn defaults_are_read_only_with_a_row_limit() {
    let s = step("{ target: ro, statement: SELECT 1 }");
    assert!(!s.write);
    assert_eq!(s.max_rows, 1000);
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert!(s.params.is_empty());
    assert!(s.dry_run_safe());
    assert_eq!(s.describe(), "sql (read-only) on ro: SELECT 1");
}

#[test]
fn modes_follow_the_step_and_the_dry_run() {
    let read = step("{ target: rw, statement: SELECT 1 }");
    let write = step("{ target: rw, statement: DELETE FROM t, write: true }");
    assert_eq!(Mode::of(&read, false), Mode::Read);
    assert_eq!(Mode::of(&read, true), Mode::Read);
    assert_eq!(Mode::of(&write, false), Mode::Write);
    assert_eq!(Mode::of(&write, true), Mode::Rehearse);
}

#[test]
fn a_write_step_needs_a_target_that_allows_writes() {
    let rules = rules(RULES);
    let p = problems(
        "  - sql: { target: ro, statement: \"DELETE FROM t\", write: true }\n",
        &rules,
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "pb.yaml:4:59: error: target `ro` does not allow writes: set `allow_write: true`"
        ),
        "{p:?}"
    );
    load(
        "  - sql: { target: rw, statement: \"DELETE FROM t\", write: true }\n",
        &rules,
    )
    .expect("both allowances given");
}

#[test]
fn a_read_step_may_hold_dml_the_database_refuses_but_not_what_escapes_it() {
    let rules = rules(RULES);
    // The read-only transaction refuses a DELETE itself, with its own words.
    load(
        "  - sql: { target: ro, statement: \"DELETE FROM t\" }\n",
        &rules,
    )
    .expect("valid");
    let p = problems(
        "  - sql: { target: my, statement: \"DROP TABLE t\" }\n",
        &rules,
    );
    assert!(p[0].contains("patrol refuses DROP statements"), "{p:?}");
    assert!(p[0].contains("needs `write: true`"), "{p:?}");
    let p = problems(
        "  - sql: { target: ro, statement: \"SELECT 1; DELETE FROM t\" }\n",
        &rules,
    );
    assert!(p[0].contains("more than one statement"), "{p:?}");
}

#[test]
fn targets_must_be_databases_of_the_rules() {
    let rules = rules(RULES);
    let p = problems(
        "  - sql: { target: cache, statement: SELECT 1 }\n  - sql: { target: nope, statement: SELECT 1 }\n",
        &rules,
    );
    assert!(
        p.iter()
            .any(|m| m.contains("target `cache` is redis, not postgres or mysql or sqlite")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m.contains(
            "unknown target `nope`; postgres/mysql/sqlite targets of the rules: my, ro, rw"
        )),
        "{p:?}"
    );
}

#[test]
fn params_are_scalars_and_limits_are_positive() {
    let rules = rules(RULES);
    let p = problems(
        "  - sql: { target: ro, statement: SELECT $1, params: [1, [2]], max_rows: 0, timeout: 0s }\n",
        &rules,
    );
    assert!(
        p.iter()
            .any(|m| m.contains("a parameter is a string, a number, a boolean or null")),
        "{p:?}"
    );
    assert!(p.iter().any(|m| m.contains("max_rows must be at least 1")));
    assert!(p.iter().any(|m| m.contains("timeout must be above 0s")));
}

#[test]
fn a_rehearsal_only_takes_what_a_rollback_undoes() {
    let s = step("{ target: rw, statement: \"UPDATE t SET a = $1\", write: true }");
    assert_eq!(
        s.statement_for(Dialect::Postgres, Mode::Rehearse).unwrap(),
        "UPDATE t SET a = $1"
    );
    let ddl = step("{ target: rw, statement: \"ALTER TABLE t ADD c INT\", write: true }");
    let e = ddl
        .statement_for(Dialect::MySql, Mode::Rehearse)
        .unwrap_err();
    assert!(
        e.starts_with("--dry-run cannot rehearse this statement"),
        "{e}"
    );
    assert_eq!(
        ddl.statement_for(Dialect::MySql, Mode::Write).unwrap(),
        "ALTER TABLE t ADD c INT"
    );
}

#[test]
fn reading_statements_are_told_apart_for_rows_affected() {
    assert!(reads("  select 1"));
    assert!(reads("-- note\n/* c */ (SELECT 1)"));
    assert!(!reads(
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"
    ));
    assert!(!reads("update t set a = 1"));
    assert_eq!(first_word("/* unterminated"), "");
}

#[test]
fn cells_become_json() {
    use crate::result::Value as Cell;
    assert_eq!(cell_json(None), Value::Null);
    assert_eq!(cell_json(Some(Cell::Num(3.0))), json!(3));
    assert_eq!(cell_json(Some(Cell::Num(2.5))), json!(2.5));
    assert_eq!(cell_json(Some(Cell::Text("x".into()))), json!("x"));
}

#[test]
fn captures_read_the_first_row_and_truncation_is_said() {
    let s = step("{ target: ro, statement: SELECT 1, capture: { id: id }, max_rows: 1 }");
    let plan = Plan {
        statement: "SELECT id FROM t",
        params: &[],
        mode: Mode::Read,
        deadline: Deadline::after(Duration::from_secs(1)),
        max_rows: 1,
    };
    let mut row = Map::new();
    row.insert("id".into(), json!(7));
    let outcome = Outcome {
        rows: vec![row],
        row_count: 3,
        rows_affected: 3,
    };
    let out = s.output(outcome, &plan).unwrap();
    assert_eq!(out["id"], 7);
    assert_eq!(out["row_count"], 3);
    assert_eq!(out["rows_affected"], 0, "a SELECT affects nothing");
    assert_eq!(out["truncated"], true);
    assert_eq!(
        out["note"],
        "only the first 1 of 3 rows are kept (max_rows)"
    );
    let e = s.output(Outcome::default(), &plan).unwrap_err();
    assert_eq!(e, "capture `id`: the statement returned no rows");
}

#[test]
fn long_statements_are_shortened_in_descriptions() {
    assert_eq!(shortened("SELECT\n  a,\n  b", 80), "SELECT a, b");
    assert_eq!(shortened("abcdef", 3), "abc…");
}
