//! The `command:` of a Redis check: split like redis-cli splits a line, and held to a list of
//! read-only commands (an allowlist: a command patrol does not know is refused, because a check
//! that runs every few seconds must never change the data it watches).

/// A parsed command: its name (upper-cased) and its arguments as bytes (`\xHH` escapes may make
/// them binary).
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Vec<u8>>,
}

impl Command {
    /// Parses and checks `line`; the error says what is wrong in words for `patrol validate`.
    pub fn read_only(line: &str) -> Result<Command, String> {
        let mut words = split_args(line)?.into_iter();
        let name = match words.next() {
            Some(w) => String::from_utf8_lossy(&w).to_ascii_uppercase(),
            None => return Err("command is empty".into()),
        };
        let cmd = Command {
            name,
            args: words.collect(),
        };
        cmd.check_read_only()?;
        Ok(cmd)
    }

    /// The subcommand (first argument, upper-cased) of a container command such as `CONFIG GET`.
    pub fn subcommand(&self) -> Option<String> {
        self.args
            .first()
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
    }

    /// Whether the command is on the read-only list (why not, in words, otherwise).
    pub fn check_read_only(&self) -> Result<(), String> {
        let Some((_, subcommands)) = READ_ONLY.iter().find(|(n, _)| *n == self.name) else {
            let known: Vec<&str> = READ_ONLY.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "command {} is refused: a check runs read-only commands only, and {} writes or is not on patrol's read-only list ({})",
                self.name,
                self.name,
                known.join(", ")
            ));
        };
        if subcommands.is_empty() {
            return Ok(());
        }
        match self.subcommand() {
            Some(sub) if subcommands.contains(&sub.as_str()) => Ok(()),
            Some(sub) => Err(format!(
                "command {} {sub} is refused: a check runs read-only commands only, and {} {sub} writes or is not on patrol's read-only list (read-only {} subcommands: {})",
                self.name,
                self.name,
                self.name,
                subcommands.join(", ")
            )),
            None => Err(format!(
                "{} needs a subcommand ({})",
                self.name,
                subcommands.join(", ")
            )),
        }
    }
}

/// Commands that never write, each with the subcommands allowed when it is a container command.
const READ_ONLY: &[(&str, &[&str])] = &[
    ("PING", &[]),
    ("ECHO", &[]),
    ("INFO", &[]),
    ("DBSIZE", &[]),
    ("TIME", &[]),
    ("LASTSAVE", &[]),
    ("ROLE", &[]),
    ("GET", &[]),
    ("MGET", &[]),
    ("STRLEN", &[]),
    ("GETRANGE", &[]),
    ("GETBIT", &[]),
    ("BITCOUNT", &[]),
    ("EXISTS", &[]),
    ("TYPE", &[]),
    ("TTL", &[]),
    ("PTTL", &[]),
    ("EXPIRETIME", &[]),
    ("PEXPIRETIME", &[]),
    ("LLEN", &[]),
    ("LINDEX", &[]),
    ("LRANGE", &[]),
    ("LPOS", &[]),
    ("SCARD", &[]),
    ("SISMEMBER", &[]),
    ("SMISMEMBER", &[]),
    ("ZCARD", &[]),
    ("ZSCORE", &[]),
    ("ZMSCORE", &[]),
    ("ZCOUNT", &[]),
    ("ZLEXCOUNT", &[]),
    ("ZRANK", &[]),
    ("ZREVRANK", &[]),
    ("HLEN", &[]),
    ("HGET", &[]),
    ("HMGET", &[]),
    ("HEXISTS", &[]),
    ("HSTRLEN", &[]),
    ("XLEN", &[]),
    ("XPENDING", &[]),
    ("XINFO", &["STREAM", "GROUPS", "CONSUMERS"]),
    (
        "CLUSTER",
        &[
            "INFO",
            "NODES",
            "SLOTS",
            "SHARDS",
            "MYID",
            "MYSHARDID",
            "REPLICAS",
            "LINKS",
            "KEYSLOT",
            "COUNTKEYSINSLOT",
            "COUNT-FAILURE-REPORTS",
        ],
    ),
    ("CONFIG", &["GET"]),
    ("MEMORY", &["USAGE", "STATS", "DOCTOR", "MALLOC-STATS"]),
    ("SLOWLOG", &["LEN", "GET"]),
    ("CLIENT", &["LIST", "INFO", "GETNAME", "ID"]),
    ("OBJECT", &["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"]),
    (
        "PUBSUB",
        &[
            "CHANNELS",
            "NUMSUB",
            "NUMPAT",
            "SHARDCHANNELS",
            "SHARDNUMSUB",
        ],
    ),
    ("LATENCY", &["LATEST", "HISTORY", "DOCTOR"]),
];

