//! Splitting a batch of rows into multi-row statements that stay below a size budget.
//!
//! **Why bytes and not only rows.** sqlx 0.9.0 no longer sets `TCP_NODELAY` on its sockets
//! (upstream issue transact-rs/sqlx#4335, fixed after 0.9.0 by PR #4336). A message that leaves
//! the client in more than one write then has its later part held back by Nagle's algorithm until
//! the server's delayed ACK: about 40 ms per statement. Over TLS (sqlx's default `sslmode=prefer`
//! uses it whenever the server offers it) every record of at most 16 KiB is one write, so any
//! statement above 16 KiB waits. Measured on PostgreSQL over loopback with TLS: a batch of 500
//! runs with results, baselines and events took ~200–250 ms in 500-row statements and ~25 ms in
//! statements kept below [`MAX_STATEMENT_BYTES`]. Over a real network (1,460-byte segments) only
//! the sqlx fix removes the wait.

use super::BATCH;
use super::events::NewEventRow;
use super::rows::{BaselineRow, ResultRow, RunRow};
use super::scores::ScoreRow;
use super::state::StateUpdate;

/// Estimated bytes of one statement (its SQL text and its bound values, each sent as one message):
/// below one 16 KiB TLS record, with room for the estimate being rough.
pub const MAX_STATEMENT_BYTES: usize = 14 * 1024;

/// Bytes a bound parameter adds besides its text: its placeholder in the SQL (`$1234, `), the
/// length prefix in the Bind message and a fixed-size value (number, timestamp, boolean).
const PER_PARAM: usize = 20;

/// Rough size of a row in a multi-row statement.
pub trait StatementSize {
    fn statement_bytes(&self) -> usize;
}

fn estimate(params: usize, texts: &[&str]) -> usize {
    params * PER_PARAM + texts.iter().map(|t| t.len()).sum::<usize>()
}

impl StatementSize for RunRow {
    fn statement_bytes(&self) -> usize {
        estimate(10, &[&self.id, &self.revision, &self.triggered_by])
    }
}

impl StatementSize for ResultRow {
    fn statement_bytes(&self) -> usize {
        let labels: usize = self
            .labels
            .0
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum();
        labels
            + estimate(
                21,
                &[
                    &self.run_id,
                    &self.check_name,
                    &self.kind,
                    &self.target,
                    &self.series,
                    &self.status,
                    self.value_text.as_deref().unwrap_or(""),
                    &self.unit,
                    &self.message,
                    self.service.as_deref().unwrap_or(""),
                    &self.revision,
                ],
            )
    }
}

impl StatementSize for BaselineRow {
    fn statement_bytes(&self) -> usize {
        estimate(6, &[&self.check_name, &self.series])
    }
}

impl StatementSize for StateUpdate {
    fn statement_bytes(&self) -> usize {
        estimate(5, &[&self.check_name])
    }
}

impl StatementSize for NewEventRow {
    fn statement_bytes(&self) -> usize {
        estimate(3, &[&self.kind]) + json_len(&self.data)
    }
}

impl StatementSize for ScoreRow {
    fn statement_bytes(&self) -> usize {
        estimate(5, &[&self.service, &self.model]) + json_len(&self.details.0)
    }
}

fn json_len(value: &serde_json::Value) -> usize {
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0)
}

/// `rows` in consecutive chunks of at most [`BATCH`] rows and about [`MAX_STATEMENT_BYTES`]
/// (every chunk has at least one row, however large).
pub fn sized_chunks<T: StatementSize>(rows: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let size = row.statement_bytes();
        let full = i - start == BATCH || bytes + size > MAX_STATEMENT_BYTES;
        if i > start && full {
            chunks.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sized(usize);

    impl StatementSize for Sized {
        fn statement_bytes(&self) -> usize {
            self.0
        }
    }

    fn lengths(rows: &[Sized]) -> Vec<usize> {
        sized_chunks(rows).iter().map(|c| c.len()).collect()
    }

    #[test]
    fn small_rows_are_cut_at_the_row_limit() {
        let rows: Vec<Sized> = (0..1_201).map(|_| Sized(10)).collect();
        assert_eq!(lengths(&rows), [500, 500, 201]);
        assert!(sized_chunks::<Sized>(&[]).is_empty());
    }

    #[test]
    fn large_rows_are_cut_at_the_byte_budget() {
        let rows: Vec<Sized> = (0..10).map(|_| Sized(MAX_STATEMENT_BYTES / 4)).collect();
        assert_eq!(lengths(&rows), [4, 4, 2]);
    }

    #[test]
    fn a_row_larger_than_the_budget_goes_alone_and_nothing_is_lost() {
        let rows = vec![Sized(5), Sized(MAX_STATEMENT_BYTES * 2), Sized(5), Sized(5)];
        assert_eq!(lengths(&rows), [1, 1, 2]);
        let mixed: Vec<Sized> = (0..777).map(|i| Sized(i * 37 % 3_000)).collect();
        let chunks = sized_chunks(&mixed);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 777);
        for c in chunks {
            let bytes: usize = c.iter().map(|r| r.0).sum();
            assert!(c.len() == 1 || bytes <= MAX_STATEMENT_BYTES, "{bytes}");
        }
    }
}
