//! Small file systems mounted for a test: tmpfs, and ext4, xfs and btrfs in loop-mounted
//! sparse images. Mounting needs root; [`need_root`] prints why a test skips without it, and
//! [`Mount::new`] says why it cannot make a file system (a missing `mkfs.*`) so the caller can
//! skip that case with the reason printed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file system vault's tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tmpfs,
    Ext4,
    Xfs,
    Btrfs,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Tmpfs, Kind::Ext4, Kind::Xfs, Kind::Btrfs];

    /// The I/O paths vault writes through on this file system: the mapping only on tmpfs (no
    /// device for direct I/O), direct only on btrfs (copy-on-write refuses the mapping).
    pub(crate) fn io_paths(self) -> &'static [&'static str] {
        match self {
            Kind::Tmpfs => &["mmap"],
            Kind::Btrfs => &["direct"],
            Kind::Ext4 | Kind::Xfs => &["mmap", "direct"],
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Tmpfs => "tmpfs",
            Kind::Ext4 => "ext4",
            Kind::Xfs => "xfs",
            Kind::Btrfs => "btrfs",
        }
    }

    /// The smallest image the mkfs of this kind accepts, rounded up (xfs wants 300 MiB; the
    /// images are sparse, so only what is written takes disk space).
    pub(crate) fn min_mib(self) -> u64 {
        match self {
            Kind::Tmpfs | Kind::Ext4 => 16,
            Kind::Xfs => 300,
            Kind::Btrfs => 128,
        }
    }

    fn mkfs(self, image: &Path) -> Command {
        let mut c = Command::new(format!("mkfs.{}", self.name()));
        match self {
            Kind::Ext4 => c.args(["-q", "-F", "-m", "0"]),
            Kind::Xfs | Kind::Btrfs => c.args(["-q", "-f"]),
            Kind::Tmpfs => unreachable!("tmpfs has no mkfs"),
        };
        c.arg(image);
        c
    }
}

/// Whether this process runs as root (`None` if `id -u` fails).
pub(crate) fn is_root() -> Option<bool> {
    let out = Command::new("id").arg("-u").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Skips (with the reason printed) unless running as root.
pub(crate) fn need_root(test: &str) -> bool {
    match is_root() {
        Some(true) => true,
        Some(false) => {
            println!("SKIPPED {test}: needs root to mount a small file system (run as root)");
            false
        }
        None => {
            println!("SKIPPED {test}: cannot tell whether this runs as root (`id -u` failed)");
            false
        }
    }
}

/// A file system mounted on a temporary directory, unmounted (and its image removed) when
/// dropped.
pub(crate) struct Mount {
    pub kind: Kind,
    point: tempfile::TempDir,
    image: Option<PathBuf>,
    mounted: bool,
}

impl Mount {
    /// Makes and mounts a file system of `kind` and `size_mib` MiB (at least
    /// [`Kind::min_mib`]). `Err` says why not (a missing mkfs, typically): skip the case then.
    pub(crate) fn new(kind: Kind, size_mib: u64) -> Result<Mount, String> {
        let size_mib = size_mib.max(kind.min_mib());
        let point = tempfile::tempdir().map_err(|e| e.to_string())?;
        if kind == Kind::Tmpfs {
            run(Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size_mib}m,mode=0755"),
                    "tmpfs",
                ])
                .arg(point.path()))?;
            return Ok(Mount {
                kind,
                point,
                image: None,
                mounted: true,
            });
        }
        let image = std::env::temp_dir().join(format!(
            "vault-{}-{}-{}.img",
            kind.name(),
            std::process::id(),
            point.path().file_name().unwrap().to_string_lossy()
        ));
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib << 20))
            .map_err(|e| format!("create {}: {e}", image.display()))?;
        let mut m = Mount {
            kind,
            point,
            image: Some(image.clone()),
            mounted: false,
        };
        match kind.mkfs(&image).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(format!(
                    "mkfs.{} failed: {}",
                    kind.name(),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
            Err(e) => return Err(format!("mkfs.{} is not available: {e}", kind.name())),
        }
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(m.point.path()))?;
        m.mounted = true;
        Ok(m)
    }

    /// As [`Mount::new`], printing `SKIPPED <test> on <fs>: <why>` and giving `None` when the
    /// file system cannot be made.
    pub(crate) fn or_skip(kind: Kind, size_mib: u64, test: &str) -> Option<Mount> {
        match Mount::new(kind, size_mib) {
            Ok(m) => Some(m),
            Err(why) => {
                println!("SKIPPED {test} on {}: {why}", kind.name());
                None
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.point.path()
    }

    /// The loop image behind the file system (`None` for tmpfs).
    pub(crate) fn image(&self) -> Option<&Path> {
        self.image.as_deref()
    }

    /// Unmounts now (the image stays until drop).
    pub(crate) fn unmount(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.point.path()).status();
            self.mounted = false;
        }
    }

    /// Bytes available to an unprivileged writer, as `df` reports them.
    pub(crate) fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df reports the available bytes")
    }

    /// Takes all but about `leave_mib` MiB of the free space with an allocated file that stays,
    /// so that a writer fills the rest quickly whatever the image's size.
    pub(crate) fn ballast(&self, leave_mib: u64) {
        let free = self.available();
        let keep = leave_mib << 20;
        if free <= keep {
            return;
        }
        let path = self.path().join("ballast");
        let f = std::fs::File::create(&path).unwrap();
        let len = free - keep;
        // `fallocate` takes the space without writing it; where it is refused, zeros do.
        let ok = Command::new("fallocate")
            .args(["-l", &len.to_string()])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            f.set_len(0).unwrap();
            use std::io::Write;
            let mut w = std::io::BufWriter::new(&f);
            let chunk = vec![0u8; 1 << 20];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if w.write_all(&chunk[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
        }
        drop(f);
        let _ = Command::new("sync").arg("-f").arg(self.path()).status();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
        if let Some(img) = &self.image {
            let _ = std::fs::remove_file(img);
        }
    }
}

/// Runs a command; `Err` with its stderr if it fails.
pub(crate) fn run(c: &mut Command) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{c:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
