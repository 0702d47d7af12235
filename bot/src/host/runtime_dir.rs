//! The folder of private plugin copies: `deckhand-plugins-<pid>-XXXXXX` in the temp directory.
//!
//! It is removed when the host is dropped. A process that died without dropping it (killed,
//! crashed) leaves one behind; the next start removes folders whose pid is no longer alive.

use std::path::Path;

/// Name prefix shared by every runtime folder.
pub const PREFIX: &str = "deckhand-plugins-";

/// Removes stale folders in `temp`, then creates this process's folder there.
pub fn create(temp: &Path) -> std::io::Result<tempfile::TempDir> {
    remove_stale(temp);
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir_in(temp)
}

/// The pid in a runtime folder's name (`deckhand-plugins-<pid>-<anything non-empty>`), or
/// `None` when the name does not follow that pattern.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    if pid.is_empty() || suffix.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid may be alive. Answers `true` when it cannot tell, so that
/// a folder is only ever removed when its process is known to be gone.
fn may_be_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !cfg!(target_os = "linux") || !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Removes runtime folders in `temp` left by processes that are no longer alive. Anything
/// else (other names, files, symbolic links, folders of live pids) is left alone; failures
/// are logged and skipped.
pub fn remove_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        // file_type does not follow symbolic links, so a link is never followed or removed.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || may_be_alive(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(path = %path.display(), pid, "removed stale plugin copies"),
            Err(error) => {
                tracing::warn!(path = %path.display(), pid, %error, "cannot remove stale plugin copies")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_the_pattern() {
        assert_eq!(owner_pid("deckhand-plugins-123-abc"), Some(123));
        assert_eq!(
            owner_pid("deckhand-plugins-999999999-abc"),
            Some(999_999_999)
        );
        assert_eq!(owner_pid("deckhand-plugins-abc"), None);
        assert_eq!(owner_pid("deckhand-plugins-hvpQum"), None);
        assert_eq!(owner_pid("deckhand-plugins-123-"), None);
        assert_eq!(owner_pid("deckhand-plugins--abc"), None);
        assert_eq!(owner_pid("deckhand-plugins-+12-abc"), None);
        assert_eq!(owner_pid("deckhand-plugins-99999999999-abc"), None);
        assert_eq!(owner_pid("other-deckhand-plugins-1-abc"), None);
    }

    #[test]
    fn removes_dead_keeps_live_and_foreign() {
        let temp = tempfile::tempdir().unwrap();
        let dead = temp.path().join("deckhand-plugins-999999999-abc");
        let own = temp
            .path()
            .join(format!("deckhand-plugins-{}-abc", std::process::id()));
        let foreign = temp.path().join("deckhand-plugins-xyz");
        let file = temp.path().join("deckhand-plugins-999999998-file");
        for dir in [&dead, &own, &foreign] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("copy.so"), b"x").unwrap();
        }
        std::fs::write(&file, b"x").unwrap();
        let made = create(temp.path()).unwrap();
        let name = made
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(owner_pid(&name), Some(std::process::id()), "{name}");
        assert_eq!(!dead.exists(), cfg!(target_os = "linux"));
        assert!(own.exists() && foreign.exists() && file.exists());
        let path = made.path().to_owned();
        drop(made);
        assert!(!path.exists());
    }
}
