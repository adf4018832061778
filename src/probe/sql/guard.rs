//! The statement guard: what patrol refuses to send before the database sees it.
//!
//! Checks run inside a read-only transaction, and for ordinary writes (`INSERT`, `UPDATE`, `DELETE`)
//! the database's own refusal is the clearest message, so those pass through. Some statements are
//! not stopped by a read-only transaction at all:
//! - in MySQL/MariaDB, DDL (`DROP`, `ALTER`, `CREATE`, `TRUNCATE`, `RENAME`, …), `LOCK TABLES` and
//!   transaction control commit implicitly and then run outside the transaction — verified on
//!   MariaDB 10.11: `START TRANSACTION READ ONLY; DROP TABLE t` drops the table;
//! - `SELECT … INTO OUTFILE` (MySQL), `COPY … TO 'file'` (PostgreSQL), `VACUUM INTO` / `ATTACH`
//!   (SQLite) write files, and SQLite's `PRAGMA journal_mode=…` rewrites the file header even with
//!   `query_only` on;
//! - a second statement after `;` (SQLite runs every statement of a string; MySQL `/*! … */`
//!   comments are executed).
//!
//! So the first keyword must be on a short list of reading statements (plus the DML the database
//! refuses itself), only one statement is allowed, and the lexer errs on the side of refusing:
//! where patrol and the server could read the text differently, patrol sees more code, never less.

/// The SQL dialect a statement is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// Statements that only read.
    fn reading(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"],
            Dialect::MySql => &[
                "SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC",
            ],
            Dialect::Sqlite => &["SELECT", "WITH", "VALUES", "EXPLAIN"],
        }
    }

    /// Writes that the read-only transaction refuses with the database's own message.
    fn refused_by_database(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["INSERT", "UPDATE", "DELETE", "MERGE"],
            Dialect::MySql | Dialect::Sqlite => &["INSERT", "UPDATE", "DELETE", "REPLACE"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL/MariaDB",
            Dialect::Sqlite => "SQLite",
        }
    }
}

/// The single statement to send (without a trailing `;`), or why patrol refuses to send it.
pub fn read_only_statement(dialect: Dialect, sql: &str) -> Result<&str, String> {
    if dialect == Dialect::MySql {
        refuse_mysql_specials(sql)?;
    }
    let statement = single_statement(sql, Lexer::new(sql, dialect, dialect == Dialect::MySql))?;
    if dialect == Dialect::MySql {
        // A server in NO_BACKSLASH_ESCAPES mode ends `'\'` early and could see a second statement
        // there; text it finds unterminated it would reject as a syntax error, which is harmless.
        if let Err(e @ GuardError::Multiple) =
            single_statement(sql, Lexer::new(sql, dialect, false))
        {
            return Err(e.to_string());
        }
    }
    let first = first_keyword(Lexer::new(statement, dialect, false))?;
    if dialect.reading().contains(&first.as_str())
        || dialect.refused_by_database().contains(&first.as_str())
    {
        return Ok(statement);
    }
    Err(refusal(dialect, &first))
}

fn refusal(dialect: Dialect, keyword: &str) -> String {
    let allowed = dialect.reading().join(", ");
    let mut msg = format!(
        "patrol refuses {keyword} statements: a check runs one read-only query ({allowed})"
    );
    match dialect {
        Dialect::MySql => msg.push_str(
            "; in MySQL/MariaDB, DDL and transaction statements commit implicitly and would escape the read-only transaction",
        ),
        Dialect::Sqlite if keyword == "PRAGMA" => {
            msg.push_str("; read a pragma with SELECT * FROM pragma_<name>() (pragma table-valued functions never write)")
        }
        _ => {}
    }
    msg
}

/// MySQL executes `/*! … */` and `/*M! … */` comments, and `INTO OUTFILE|DUMPFILE` writes a file on
/// the server. Refused wherever they appear (even inside a string: better a false alarm than a write).
fn refuse_mysql_specials(sql: &str) -> Result<(), String> {
    let lower = sql.to_ascii_lowercase();
    if lower.contains("/*!") || lower.contains("/*m!") {
        return Err("patrol refuses MySQL executable comments (/*! … */): the server runs what they contain".into());
    }
    for word in ["outfile", "dumpfile"] {
        if lower.contains(word) {
            return Err(format!(
                "patrol refuses INTO {}: it writes a file on the database server",
                word.to_ascii_uppercase()
            ));
        }
    }
    Ok(())
}

