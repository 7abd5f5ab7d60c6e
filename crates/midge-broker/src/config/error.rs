//! What loading a configuration can go wrong with: [`ConfigError`] (the broker does not
//! start), [`ConfigWarning`] (it starts, and says what it ignored) and [`InvalidValue`]
//! (a [`Config`](super::Config) that [`validate`](super::Config::validate) refuses).
//!
//! Every error and warning read from a file names the file and the line, so that the
//! message alone is enough to fix it. The message text is not a stable API.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a configuration file: `path:line`, or `path:line:column` where the column
/// is known (TOML syntax errors). Lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file: the one given to `-c`, or one read through `include_dir`.
    pub path: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1, where known.
    pub column: Option<usize>,
}

impl Location {
    /// `path:line`.
    pub fn new(path: &Path, line: usize) -> Self {
        Location {
            path: path.to_path_buf(),
            line,
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        Ok(())
    }
}

/// A configuration the broker cannot start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file, or a file of an `include_dir`, cannot be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Midge TOML that does not parse, or a value of the wrong type; `message` starts
    /// with the key where it is known.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A mosquitto.conf key that neither Mosquitto 2.0 nor Midge knows.
    #[error("{at}: unknown configuration key `{key}`")]
    UnknownKey {
        /// Where.
        at: Location,
        /// The key.
        key: String,
    },
    /// A value that cannot be used: out of range, not a number, overlapping listeners…
    #[error("{at}: {key}: {problem}")]
    BadValue {
        /// Where the value was set.
        at: Location,
        /// The key as written in the file.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A value that [`validate`](super::Config::validate) refuses where no line can be
    /// named (a value that came from a default).
    #[error("{}: {invalid}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key and the problem.
        invalid: InvalidValue,
    },
}

impl ConfigError {
    /// Where in which file the problem is, if a line is known.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Syntax { at, .. }
            | ConfigError::UnknownKey { at, .. }
            | ConfigError::BadValue { at, .. } => Some(at),
            ConfigError::Read { .. } | ConfigError::Invalid { .. } => None,
        }
    }
}

/// Something in a mosquitto.conf that Midge reads but does not do (yet), or does
/// differently: the broker starts, and logs this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The line concerned.
    pub at: Location,
    /// What is ignored or changed, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A value of a [`Config`](super::Config) that the broker cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", self.key_path())]
pub struct InvalidValue {
    /// The key as Midge's TOML names it: `max_inflight_messages`, `listener.bind`,
    /// `log.file`.
    pub key: &'static str,
    /// For `listener.*` keys, which listener (from 0, in configuration order).
    pub listener: Option<usize>,
    /// What is wrong.
    pub problem: String,
}

impl InvalidValue {
    pub(crate) fn new(key: &'static str, problem: impl Into<String>) -> Self {
        InvalidValue {
            key,
            listener: None,
            problem: problem.into(),
        }
    }

    /// `listener[2].bind` for a listener's key, else the key.
    pub fn key_path(&self) -> String {
        match (self.listener, self.key.split_once('.')) {
            (Some(index), Some((table, key))) => format!("{table}[{index}].{key}"),
            _ => self.key.to_string(),
        }
    }
}
