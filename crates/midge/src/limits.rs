//! The process's limit on open files, raised for the broker and the bench: each
//! connection is a file, and the soft limit (often 1,024) would otherwise cap them long
//! before the hard limit that the system allows (the machine: 20,000).

/// Where the hard limit is "unlimited", Linux still refuses a soft limit above
/// `fs.nr_open`, whose default is this.
#[cfg(unix)]
const NR_OPEN_DEFAULT: u64 = 1_048_576;

/// Raises the soft limit on open files to the hard limit. Returns the limits before and
/// after when it changed them, `None` when there was nothing to raise; an error leaves
/// the limit as it was (the caller logs it and goes on).
#[cfg(unix)]
pub(crate) fn raise_open_files() -> std::io::Result<Option<(u64, u64)>> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(current) = limit.current else {
        return Ok(None); // unlimited already
    };
    let target = limit.maximum.unwrap_or(NR_OPEN_DEFAULT);
    if current >= target {
        return Ok(None);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    )?;
    Ok(Some((current, target)))
}

/// Elsewhere: nothing to raise.
#[cfg(not(unix))]
pub(crate) fn raise_open_files() -> std::io::Result<Option<(u64, u64)>> {
    Ok(None)
}
