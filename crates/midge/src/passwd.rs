//! `midge passwd`: manage Mosquitto password files, as `mosquitto_passwd` 2.0 does.
//!
//! ```text
//! midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-c | -D] passwordfile username
//! midge passwd [-H ...] [-c] -b passwordfile username password
//! midge passwd -U passwordfile
//! ```
//! Same options, prompts (`Password: `, `Reenter password: `, read without echo from a
//! terminal, or as lines from a pipe), messages and exit codes as Debian 12's
//! `mosquitto_passwd` 2.0.11: 0 on success, 1 on errors, 2 when the two passwords differ.
//! The default hash is `sha512-pbkdf2` with 101 iterations, which every Mosquitto 2.x reads
//! (`argon2id`, Mosquitto 2.1's default, is not readable by 2.0). The hashing itself is
//! `midge_broker::auth::passwd`'s, so what this writes is what the broker reads.
//!
//! Where Midge differs, on purpose: comment and blank lines are kept instead of being
//! reported as a corrupt file; `-U` leaves entries that are already hashed alone (Mosquitto
//! would hash the hash, locking those users out); `-c -` writes to standard output
//! (Mosquitto 2.1's behaviour); updating a user with duplicate entries keeps one.
//! Existing files are rewritten in place (same inode, owner and mode); new ones are
//! created with mode 0600, as Mosquitto does.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use midge_broker::auth::passwd::{HashAlgorithm, PasswordHash};

/// Options of `midge passwd` (those of `mosquitto_passwd`). `Debug` redacts the password.
#[derive(clap::Args)]
pub(crate) struct PasswdArgs {
    /// Create a new password file. This will overwrite an existing file.
    #[arg(short = 'c')]
    create: bool,
    /// Delete the username rather than adding/updating its password.
    #[arg(short = 'D')]
    delete: bool,
    /// Run in batch mode, to allow passing the password on the command line.
    #[arg(short = 'b')]
    batch: bool,
    /// Update a plain text password file to use hashed passwords.
    #[arg(short = 'U')]
    update: bool,
    /// Hashing algorithm: sha512-pbkdf2 (default, read by every Mosquitto 2.x), argon2id
    /// (read by Mosquitto 2.1 and Midge) or sha512 (Mosquitto 1.6's, weak).
    #[arg(short = 'H', value_name = "ALGORITHM", num_args = 0..=1, default_missing_value = "")]
    hash: Option<String>,
    /// PBKDF2 iteration count (default 101).
    #[arg(short = 'I', value_name = "ITERATIONS", hide = true, num_args = 0..=1, default_missing_value = "")]
    iterations: Option<String>,
    /// The password file (`-` with `-c` writes to standard output).
    passwordfile: Option<PathBuf>,
    /// The user to add, update or delete.
    username: Option<String>,
    /// The password, with `-b`.
    #[arg(allow_hyphen_values = true)]
    password: Option<String>,
}

impl std::fmt::Debug for PasswdArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswdArgs")
            .field("create", &self.create)
            .field("delete", &self.delete)
            .field("batch", &self.batch)
            .field("update", &self.update)
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .field("passwordfile", &self.passwordfile)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<REDACTED>"))
            .finish()
    }
}

/// How `midge passwd` stops when it does not succeed: the message (already formatted as
/// Mosquitto's) and the exit code.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn error(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

pub(crate) fn run(args: PasswdArgs) -> anyhow::Result<()> {
    match execute(args) {
        Ok(()) => Ok(()),
        Err(Failure { code, message }) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            std::process::exit(code)
        }
    }
}

/// What to do, once the command line has been checked. (No `Debug`: it holds the password.)
enum Task {
    Create {
        file: Target,
        user: String,
        password: Option<Vec<u8>>,
    },
    Set {
        file: PathBuf,
        user: String,
        password: Option<Vec<u8>>,
    },
    Delete {
        file: PathBuf,
        user: String,
    },
    Update {
        file: PathBuf,
    },
}

/// Where `-c` writes.
#[derive(Debug)]
enum Target {
    File(PathBuf),
    Stdout,
}

/// How to hash new passwords (`-H`, `-I`).
#[derive(Debug, Clone, Copy)]
struct Hashing {
    algorithm: HashAlgorithm,
    iterations: Option<u32>,
}

impl Hashing {
    fn line(self, user: &str, password: &[u8]) -> Result<String, Failure> {
        let hash = PasswordHash::generate(self.algorithm, password, self.iterations)
            .map_err(|_| Failure::error("Error: Unable to hash password."))?;
        Ok(format!("{user}:{}\n", hash.encode()))
    }
}

