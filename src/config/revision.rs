//! The revision of a rule set: a hash of the loaded files, plus the git commit when they live in a
//! git work tree. Stored on every result, so a verdict can always be traced to the rules behind it.

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
}

impl Revision {
    pub fn of(roots: &[PathBuf], files: &[(PathBuf, Vec<u8>)]) -> Revision {
        let mut h = Sha256::new();
        for (path, bytes) in files {
            let rel = relative_to_roots(roots, path);
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let files_hash = hex::encode(h.finalize())[..12].to_string();
        Revision {
            files: files_hash,
            git: roots.first().and_then(|r| git_commit(r)),
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.git {
            Some(g) => write!(f, "{}@git:{}", self.files, g),
            None => f.write_str(&self.files),
        }
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
}
