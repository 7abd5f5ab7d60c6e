//! Mosquitto's `password_file`: parsing, verification and the hashes `midge passwd` writes.
//!
//! A password file has one `username:hash` entry per line. Midge reads every hash format
//! Mosquitto 2.x reads (its `pw__decode` in `common/password_mosq.c`, 2.1's
//! `libcommon`), and writes them byte for byte the way `mosquitto_passwd` does:
//!
//! | scheme | written as | hash |
//! | --- | --- | --- |
//! | `sha512` | `$6$SALT$HASH` | SHA-512(password ‖ salt) |
//! | `sha512-pbkdf2` | `$7$ITERATIONS$SALT$HASH` | PBKDF2-HMAC-SHA512(password, salt, iterations), 64 bytes |
//! | `argon2id` | `$argon2id$v=19$m=M,t=T,p=P$SALT$HASH` | the PHC string of libargon2's `argon2id_hash_encoded` |
//!
//! `SALT` and `HASH` of `$6$`/`$7$` are standard base64 with padding of the raw bytes; the
//! salt is 12 bytes as Mosquitto 2.0 writes it (2.1 writes 64, and both are read: 2.0
//! itself accepts only 12, so Midge writes 12), the hash always 64. Argon2id's PHC fields
//! are base64 without padding; Mosquitto 2.1 uses t=1, m=47104 KiB, p=1 with a 64-byte
//! salt and a 64-byte hash, and so does Midge.
//!
//! Parsing is strict, as Mosquitto 2.1's `password_file__parse` is: a line that cannot be
//! decoded, a duplicate user, or an entry without a hash fails the whole file with its
//! file name and line, so that a reload can keep the previous file. Lines that are empty
//! or whose first non-blank character is `#` are skipped. A plain-text password (what
//! `mosquitto_passwd -U` converts) is refused, never compared. Nothing here prints a
//! password, and [`PasswordHash`]'s `Debug` shows neither salt nor hash.
//!
//! Verification recomputes the hash and compares it in constant time (`subtle`). It costs
//! what the stored parameters say (argon2id at Mosquitto's parameters: about 46 MiB and tens
//! of milliseconds), so callers on an async runtime run it on a blocking thread.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest as _, Sha512};
use subtle::ConstantTimeEq as _;

/// Length of every SHA-512 based hash, and of the hash Midge writes for argon2id.
pub const HASH_LEN: usize = 64;
/// Salt length of the `$6$` and `$7$` hashes Midge writes: Mosquitto 2.0 reads no other.
pub const SALT_LEN: usize = 12;
/// Salt length Mosquitto 2.1 writes for `$6$`/`$7$`, also accepted when reading.
const LONG_SALT_LEN: usize = 64;
/// `mosquitto_passwd`'s default PBKDF2 iteration count (`PW_DEFAULT_ITERATIONS`).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 101;
/// Mosquitto 2.1's argon2id cost parameters (`MOSQ_ARGON2_T`, `_M` in KiB, `_P`).
pub const ARGON2_T_COST: u32 = 1;
/// See [`ARGON2_T_COST`].
pub const ARGON2_M_COST: u32 = 47104;
/// See [`ARGON2_T_COST`].
pub const ARGON2_P_COST: u32 = 1;
/// Salt length of the argon2id hashes Midge writes (Mosquitto 2.1 uses `HASH_LEN`).
pub const ARGON2_SALT_LEN: usize = 64;

/// Standard base64, written with padding and read with or without it (OpenSSL's decoder,
/// which Mosquitto uses, does not insist).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// PHC strings: standard alphabet, no padding.
const B64_PHC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The hash algorithms of `mosquitto_passwd -H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// `sha512`: one salted SHA-512 (`$6$`), Mosquitto 1.6's default. Weak: kept for old files.
    Sha512,
    /// `sha512-pbkdf2` (`$7$`): Mosquitto 2.0's default, and Midge's (see [`Self::DEFAULT`]).
    Sha512Pbkdf2,
    /// `argon2id`: Mosquitto 2.1's default when built with libargon2. Mosquitto 2.0 cannot
    /// read it.
    Argon2id,
}

impl HashAlgorithm {
    /// What `midge passwd` writes without `-H`: `sha512-pbkdf2`, the newest scheme that
    /// every Mosquitto 2.x reads (Debian 12's 2.0.11 included).
    pub const DEFAULT: HashAlgorithm = HashAlgorithm::Sha512Pbkdf2;

    /// The name `-H` takes.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha512Pbkdf2 => "sha512-pbkdf2",
            HashAlgorithm::Argon2id => "argon2id",
        }
    }
}

impl FromStr for HashAlgorithm {
    type Err = UnknownHashAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sha512" => Ok(HashAlgorithm::Sha512),
            "sha512-pbkdf2" => Ok(HashAlgorithm::Sha512Pbkdf2),
            "argon2id" => Ok(HashAlgorithm::Argon2id),
            _ => Err(UnknownHashAlgorithm(name.to_owned())),
        }
    }
}

/// A `-H` name that is none of `sha512`, `sha512-pbkdf2`, `argon2id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown hash type '{0}'")]
pub struct UnknownHashAlgorithm(pub String);