fn execute(args: PasswdArgs) -> Result<(), Failure> {
    let (hashing, task) = plan(args)?;
    match task {
        Task::Create {
            file,
            user,
            password,
        } => {
            let password = password_or_prompt(password)?;
            let line = hashing.line(&user, &password)?;
            match file {
                Target::Stdout => {
                    print!("{line}");
                    Ok(())
                }
                Target::File(path) => create_file(&path, &line),
            }
        }
        Task::Set {
            file,
            user,
            password,
        } => {
            let text = read_existing(&file)?;
            let password = password_or_prompt(password)?;
            let new_line = hashing.line(&user, &password)?;
            let text = set_user(&text, &user, &new_line)?;
            rewrite_file(&file, &text)
        }
        Task::Delete { file, user } => {
            let text = read_existing(&file)?;
            rewrite_file(&file, &delete_user(&text, &user)?)
        }
        Task::Update { file } => {
            let text = read_existing(&file)?;
            rewrite_file(&file, &hash_plain_text(&text, hashing)?)
        }
    }
}

const USAGE: &str = "\
midge passwd is a tool for managing password files for Mosquitto and Midge.

Usage: midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-c | -D] passwordfile username
       midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-c] -b passwordfile username password
       midge passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which every Mosquitto 2.x reads.
      argon2id is read by Mosquitto 2.1 and Midge; Mosquitto 1.6 and earlier defaulted to sha512.
 -U : update a plain text password file to use hashed passwords.
";

/// Checks the command line as `mosquitto_passwd` does, in its order and with its messages.
fn plan(args: PasswdArgs) -> Result<(Hashing, Task), Failure> {
    // A bare `-H` or `-I` gets Mosquitto's message rather than clap's.
    for (value, flag) in [(&args.hash, "-H"), (&args.iterations, "-I")] {
        if value.as_deref() == Some("") {
            return Err(Failure::error(format!(
                "Error: {flag} argument given but not enough other arguments."
            )));
        }
    }
    let algorithm = match &args.hash {
        None => HashAlgorithm::DEFAULT,
        Some(name) => name
            .parse()
            .map_err(|e| Failure::error(format!("Error: {e}")))?,
    };
    let iterations = match &args.iterations {
        None => None,
        Some(n) => match n.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(Failure::error("Error: Number of iterations must be > 0.")),
        },
    };
    let hashing = Hashing {
        algorithm,
        iterations,
    };
    for (a, b, flag_a, flag_b) in [
        (args.create, args.delete, "-c", "-D"),
        (args.create, args.update, "-c", "-U"),
        (args.delete, args.update, "-D", "-U"),
        (args.delete, args.batch, "-b", "-D"),
    ] {
        if a && b {
            return Err(Failure::error(format!(
                "Error: {flag_a} and {flag_b} cannot be used together."
            )));
        }
    }
    let PasswdArgs {
        passwordfile: file,
        username: user,
        password,
        ..
    } = args;
    let task = if args.create {
        let missing = if args.batch {
            "Error: -c argument given but password file, username, or password missing."
        } else {
            "Error: -c argument given but password file or username missing."
        };
        match (file, user, password) {
            (Some(file), Some(user), password) if !args.batch || password.is_some() => {
                let file = if file.as_os_str() == "-" {
                    Target::Stdout
                } else {
                    Target::File(file)
                };
                let password = password.filter(|_| args.batch).map(String::into_bytes);
                Task::Create {
                    file,
                    user,
                    password,
                }
            }
            _ => return Err(Failure::error(missing)),
        }
    } else if args.delete {
        match (file, user) {
            (Some(file), Some(user)) => Task::Delete { file, user },
            _ => {
                return Err(Failure::error(
                    "Error: -D argument given but password file or username missing.",
                ));
            }
        }
    } else if args.update {
        match (file, user) {
            (Some(file), None) => Task::Update { file },
            _ => {
                return Err(Failure::error(
                    "Error: -U argument given but password file missing.",
                ));
            }
        }
    } else {
        match (file, user, password, args.batch) {
            (Some(file), Some(user), Some(password), true) => Task::Set {
                file,
                user,
                password: Some(password.into_bytes()),
            },
            (Some(file), Some(user), None, false) => Task::Set {
                file,
                user,
                password: None,
            },
            _ => {
                print!("{USAGE}");
                return Err(Failure {
                    code: 1,
                    message: String::new(),
                });
            }
        }
    };
    check_username(&task)?;
    if let Task::Create {
        password: Some(p), ..
    }
    | Task::Set {
        password: Some(p), ..
    } = &task
    {
        if p.len() > 65535 {
            return Err(Failure::error(
                "Error: Password must be less than 65536 characters long.",
            ));
        }
    }
    Ok((hashing, task))
}

