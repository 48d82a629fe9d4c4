//! Whether writes fail now for a storage reason (a full disk, an I/O error), as the writer
//! found out, and when they count as back: what `/readyz` reports.

use std::path::Path;
use std::sync::{Arc, Mutex};

/// Whether writes fail now for a storage reason, and why: what `/readyz` reports. Set by the
/// writer when a transaction fails that way, cleared by its next commit.
#[derive(Clone, Default)]
pub struct WriteHealth(Arc<Mutex<Option<String>>>);

impl WriteHealth {
    /// Why writes fail, if they do.
    pub fn failing(&self) -> Option<String> {
        self.0.lock().ok().and_then(|reason| reason.clone())
    }

    pub(crate) fn failed(&self, message: &str, dir: &Path) {
        let reason = describe_storage_failure(message, dir);
        let Ok(mut current) = self.0.lock() else { return };
        if current.is_none() {
            tracing::error!(reason = %reason, "writes fail; they resume by themselves once storage is back");
        }
        *current = Some(reason);
    }

    /// Same as [`WriteHealth::failed`] for a database on another machine, whose disk this
    /// process cannot see: the database's own message says what failed.
    pub(crate) fn failed_plainly(&self, message: &str) {
        let Ok(mut current) = self.0.lock() else { return };
        if current.is_none() {
            tracing::error!(reason = %message, "writes fail; they resume by themselves once the database is back");
        }
        *current = Some(message.to_string());
    }

    /// A commit to a database on another machine succeeded: writes are back.
    pub(crate) fn succeeded_plainly(&self) {
        let Ok(mut current) = self.0.lock() else { return };
        if current.take().is_some() {
            tracing::info!("writes succeed again");
        }
    }

    /// A commit succeeded. After a failure, writes count as back only once the disk also has
    /// [`RECOVERED_FREE_BYTES`] free: a small write can succeed on a disk that a batch fills,
    /// and readiness would flap with every request.
    pub(crate) fn succeeded(&self, dir: &Path) {
        let Ok(mut current) = self.0.lock() else { return };
        if current.is_some() && free_bytes(dir).is_none_or(|free| free >= RECOVERED_FREE_BYTES) {
            *current = None;
            tracing::info!("writes succeed again");
        }
    }
}

/// Free space under which a disk counts as full (see [`describe_storage_failure`]), and above
/// which writes that failed count as back.
const RECOVERED_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// Free bytes on the file system holding `dir`, if the platform says.
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(dir).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A storage failure in words an operator acts on: SQLite says "database or disk is full" for
/// both, and an I/O error is often a full disk too, so the free space decides.
fn describe_storage_failure(message: &str, dir: &Path) -> String {
    match free_bytes(dir) {
        Some(free) if free < RECOVERED_FREE_BYTES || message.contains("full") => {
            format!("the disk holding {} is full ({free} bytes free): {message}", dir.display())
        }
        _ => message.to_string(),
    }
}