/// Why a hash string could not be decoded, or a hash not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not `$6$`, `$7$` or `$argon2id$`.
    #[error("unknown hash type (expected $6$, $7$ or $argon2id$)")]
    UnknownScheme,
    /// A `$`-separated field is missing, or there is one too many.
    #[error("wrong number of fields in a {0} hash")]
    Fields(&'static str),
    /// The `$7$` iteration count is not a positive integer.
    #[error("invalid iteration count")]
    Iterations,
    /// A field is not valid base64.
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    /// The salt has a length Mosquitto never writes.
    #[error("salt is {0} bytes (expected 12 or 64)")]
    SaltLength(usize),
    /// The hash is not 64 bytes.
    #[error("hash is {0} bytes (expected 64)")]
    HashLength(usize),
    /// The argon2id parameters are missing, malformed or out of range.
    #[error("invalid argon2id parameters: {0}")]
    Argon2(String),
    /// The operating system's random generator failed.
    #[error("no random salt: {0}")]
    Random(String),
}

/// One decoded password hash. Its `Debug` shows the scheme and cost, never salt or hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(Scheme);

#[derive(Clone, PartialEq, Eq)]
enum Scheme {
    Sha512 {
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    Sha512Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    Argon2id {
        version: argon2::Version,
        /// Validated when parsed, so that verification cannot fail on them.
        params: argon2::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Scheme::Sha512 { .. } => f.write_str("PasswordHash::Sha512(<REDACTED>)"),
            Scheme::Sha512Pbkdf2 { iterations, .. } => {
                write!(
                    f,
                    "PasswordHash::Sha512Pbkdf2(iterations={iterations}, <REDACTED>)"
                )
            }
            Scheme::Argon2id { params, .. } => write!(
                f,
                "PasswordHash::Argon2id(m={},t={},p={}, <REDACTED>)",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            ),
        }
    }
}

impl PasswordHash {
    /// Decodes a hash as it appears after `username:` in a password file.
    pub fn parse(encoded: &str) -> Result<Self, HashError> {
        if let Some(rest) = encoded.strip_prefix("$6$") {
            let [salt, hash] = fields(rest).ok_or(HashError::Fields("$6$"))?;
            Ok(PasswordHash(Scheme::Sha512 {
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            }))
        } else if let Some(rest) = encoded.strip_prefix("$7$") {
            let [iterations, salt, hash] = fields(rest).ok_or(HashError::Fields("$7$"))?;
            Ok(PasswordHash(Scheme::Sha512Pbkdf2 {
                iterations: parse_iterations(iterations)?,
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            }))
        } else if let Some(rest) = encoded.strip_prefix("$argon2id$") {
            parse_argon2id(rest)
        } else {
            Err(HashError::UnknownScheme)
        }
    }