fn check_username(task: &Task) -> Result<(), Failure> {
    let user = match task {
        Task::Create { user, .. } | Task::Set { user, .. } | Task::Delete { user, .. } => user,
        Task::Update { .. } => return Ok(()),
    };
    if user.len() > 65535 {
        return Err(Failure::error(
            "Error: Username must be less than 65536 characters long.",
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(Failure::error(
            "Error: Username must not contain control characters.",
        ));
    }
    if user.contains(':') {
        return Err(Failure::error(
            "Error: Username must not contain the ':' character.",
        ));
    }
    Ok(())
}

/// The `-b` password, or one read twice from the terminal (or standard input).
fn password_or_prompt(password: Option<Vec<u8>>) -> Result<Vec<u8>, Failure> {
    if let Some(password) = password {
        return Ok(password);
    }
    let first = prompt("Password: ")?;
    let second = prompt("Reenter password: ")?;
    if first != second {
        return Err(Failure {
            code: 2,
            message: "Error: Passwords do not match.".into(),
        });
    }
    Ok(first)
}

/// Prints `label` and reads one line: without echo from a terminal, as is from a pipe.
fn prompt(label: &str) -> Result<Vec<u8>, Failure> {
    let empty = || Failure::error("Error: Empty password.");
    print!("{label}");
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = if terminal {
        // rpassword ends the line on the terminal itself.
        rpassword::read_password()
            .map_err(|_| empty())?
            .into_bytes()
    } else {
        let mut buf = Vec::new();
        stdin
            .lock()
            .read_until(b'\n', &mut buf)
            .map_err(|_| empty())?;
        buf
    };
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    if line.is_empty() {
        return Err(empty());
    }
    if !terminal {
        println!();
    }
    Ok(line)
}

/// The path as `mosquitto_passwd` names it in messages: resolved when it exists.
fn shown(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `strerror` text: the OS message without Rust's " (os error N)".
fn os_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn read_existing(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::error(format!(
            "Error: Unable to open password file {}. {}.",
            shown(path),
            os_message(&e)
        ))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        Failure::error(format!(
            "Error: Password file {} is not valid UTF-8.",
            shown(path)
        ))
    })
}

fn create_file(path: &Path, text: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut file| {
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
    });
    written.map_err(|e| {
        Failure::error(format!(
            "Error: Unable to open file {} for writing. {}.",
            shown(path),
            os_message(&e)
        ))
    })
}

/// Rewrites an existing file in place, keeping its inode, owner and mode (as Mosquitto
/// does); the new text is complete before the file is touched.
fn rewrite_file(path: &Path, text: &str) -> Result<(), Failure> {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
        });
    written.map_err(|e| {
        Failure::error(format!(
            "Error occurred updating password file {}: {}.",
            shown(path),
            os_message(&e)
        ))
    })
}

/// One line of an existing file, as `mosquitto_passwd` reads it.
enum Entry<'a> {
    /// Blank or comment: kept as it is.
    Other,
    /// `username:password`, both trimmed; the password up to the next `:` (strtok).
    User { name: &'a str, password: &'a str },
}

/// Splits `text` into (raw line, entry); a line that is neither is a corrupt file.
fn entries(text: &str) -> Result<Vec<(&str, Entry<'_>)>, Failure> {
    let mut out = Vec::new();
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            out.push((raw, Entry::Other));
            continue;
        }
        let corrupt = || {
            Failure::error(format!(
                "Error: Corrupt password file at line {}.",
                index + 1
            ))
        };
        let (name, rest) = line.split_once(':').ok_or_else(corrupt)?;
        let password = rest.split(':').find(|s| !s.is_empty()).unwrap_or("").trim();
        let name = name.trim();
        if name.is_empty() || password.is_empty() {
            return Err(corrupt());
        }
        out.push((raw, Entry::User { name, password }));
    }
    Ok(out)
}

/// Appends `line`, after a newline if the text does not end with one.
fn push_line(out: &mut String, line: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
}

/// The file with `user`'s entry replaced by `new_line` (the first one; further duplicates
/// are dropped), or `new_line` appended.
fn set_user(text: &str, user: &str, new_line: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len() + new_line.len());
    let mut found = false;
    for (raw, entry) in entries(text)? {
        match entry {
            Entry::User { name, .. } if name == user => {
                if !found {
                    push_line(&mut out, new_line);
                    found = true;
                }
            }
            _ => push_line(&mut out, raw),
        }
    }
    if !found {
        push_line(&mut out, new_line);
    }
    Ok(out)
}

