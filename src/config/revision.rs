//! The revision of a rule set: a hash of the loaded files, plus the git commit when they live in a
//! git work tree, or the Consul index of the KV snapshot they were read from. Stored on every
//! result, so a verdict can always be traced to the rules behind it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// First 12 hex digits of SHA-256 over (path, content) of every file, in order.
    pub files: String,
    /// `git rev-parse --short=12 HEAD` of the rules' work tree, with `-dirty` when files differ.
    pub git: Option<String>,
    /// Rules read from Consul KV: the highest `ModifyIndex` among the rule keys of the snapshot
    /// (absent for files, whose serialization stays as it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consul_index: Option<u64>,
}

impl Revision {
    /// The revision of rule files read from disk below `roots`.
    pub fn of(roots: &[PathBuf], files: &[(PathBuf, Vec<u8>)]) -> Revision {
        Revision {
            files: files_hash(roots, files),
            git: roots.first().and_then(|r| git_commit(r)),
            consul_index: None,
        }
    }

    /// The revision of rule files read from a Consul KV snapshot: `root` is the source's display
    /// name (`consul://host:8500/prefix`) the files are named below, `index` the snapshot's.
    pub fn of_consul(root: &Path, files: &[(PathBuf, Vec<u8>)], index: u64) -> Revision {
        Revision {
            files: files_hash(&[root.to_path_buf()], files),
            git: None,
            consul_index: Some(index),
        }
    }
}

/// First 12 hex digits of SHA-256 over (path relative to its root, content) of every file.
/// Relative names make the same rules hash alike in any checkout and under any Consul prefix.
fn files_hash(roots: &[PathBuf], files: &[(PathBuf, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        let rel = relative_to_roots(roots, path);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())[..12].to_string()
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.files)?;
        if let Some(g) = &self.git {
            write!(f, "@git:{g}")?;
        }
        if let Some(index) = self.consul_index {
            write!(f, "@consul:{index}")?;
        }
        Ok(())
    }
}

/// The same files give the same hash wherever the checkout lives.
fn relative_to_roots(roots: &[PathBuf], path: &Path) -> PathBuf {
    roots
        .iter()
        .find_map(|r| path.strip_prefix(r).ok())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.file_name().map(PathBuf::from).unwrap_or_default())
}

fn git_commit(root: &Path) -> Option<String> {
    let dir = if root.is_dir() { root } else { root.parent()? };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--", "."])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_content_not_location() {
        let a = Revision::of(
            &[PathBuf::from("/x/rules")],
            &[(PathBuf::from("/x/rules/a.yaml"), b"checks: []".to_vec())],
        );
        let b = Revision::of(
            &[PathBuf::from("/y/rules")],
            &[(PathBuf::from("/y/rules/a.yaml"), b"checks: []".to_vec())],
        );
        let c = Revision::of(
            &[PathBuf::from("/y/rules")],
            &[(PathBuf::from("/y/rules/a.yaml"), b"checks: [ ]".to_vec())],
        );
        assert_eq!(a.files, b.files);
        assert_ne!(a.files, c.files);
        assert_eq!(a.files.len(), 12);
    }

    #[test]
    fn display_keeps_the_file_form_and_adds_the_consul_index() {
        let files = Revision {
            files: "0123456789ab".into(),
            git: Some("deadbeef0000".into()),
            consul_index: None,
        };
        assert_eq!(files.to_string(), "0123456789ab@git:deadbeef0000");
        let json = serde_json::to_value(&files).unwrap();
        assert!(json.get("consul_index").is_none(), "{json}");
        let consul = Revision::of_consul(
            Path::new("consul://127.0.0.1:8500/patrol/rules"),
            &[(
                PathBuf::from("consul://127.0.0.1:8500/patrol/rules/a.yaml"),
                b"checks: []".to_vec(),
            )],
            1234,
        );
        assert_eq!(consul.to_string(), format!("{}@consul:1234", consul.files));
        assert_eq!(serde_json::to_value(&consul).unwrap()["consul_index"], 1234);
    }

    #[test]
    fn the_same_rules_hash_alike_in_a_directory_and_under_a_consul_prefix() {
        let text = b"checks: []".to_vec();
        let dir = Revision::of(
            &[PathBuf::from("/x/rules")],
            &[(PathBuf::from("/x/rules/team/a.yaml"), text.clone())],
        );
        let consul = Revision::of_consul(
            Path::new("consul://consul.internal:8500/patrol/rules"),
            &[(
                PathBuf::from("consul://consul.internal:8500/patrol/rules/team/a.yaml"),
                text,
            )],
            7,
        );
        assert_eq!(dir.files, consul.files);
    }
}