    /// The string to write after `username:`, exactly as `mosquitto_passwd` writes it.
    pub fn encode(&self) -> String {
        match &self.0 {
            Scheme::Sha512 { salt, hash } => {
                format!("$6${}${}", B64.encode(salt), B64.encode(hash))
            }
            Scheme::Sha512Pbkdf2 {
                iterations,
                salt,
                hash,
            } => format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(hash)),
            Scheme::Argon2id {
                version,
                params,
                salt,
                hash,
            } => format!(
                "$argon2id$v={}$m={},t={},p={}${}${}",
                u32::from(*version),
                params.m_cost(),
                params.t_cost(),
                params.p_cost(),
                B64_PHC.encode(salt),
                B64_PHC.encode(hash)
            ),
        }
    }

    /// Which algorithm made this hash.
    pub fn algorithm(&self) -> HashAlgorithm {
        match self.0 {
            Scheme::Sha512 { .. } => HashAlgorithm::Sha512,
            Scheme::Sha512Pbkdf2 { .. } => HashAlgorithm::Sha512Pbkdf2,
            Scheme::Argon2id { .. } => HashAlgorithm::Argon2id,
        }
    }

    /// Whether `password` is the one this hash was made from. Constant-time comparison.
    pub fn verify(&self, password: &[u8]) -> bool {
        let computed = match &self.0 {
            Scheme::Sha512 { salt, .. } => sha512(password, salt).to_vec(),
            Scheme::Sha512Pbkdf2 {
                iterations, salt, ..
            } => pbkdf2_sha512(password, salt, *iterations).to_vec(),
            Scheme::Argon2id {
                version,
                params,
                salt,
                ..
            } => match argon2id(password, salt, *version, params.clone()) {
                Ok(out) => out,
                Err(_) => return false,
            },
        };
        let stored: &[u8] = match &self.0 {
            Scheme::Sha512 { hash, .. } | Scheme::Sha512Pbkdf2 { hash, .. } => hash,
            Scheme::Argon2id { hash, .. } => hash,
        };
        computed.ct_eq(stored).into()
    }

    /// A `$6$` hash of `password` with `salt` (deterministic: for tests and `generate`).
    pub fn sha512_with_salt(password: &[u8], salt: &[u8]) -> Self {
        PasswordHash(Scheme::Sha512 {
            salt: salt.to_vec(),
            hash: sha512(password, salt),
        })
    }

    /// A `$7$` hash of `password` with `salt` and `iterations` (at least 1).
    pub fn sha512_pbkdf2_with_salt(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        PasswordHash(Scheme::Sha512Pbkdf2 {
            iterations,
            salt: salt.to_vec(),
            hash: pbkdf2_sha512(password, salt, iterations),
        })
    }

    /// An argon2id hash of `password` with `salt` (at least 8 bytes) at Mosquitto 2.1's
    /// parameters.
    pub fn argon2id_with_salt(password: &[u8], salt: &[u8]) -> Result<Self, HashError> {
        let params =
            argon2::Params::new(ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST, Some(HASH_LEN))
                .map_err(|e| HashError::Argon2(e.to_string()))?;
        let version = argon2::Version::V0x13;
        let hash = argon2id(password, salt, version, params.clone())?;
        Ok(PasswordHash(Scheme::Argon2id {
            version,
            params,
            salt: salt.to_vec(),
            hash,
        }))
    }

    /// A new hash of `password` with a random salt, as `mosquitto_passwd` makes it.
    /// `iterations` applies to `sha512-pbkdf2` only (`None`: 101, Mosquitto's default).
    pub fn generate(
        algorithm: HashAlgorithm,
        password: &[u8],
        iterations: Option<u32>,
    ) -> Result<Self, HashError> {
        match algorithm {
            HashAlgorithm::Sha512 => Ok(Self::sha512_with_salt(
                password,
                &random_salt::<SALT_LEN>()?,
            )),
            HashAlgorithm::Sha512Pbkdf2 => Ok(Self::sha512_pbkdf2_with_salt(
                password,
                &random_salt::<SALT_LEN>()?,
                iterations.unwrap_or(DEFAULT_PBKDF2_ITERATIONS),
            )),
            HashAlgorithm::Argon2id => {
                Self::argon2id_with_salt(password, &random_salt::<ARGON2_SALT_LEN>()?)
            }
        }
    }
}

/// Splits `rest` on `$` into exactly `N` non-empty fields.
fn fields<const N: usize>(rest: &str) -> Option<[&str; N]> {
    let mut parts = rest.split('$');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().filter(|p| !p.is_empty())?;
    }
    parts.next().is_none().then_some(out)
}

fn parse_iterations(field: &str) -> Result<u32, HashError> {
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashError::Iterations);
    }
    match field.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(HashError::Iterations),
    }
}

fn decode_salt(field: &str) -> Result<Vec<u8>, HashError> {
    let salt = B64.decode(field).map_err(|_| HashError::Base64("salt"))?;
    if salt.len() != SALT_LEN && salt.len() != LONG_SALT_LEN {
        return Err(HashError::SaltLength(salt.len()));
    }
    Ok(salt)
}

fn decode_hash(field: &str) -> Result<[u8; HASH_LEN], HashError> {
    let hash = B64.decode(field).map_err(|_| HashError::Base64("hash"))?;
    hash.as_slice()
        .try_into()
        .map_err(|_| HashError::HashLength(hash.len()))
}

