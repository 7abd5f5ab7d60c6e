//! How the values of one mosquitto.conf line are read: words, booleans, integers in a
//! range, durations; and the order of `include_dir` files.

use std::cmp::Ordering;
use std::ops::RangeInclusive;

use crate::config::{ConfigError, ConfigWarning, Location};

/// One significant line: `key rest…`.
pub(super) struct Line<'a> {
    pub(super) key: &'a str,
    pub(super) rest: &'a str,
    pub(super) at: Location,
}

impl<'a> Line<'a> {
    pub(super) fn bad(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            at: self.at.clone(),
            key: self.key.to_string(),
            problem: problem.into(),
        }
    }

    pub(super) fn warning(&self, message: impl Into<String>) -> ConfigWarning {
        ConfigWarning {
            at: self.at.clone(),
            message: message.into(),
        }
    }

    /// The one value of the line. Words after it are ignored, as Mosquitto ignores them,
    /// with a warning unless they are a `#` comment.
    pub(super) fn value(&self, warnings: &mut Vec<ConfigWarning>) -> Result<&'a str, ConfigError> {
        let mut words = self.rest.split_whitespace();
        let value = words.next().ok_or_else(|| self.bad("missing value"))?;
        self.no_more(words, warnings);
        Ok(value)
    }

    pub(super) fn no_more<'w>(
        &self,
        words: impl Iterator<Item = &'w str>,
        warnings: &mut Vec<ConfigWarning>,
    ) {
        let extra: Vec<&str> = words.take_while(|w| !w.starts_with('#')).collect();
        if !extra.is_empty() {
            warnings.push(self.warning(format!(
                "`{}`: extra text `{}` after the value is ignored",
                self.key,
                extra.join(" ")
            )));
        }
    }

    pub(super) fn bool(&self, warnings: &mut Vec<ConfigWarning>) -> Result<bool, ConfigError> {
        match self.value(warnings)? {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(self.bad(format!("expected true or false, not `{other}`"))),
        }
    }

    /// A path: the rest of the line, spaces included (as Mosquitto reads file names).
    pub(super) fn path(&self) -> Result<&'a str, ConfigError> {
        match self.rest {
            "" => Err(self.bad("missing path")),
            path => Ok(path),
        }
    }

    pub(super) fn int(
        &self,
        warnings: &mut Vec<ConfigWarning>,
        range: RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let value = self.value(warnings)?;
        let n: i64 = value
            .parse()
            .map_err(|_| self.bad(format!("`{value}` is not a whole number")))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(self.bad(format!(
                "{n} is out of range ({} to {})",
                range.start(),
                range.end()
            )))
        }
    }
}

/// `persistent_client_expiration`: a whole number followed by h, d, w, m (30 days) or y
/// (365 days), as Mosquitto reads it; in seconds.
pub(super) fn parse_duration(value: &str) -> Result<u32, String> {
    let expected = || {
        format!(
            "`{value}` is not a duration: a whole number followed by h, d, w, m or y \
             (2h, 14d, 1w, 1m, 1y)"
        )
    };
    let unit = value.chars().last().ok_or_else(expected)?;
    let seconds: u64 = match unit {
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'm' => 30 * 86_400,
        'y' => 365 * 86_400,
        _ => return Err(expected()),
    };
    let digits = &value[..value.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let count: u64 = digits.parse().map_err(|_| expected())?;
    if count == 0 {
        return Err(format!("`{value}` must be more than zero"));
    }
    count
        .checked_mul(seconds)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| format!("`{value}` is too long: at most 136 years (4294967295 s)"))
}

/// Mosquitto's `include_dir` order: letter by letter, case-insensitive first, then the
/// upper case before the lower case of the same letter (`A.conf`, `a.conf`, `B.conf`).
pub(super) fn mosquitto_order(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        let order = x
            .to_ascii_uppercase()
            .cmp(&y.to_ascii_uppercase())
            .then(x.cmp(&y));
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}
