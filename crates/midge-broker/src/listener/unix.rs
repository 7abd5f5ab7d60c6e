//! Unix domain socket listeners (mosquitto.conf: `listener 0 /path/to/socket`).
//!
//! Binding replaces a socket file left at the path by an earlier run (as Mosquitto
//! does), but never another kind of file; the socket file is removed when the listener
//! stops.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixStream;

/// A listening Unix socket that removes its file when dropped.
#[derive(Debug)]
pub(crate) struct UnixListener {
    listener: tokio::net::UnixListener,
    path: Arc<Path>,
}

impl UnixListener {
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
        })?;
        Ok(UnixListener {
            listener,
            path: Arc::from(PathBuf::from(path)),
        })
    }

    pub(crate) async fn accept(&self) -> io::Result<UnixStream> {
        Ok(self.listener.accept().await?.0)
    }

    pub(crate) fn path(&self) -> Arc<Path> {
        self.path.clone()
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