/// Decodes the part of an argon2id PHC string after `$argon2id$`:
/// `[v=19$]m=M,t=T,p=P$SALT$HASH`, as libargon2's `decode_string` does.
fn parse_argon2id(rest: &str) -> Result<PasswordHash, HashError> {
    let bad = |what: &str| HashError::Argon2(what.to_owned());
    let mut parts: Vec<&str> = rest.split('$').collect();
    let version = match parts.first().and_then(|p| p.strip_prefix("v=")) {
        Some(v) => {
            let version = match v {
                "19" => argon2::Version::V0x13,
                "16" => argon2::Version::V0x10,
                _ => return Err(bad("unknown version")),
            };
            parts.remove(0);
            version
        }
        None => argon2::Version::V0x10,
    };
    let [costs, salt, hash] =
        <[&str; 3]>::try_from(parts.as_slice()).map_err(|_| HashError::Fields("$argon2id$"))?;
    let (mut m, mut t, mut p) = (None, None, None);
    for pair in costs.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("expected m=,t=,p="))?;
        let value: u32 = value.parse().map_err(|_| bad("cost is not a number"))?;
        let slot = match key {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return Err(bad("unknown parameter")),
        };
        if slot.replace(value).is_some() {
            return Err(bad("repeated parameter"));
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(bad("expected m=,t=,p="));
    };
    let salt = B64_PHC
        .decode(salt)
        .map_err(|_| HashError::Base64("salt"))?;
    let hash = B64_PHC
        .decode(hash)
        .map_err(|_| HashError::Base64("hash"))?;
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(HashError::SaltLength(salt.len()));
    }
    let params = argon2::Params::new(m, t, p, Some(hash.len())).map_err(|e| bad(&e.to_string()))?;
    Ok(PasswordHash(Scheme::Argon2id {
        version,
        params,
        salt,
        hash,
    }))
}

fn sha512(password: &[u8], salt: &[u8]) -> [u8; HASH_LEN] {
    Sha512::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize()
        .into()
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn argon2id(
    password: &[u8],
    salt: &[u8],
    version: argon2::Version,
    params: argon2::Params,
) -> Result<Vec<u8>, HashError> {
    let mut out = vec![0u8; params.output_len().unwrap_or(HASH_LEN)];
    let mut blocks = vec![argon2::Block::default(); params.block_count()];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(out)
}

fn random_salt<const N: usize>() -> Result<[u8; N], HashError> {
    let mut salt = [0u8; N];
    getrandom::fill(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
    Ok(salt)
}

/// Why a password file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswdError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line is not a valid entry.
    #[error("{}:{line}: {reason}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it (never the password or the hash).
        reason: LineError,
    },
}

/// What is wrong with one line of a password file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// No `:` between username and hash.
    #[error("expected `username:hash`")]
    NoColon,
    /// Nothing before the `:`.
    #[error("empty username")]
    EmptyUsername,
    /// Nothing after the `:`.
    #[error("no password hash for user '{0}'")]
    MissingHash(String),
    /// The user has an entry already.
    #[error("duplicate user '{0}'")]
    DuplicateUser(String),
    /// Not a hash: plain text, which Mosquitto 2 does not accept either.
    #[error(
        "the password of user '{0}' is not hashed; convert the file with `midge passwd -U FILE`"
    )]
    PlainText(String),
    /// A hash that does not decode.
    #[error("cannot decode the password hash of user '{user}': {error}")]
    Hash {
        /// Whose.
        user: String,
        /// Why.
        error: HashError,
    },
}

/// A parsed password file: usernames and their hashes.
#[derive(Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("users", &self.users.len())
            .finish()
    }
}

impl PasswordFile {
    /// Reads and parses `path`. The only function here that touches the file system.
    pub fn load(path: &Path) -> Result<Self, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswdError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a password file; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, PasswdError> {
        let mut users = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let error = |reason| PasswdError::Line {
                file: file.to_path_buf(),
                line: index + 1,
                reason,
            };
            let Some((username, hash)) = parse_line(raw).map_err(error)? else {
                continue;
            };
            if users.contains_key(username) {
                return Err(error(LineError::DuplicateUser(username.to_owned())));
            }
            users.insert(username.to_owned(), hash);
        }
        Ok(PasswordFile { users })
    }

    /// Whether `username` may log in with `password`. An unknown user is refused.
    /// Clients that send no username are not this function's business (`allow_anonymous`).
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        self.users
            .get(username)
            .is_some_and(|hash| hash.verify(password))
    }

    /// Whether the file has an entry for `username`.
    pub fn contains_user(&self, username: &str) -> bool {
        self.users.contains_key(username)
    }

    /// The hash stored for `username`.
    pub fn get(&self, username: &str) -> Option<&PasswordHash> {
        self.users.get(username)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file has no entries.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One line: `Ok(None)` for blank and comment lines.
fn parse_line(raw: &str) -> Result<Option<(&str, PasswordHash)>, LineError> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (username, hash) = line.split_once(':').ok_or(LineError::NoColon)?;
    let (username, hash) = (username.trim(), hash.trim());
    if username.is_empty() {
        return Err(LineError::EmptyUsername);
    }
    if hash.is_empty() {
        return Err(LineError::MissingHash(username.to_owned()));
    }
    if !hash.starts_with('$') {
        return Err(LineError::PlainText(username.to_owned()));
    }
    let hash = PasswordHash::parse(hash).map_err(|error| LineError::Hash {
        user: username.to_owned(),
        error,
    })?;
    Ok(Some((username, hash)))
}

#[cfg(test)]
#[path = "passwd_tests.rs"]
mod tests;
