//! Reading a store URL: which backend, and where. Pure, so every accepted and rejected spelling is
//! unit-tested. Messages built here never contain the URL itself: a PostgreSQL URL may carry a
//! password, so errors name the scheme or the host instead.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The URL forms `Store::open` accepts, for error messages.
pub const ACCEPTED_SCHEMES: &str = "sqlite://PATH, sqlite::memory:, postgres://… or postgresql://…";

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file, relative paths taken from the current directory.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database, gone when the store is dropped.
    SqliteMemory,
    /// A PostgreSQL database; the URL is handed to the driver as given.
    Postgres(String),
}

impl Location {
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite:") {
            return sqlite_location(rest);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        Err(StoreError(format!(
            "unsupported store URL scheme {}; accepted: {ACCEPTED_SCHEMES}",
            scheme_of(url)
        )))
    }
}

/// `rest` is what follows `sqlite:`: `:memory:`, `//PATH` or `PATH`.
fn sqlite_location(rest: &str) -> Result<Location, StoreError> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" || path == "memory:" {
        return Ok(Location::SqliteMemory);
    }
    if path.is_empty() {
        return Err(StoreError(
            "SQLite store URL has no file path; write sqlite://patrol.db or sqlite::memory:".into(),
        ));
    }
    if path.contains('?') {
        // Options such as `?mode=ro` would silently become part of the file name otherwise;
        // patrol chooses the connection options itself (create, WAL, busy timeout).
        return Err(StoreError(format!(
            "SQLite store URL takes no options (found '?' in '{path}'); \
             patrol always creates the file and uses WAL with a busy timeout"
        )));
    }
    Ok(Location::SqliteFile(PathBuf::from(path)))
}

/// The scheme of `url` (text before `:`), quoted, or a note that there is none. Never more of the
/// URL than that, since the rest may hold credentials.
fn scheme_of(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() && scheme.len() <= 32 => format!("'{scheme}:'"),
        _ => "(none)".into(),
    }
}

/// The directory an SQLite file would be created in, when it does not exist. SQLite itself only
/// says "unable to open database file", which does not tell the user what to fix.
pub fn missing_parent_dir(path: &Path) -> Option<&Path> {
    let parent = path.parent()?;
    if parent.as_os_str().is_empty() || parent.is_dir() {
        None
    } else {
        Some(parent)
    }
}

/// `host:port/database` of a PostgreSQL connection, for messages that must not show credentials.
pub fn describe_postgres(host: &str, port: u16, database: Option<&str>) -> String {
    match database {
        Some(db) => format!("{host}:{port}/{db}"),
        None => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_relative_absolute_and_without_slashes() {
        assert_eq!(
            Location::parse("sqlite://patrol.db").unwrap(),
            Location::SqliteFile("patrol.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/patrol/p.db").unwrap(),
            Location::SqliteFile("/var/lib/patrol/p.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:data/p.db").unwrap(),
            Location::SqliteFile("data/p.db".into())
        );
    }

    #[test]
    fn sqlite_memory_spellings() {
        for url in ["sqlite::memory:", "sqlite://:memory:", "sqlite:memory:"] {
            assert_eq!(
                Location::parse(url).unwrap(),
                Location::SqliteMemory,
                "{url}"
            );
        }
    }

    #[test]
    fn sqlite_without_path_or_with_options_is_rejected() {
        assert!(
            Location::parse("sqlite://")
                .unwrap_err()
                .0
                .contains("no file path")
        );
        let e = Location::parse("sqlite://p.db?mode=ro").unwrap_err().0;
        assert!(e.contains("takes no options"), "{e}");
    }

    #[test]
    fn both_postgres_schemes_are_accepted() {
        for url in ["postgres://u@h/db", "postgresql://u:p@h:5433/db"] {
            assert_eq!(
                Location::parse(url).unwrap(),
                Location::Postgres(url.into())
            );
        }
    }

    #[test]
    fn other_schemes_name_the_accepted_ones_but_not_the_url() {
        let e = Location::parse("mysql://root:hunter2@db/x").unwrap_err().0;
        assert!(e.contains("'mysql:'"), "{e}");
        assert!(e.contains("sqlite://") && e.contains("postgres://"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = Location::parse("patrol.db").unwrap_err().0;
        assert!(e.contains("(none)"), "{e}");
    }

    #[test]
    fn missing_parent_is_reported_but_cwd_is_fine() {
        assert_eq!(missing_parent_dir(Path::new("patrol.db")), None);
        let tmp = std::env::temp_dir();
        assert_eq!(missing_parent_dir(&tmp.join("p.db")), None);
        let missing = tmp.join("patrol-no-such-dir-7f3a").join("p.db");
        assert_eq!(
            missing_parent_dir(&missing),
            Some(tmp.join("patrol-no-such-dir-7f3a").as_path())
        );
    }

    #[test]
    fn postgres_description_has_no_credentials() {
        assert_eq!(
            describe_postgres("db", 5432, Some("patrol")),
            "db:5432/patrol"
        );
        assert_eq!(describe_postgres("db", 5433, None), "db:5433");
    }
}
