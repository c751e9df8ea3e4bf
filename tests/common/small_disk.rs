//! A small disk: a tmpfs of a given size, to fill a store's file system for real.

use std::{path::Path, process::Command};

use super::TempDir;

/// A tmpfs of `size` mounted on a fresh directory, unmounted (lazily: a store or a server
/// may still hold its file open) when dropped. `None` when not running as root (mounting
/// needs it), except under CI (`.ci/run` sets `CI`, and runs as root), where that fails the
/// test.
pub struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    pub fn mount(name: &str, size: &str) -> Option<Self> {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = TempDir::new(name);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mount a tmpfs as root");
        Some(Self { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