/// The file without `user`'s entries; an error if it has none.
fn delete_user(text: &str, user: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for (raw, entry) in entries(text)? {
        match entry {
            Entry::User { name, .. } if name == user => found = true,
            _ => push_line(&mut out, raw),
        }
    }
    if !found {
        return Err(Failure::error(format!(
            "Warning: User {user} not found in password file."
        )));
    }
    Ok(out)
}

/// `-U`: every plain-text password hashed; entries already hashed are kept.
fn hash_plain_text(text: &str, hashing: Hashing) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len() * 2);
    for (raw, entry) in entries(text)? {
        match entry {
            Entry::User { name, password } if PasswordHash::parse(password).is_err() => {
                push_line(&mut out, &hashing.line(name, password.as_bytes())?);
            }
            _ => push_line(&mut out, raw),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBKDF2: Hashing = Hashing {
        algorithm: HashAlgorithm::Sha512Pbkdf2,
        iterations: None,
    };

    fn hash_of<'a>(text: &'a str, user: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(user)?.strip_prefix(':'))
            .unwrap()
    }

    #[test]
    fn set_user_replaces_in_place_and_keeps_comments() {
        let text = "# users\nalice:$6$a$b\r\n\nbob:$6$c$d\nalice:$6$e$f";
        let out = set_user(text, "alice", "alice:NEW\n").unwrap();
        assert_eq!(out, "# users\nalice:NEW\n\nbob:$6$c$d\n");
        let out = set_user("bob:$6$c$d", "carol", "carol:NEW\n").unwrap();
        assert_eq!(out, "bob:$6$c$d\ncarol:NEW\n");
        assert_eq!(set_user("", "carol", "carol:NEW\n").unwrap(), "carol:NEW\n");
    }

    #[test]
    fn delete_user_removes_every_entry_or_warns() {
        let text = "alice:$6$a$b\nbob:$6$c$d\n alice : $6$e$f\n";
        assert_eq!(delete_user(text, "alice").unwrap(), "bob:$6$c$d\n");
        let missing = delete_user(text, "carol").unwrap_err();
        assert_eq!(
            missing,
            Failure::error("Warning: User carol not found in password file.")
        );
    }

    #[test]
    fn corrupt_lines_are_reported_with_their_number() {
        for text in ["alice:$6$a$b\nnocolon\n", "a:b\nbob:\n", "a:b\n:pw\n"] {
            assert_eq!(
                set_user(text, "x", "x:y\n").unwrap_err(),
                Failure::error("Error: Corrupt password file at line 2.")
            );
        }
    }

    #[test]
    fn update_hashes_plain_text_and_keeps_hashes() {
        let hashed = PasswordHash::sha512_with_salt(b"old", b"0123456789ab").encode();
        let text = format!("# comment\nalice: wonder land \nbob:{hashed}\ncarol:a:b\n");
        let out = hash_plain_text(&text, PBKDF2).unwrap();
        assert!(out.starts_with("# comment\nalice:$7$101$"), "{out}");
        assert!(out.contains(&format!("\nbob:{hashed}\n")));
        let alice = PasswordHash::parse(hash_of(&out, "alice")).unwrap();
        assert!(alice.verify(b"wonder land"));
        let carol = PasswordHash::parse(hash_of(&out, "carol")).unwrap();
        assert!(
            carol.verify(b"a"),
            "strtok: the password ends at the next ':'"
        );
        assert_eq!(hash_plain_text(&out, PBKDF2).unwrap(), out, "idempotent");
    }

    #[test]
    fn usernames_are_checked_as_mosquitto_does() {
        for (user, message) in [
            ("a:b", "Error: Username must not contain the ':' character."),
            (
                "a\tb",
                "Error: Username must not contain control characters.",
            ),
        ] {
            let task = Task::Delete {
                file: "f".into(),
                user: user.into(),
            };
            assert_eq!(check_username(&task), Err(Failure::error(message)));
        }
    }

    /// STYLE rule 15: the password given with `-b` never shows in `Debug` output.
    #[test]
    fn debug_output_redacts_the_password() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: PasswdArgs,
        }
        let cli = Cli::parse_from(["passwd", "-b", "file", "user", "hunter2"]);
        let shown = format!("{:?}", cli.args);
        assert!(
            shown.contains("<REDACTED>") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn os_messages_read_like_strerror() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(os_message(&e), "No such file or directory");
    }
}