#[derive(Debug)]
enum GuardError {
    /// Something follows the first statement's `;`.
    Multiple,
    /// The text cannot be split into tokens (unterminated string or comment).
    Lex(String),
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Multiple => {
                f.write_str("patrol refuses more than one statement in a check query")
            }
            GuardError::Lex(e) => f.write_str(e),
        }
    }
}

impl From<GuardError> for String {
    fn from(e: GuardError) -> String {
        e.to_string()
    }
}

/// `sql` up to its terminating `;` (if any); an error when anything but comments follows it.
fn single_statement<'a>(sql: &'a str, mut lexer: Lexer<'a>) -> Result<&'a str, GuardError> {
    while let Some(token) = lexer.next_token().map_err(GuardError::Lex)? {
        if token.text == ";" {
            if lexer.next_token().map_err(GuardError::Lex)?.is_some() {
                return Err(GuardError::Multiple);
            }
            return Ok(sql[..token.start].trim());
        }
    }
    Ok(sql.trim())
}

/// The first word of the statement, upper-cased, after any opening parentheses.
fn first_keyword(mut lexer: Lexer<'_>) -> Result<String, String> {
    let dialect = lexer.dialect;
    loop {
        match lexer.next_token()? {
            None => return Err("the query is empty".into()),
            Some(t) if t.text == "(" => continue,
            Some(t) if t.is_word => return Ok(t.text.to_ascii_uppercase()),
            Some(t) => {
                return Err(format!(
                    "the query starts with {:?}, not a {} keyword such as SELECT",
                    t.text,
                    dialect.name()
                ));
            }
        }
    }
}

/// One significant piece of SQL: a word, a literal, a quoted identifier or a punctuation character.
#[derive(Debug, PartialEq)]
struct Token<'a> {
    text: &'a str,
    start: usize,
    is_word: bool,
}