/// Splits a line into arguments the way redis-cli does: blanks separate, `"…"` takes escapes
/// (`\n \r \t \b \a \\ \" \xHH`), `'…'` takes only `\'`, and a closing quote must end the argument.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut arg = Vec::new();
        match first {
            '"' => {
                chars.next();
                double_quoted(&mut chars, &mut arg)?;
            }
            '\'' => {
                chars.next();
                single_quoted(&mut chars, &mut arg)?;
            }
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    push_char(&mut arg, c);
                }
            }
        }
        if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err("command: a closing quote must be followed by a space".into());
        }
        args.push(arg);
    }
}

fn double_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    arg: &mut Vec<u8>,
) -> Result<(), String> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match chars.next() {
                Some('x') => {
                    let hex: String = [chars.next(), chars.next()].into_iter().flatten().collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(b) if hex.len() == 2 => arg.push(b),
                        _ => {
                            arg.extend_from_slice(b"x");
                            arg.extend_from_slice(hex.as_bytes());
                        }
                    }
                }
                Some('n') => arg.push(b'\n'),
                Some('r') => arg.push(b'\r'),
                Some('t') => arg.push(b'\t'),
                Some('b') => arg.push(0x08),
                Some('a') => arg.push(0x07),
                Some(other) => push_char(arg, other),
                None => break,
            },
            other => push_char(arg, other),
        }
    }
    Err("command: unbalanced double quotes".into())
}

fn single_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    arg: &mut Vec<u8>,
) -> Result<(), String> {
    while let Some(c) = chars.next() {
        match c {
            '\'' => return Ok(()),
            '\\' if chars.peek() == Some(&'\'') => {
                chars.next();
                arg.push(b'\'');
            }
            other => push_char(arg, other),
        }
    }
    Err("command: unbalanced single quotes".into())
}

fn push_char(arg: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    arg.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_args(line)
            .unwrap()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_redis_cli() {
        assert_eq!(split("  LLEN   queue:orders "), ["LLEN", "queue:orders"]);
        assert_eq!(split(r#"GET "a key\twith\x41""#), ["GET", "a key\twithA"]);
        assert_eq!(split(r"GET 'it\'s' '\n'"), ["GET", "it's", "\\n"]);
        assert_eq!(split(r#"ECHO """#), ["ECHO", ""]);
        assert!(split_args("") == Ok(Vec::new()));
    }

    #[test]
    fn malformed_quotes_are_errors() {
        assert_eq!(
            split_args(r#"GET "open"#),
            Err("command: unbalanced double quotes".into())
        );
        assert_eq!(
            split_args("GET 'open"),
            Err("command: unbalanced single quotes".into())
        );
        assert!(
            split_args(r#"GET "a"b"#)
                .unwrap_err()
                .contains("closing quote")
        );
    }

    #[test]
    fn read_only_commands_pass() {
        for line in [
            "PING",
            "info replication",
            "DBSIZE",
            "LLEN q",
            "cluster info",
            "CONFIG GET maxmemory",
            "memory usage k",
            "SLOWLOG LEN",
            "XINFO STREAM s",
            "pubsub numsub ch",
        ] {
            assert!(Command::read_only(line).is_ok(), "{line}");
        }
        let c = Command::read_only("info Replication").unwrap();
        assert_eq!(c.name, "INFO");
        assert_eq!(c.args, vec![b"Replication".to_vec()]);
        assert_eq!(
            Command::read_only("cluster info")
                .unwrap()
                .subcommand()
                .as_deref(),
            Some("INFO")
        );
    }

    #[test]
    fn writes_and_unknown_commands_are_refused() {
        let err = Command::read_only("SET k v").unwrap_err();
        assert!(err.starts_with("command SET is refused"), "{err}");
        assert!(err.contains("writes"), "{err}");
        for line in [
            "DEL k",
            "FLUSHALL",
            "EVAL 'return 1' 0",
            "KEYS *",
            "SHUTDOWN",
            "BLPOP q 0",
        ] {
            assert!(Command::read_only(line).is_err(), "{line}");
        }
        let err = Command::read_only("config set maxmemory 1").unwrap_err();
        assert!(err.starts_with("command CONFIG SET is refused"), "{err}");
        assert!(err.contains("read-only CONFIG subcommands: GET"), "{err}");
        assert!(Command::read_only("CLIENT KILL ID 1").is_err());
        assert_eq!(
            Command::read_only("SLOWLOG"),
            Err("SLOWLOG needs a subcommand (LEN, GET)".into())
        );
        assert_eq!(Command::read_only("   "), Err("command is empty".into()));
    }
}