/// Splits SQL into tokens, skipping whitespace and comments. Errors on unterminated strings or
/// comments (the server would reject them too, and guessing their end is how guards get fooled).
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
    /// Whether a backslash escapes the next character inside quotes (MySQL's default mode).
    backslash_escapes: bool,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, dialect: Dialect, backslash_escapes: bool) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            dialect,
            backslash_escapes,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, String> {
        self.skip_blanks()?;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(None);
        };
        let start = self.pos;
        let len = match c {
            '\'' => self.quoted_len('\'')?,
            '"' => self.quoted_len('"')?,
            '`' if self.dialect != Dialect::Postgres => self.quoted_len('`')?,
            '[' if self.dialect == Dialect::Sqlite => match rest.find(']') {
                Some(i) => i + 1,
                None => return Err("unterminated [identifier] in the query".into()),
            },
            '$' if self.dialect == Dialect::Postgres => self.dollar_quoted_len()?.unwrap_or(1),
            c if c.is_alphabetic() || c == '_' => rest
                .find(|ch: char| !self.is_word_char(ch))
                .unwrap_or(rest.len()),
            c if c.is_ascii_digit() => rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '.' || ch == '_'))
                .unwrap_or(rest.len()),
            c => c.len_utf8(),
        };
        self.pos += len;
        Ok(Some(Token {
            text: &self.src[start..start + len],
            start,
            is_word: c.is_alphabetic() || c == '_',
        }))
    }

    fn is_word_char(&self, c: char) -> bool {
        c.is_alphanumeric() || c == '_' || (c == '$' && self.dialect != Dialect::Sqlite)
    }

    fn skip_blanks(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if let Some(len) = self.comment_len(trimmed)? {
                self.pos += len;
            } else {
                return Ok(());
            }
        }
    }

    /// Length of the comment at the start of `s`, if one starts there.
    fn comment_len(&self, s: &str) -> Result<Option<usize>, String> {
        let to_line_end = |s: &str| s.find('\n').map(|i| i + 1).unwrap_or(s.len());
        if let Some(after) = s.strip_prefix("--") {
            // MySQL needs whitespace (or a control character) after `--`; elsewhere it is always a comment.
            let is_comment = self.dialect != Dialect::MySql
                || after
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_whitespace() || c.is_control());
            return Ok(is_comment.then(|| to_line_end(s)));
        }
        if s.starts_with('#') && self.dialect == Dialect::MySql {
            return Ok(Some(to_line_end(s)));
        }
        if s.starts_with("/*") {
            return self.block_comment_len(s).map(Some);
        }
        Ok(None)
    }

    /// PostgreSQL nests block comments; the others end at the first `*/`.
    fn block_comment_len(&self, s: &str) -> Result<usize, String> {
        let bytes = s.as_bytes();
        let mut depth = 0usize;
        let mut i = 0;
        while i + 1 < bytes.len() {
            match (bytes[i], bytes[i + 1]) {
                (b'/', b'*') if depth == 0 || self.dialect == Dialect::Postgres => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => i += 1,
            }
        }
        Err("unterminated /* comment */ in the query".into())
    }

    /// Length of the string or quoted identifier at the cursor, quotes included. A doubled quote
    /// stands for itself; in MySQL's default mode a backslash escapes the next character.
    fn quoted_len(&self, quote: char) -> Result<usize, String> {
        let rest = self.rest();
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\\' && self.backslash_escapes && quote != '`' {
                chars.next();
            } else if c == quote {
                if chars.peek().is_some_and(|&(_, n)| n == quote) {
                    chars.next();
                } else {
                    return Ok(i + c.len_utf8());
                }
            }
        }
        Err(format!(
            "unterminated {quote}quoted{quote} text in the query"
        ))
    }

    /// PostgreSQL `$tag$ … $tag$`; `None` when the `$` does not open one (`$1` parameters).
    fn dollar_quoted_len(&self) -> Result<Option<usize>, String> {
        let rest = self.rest();
        let tag_end = match rest[1..].find(|c: char| !(c.is_alphanumeric() || c == '_')) {
            Some(i) => i + 1,
            None => return Ok(None),
        };
        let tag_body = &rest[1..tag_end];
        if !rest[tag_end..].starts_with('$') || tag_body.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok(None);
        }
        let tag = &rest[..tag_end + 1];
        match rest[tag.len()..].find(tag) {
            Some(i) => Ok(Some(tag.len() + i + tag.len())),
            None => Err(format!("unterminated {tag}-quoted text in the query")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect::{MySql, Postgres, Sqlite};
    use super::*;

    /// Asserts that the guard refuses `sql` with a message containing `fragment`.
    fn assert_refused(dialect: Dialect, sql: &str, fragment: &str) {
        let err = read_only_statement(dialect, sql).expect_err(sql);
        assert!(err.contains(fragment), "{sql}: {err}");
    }

    #[test]
    fn reading_statements_pass_and_lose_their_semicolon() {
        assert_eq!(read_only_statement(Postgres, "SELECT 1;  "), Ok("SELECT 1"));
        assert_eq!(
            read_only_statement(MySql, "  show status like 'Threads%'"),
            Ok("show status like 'Threads%'")
        );
        assert_eq!(
            read_only_statement(Sqlite, "(SELECT 1) UNION (SELECT 2); -- done"),
            Ok("(SELECT 1) UNION (SELECT 2)")
        );
        assert_eq!(
            read_only_statement(Postgres, "/* lag */ WITH x AS (SELECT 1) SELECT * FROM x"),
            Ok("/* lag */ WITH x AS (SELECT 1) SELECT * FROM x")
        );
        assert_eq!(
            read_only_statement(MySql, r"SELECT 1 FROM t WHERE n = 'O\'Brien'"),
            Ok(r"SELECT 1 FROM t WHERE n = 'O\'Brien'")
        );
        assert_eq!(
            read_only_statement(MySql, "# note\nDESC t"),
            Ok("# note\nDESC t")
        );
    }

    #[test]
    fn dml_goes_to_the_database_which_refuses_it_itself() {
        for dialect in [Postgres, MySql, Sqlite] {
            assert!(read_only_statement(dialect, "DELETE FROM t").is_ok());
            assert!(read_only_statement(dialect, "insert into t values (1)").is_ok());
        }
    }

    #[test]
    fn mysql_ddl_and_transaction_control_are_refused() {
        for sql in [
            "DROP TABLE t",
            "alter table t add c int",
            "CREATE TABLE z (x int)",
            "TRUNCATE t",
            "RENAME TABLE t TO u",
            "COMMIT",
            "LOCK TABLES t WRITE",
            "CALL p()",
            "SET GLOBAL read_only = 0",
            "LOAD DATA INFILE 'x' INTO TABLE t",
        ] {
            assert_refused(MySql, sql, "commit implicitly");
        }
        let err = read_only_statement(MySql, "drop table t").unwrap_err();
        assert!(err.starts_with("patrol refuses DROP statements"), "{err}");
    }

    #[test]
    fn mysql_tricks_are_refused() {
        let executable = "SELECT 1 /*!50000 , (DROP TABLE t) */";
        assert_refused(MySql, executable, "executable comments");
        assert!(read_only_statement(MySql, "/*M! DROP TABLE t */ SELECT 1").is_err());
        let outfile = "SELECT * FROM t INTO OUTFILE '/tmp/x'";
        assert_refused(MySql, outfile, "OUTFILE");
        assert_refused(MySql, "SELECT 1; DROP TABLE t", "more than one statement");
        // A backslash read either way: with NO_BACKSLASH_ESCAPES the string ends early.
        assert!(read_only_statement(MySql, r"SELECT 'a\'; DROP TABLE t; -- '").is_err());
        // `--` without a space is not a comment in MySQL: the DROP is code.
        assert!(read_only_statement(MySql, "--x\nDROP TABLE t").is_err());
    }

    #[test]
    fn statements_hidden_after_a_semicolon_are_refused() {
        for dialect in [Postgres, MySql, Sqlite] {
            let hidden = "SELECT 1; PRAGMA journal_mode=WAL";
            assert_refused(dialect, hidden, "more than one statement");
        }
    }

    #[test]
    fn semicolons_inside_literals_and_comments_are_text() {
        assert!(read_only_statement(Postgres, "SELECT 'a;b', \"c;\" FROM t -- ; x").is_ok());
        assert!(read_only_statement(Postgres, "SELECT $$a;b$$, $tag$ ; $x$ $tag$").is_ok());
        assert!(read_only_statement(Postgres, "SELECT $1").is_ok());
        assert!(
            read_only_statement(Postgres, "SELECT 1 /* a /* nested */ ; still comment */").is_ok()
        );
        assert!(read_only_statement(Sqlite, "SELECT [a;b], `c;d`, 'it''s;' FROM t").is_ok());
        assert!(read_only_statement(MySql, r"SELECT 'it\'s', 'x'").is_ok());
        assert!(read_only_statement(MySql, "SELECT 'x;y', `a;b` -- ; c").is_ok());
    }

    #[test]
    fn unterminated_text_is_refused() {
        assert_refused(Postgres, "SELECT 'abc", "unterminated");
        assert_refused(Sqlite, "SELECT 1 /* open", "unterminated");
        assert_refused(Postgres, "SELECT $q$ open", "unterminated");
    }

    #[test]
    fn file_writers_and_header_changes_are_refused() {
        assert!(read_only_statement(Postgres, "COPY t TO '/tmp/x'").is_err());
        assert!(read_only_statement(Sqlite, "VACUUM INTO '/tmp/x.db'").is_err());
        assert!(read_only_statement(Sqlite, "ATTACH 'x.db' AS x").is_err());
        assert_refused(Sqlite, "PRAGMA journal_mode=WAL", "pragma_");
        assert!(read_only_statement(Postgres, "DROP TABLE t").is_err());
    }

    #[test]
    fn a_query_must_start_with_a_keyword() {
        assert_eq!(
            read_only_statement(Postgres, "  -- nothing\n"),
            Err("the query is empty".into())
        );
        assert_refused(Postgres, "42", "starts with");
    }
}
