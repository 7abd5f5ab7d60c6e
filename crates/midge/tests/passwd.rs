//! `midge passwd` against Mosquitto: files each tool writes are read by the other, and
//! Debian's Mosquitto broker accepts the passwords `midge passwd` hashed.
//!
//! These tests need Debian's `mosquitto` and `mosquitto-clients` packages
//! (`/usr/sbin/mosquitto`, `mosquitto_passwd`, `mosquitto_pub`), which `scripts/test`
//! installs. Without them they fail; they never skip.

use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use midge_broker::auth::passwd::{HashAlgorithm, PasswordFile};

const MIDGE: &str = env!("CARGO_BIN_EXE_midge");
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("midge-passwd-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `program` in `dir`, failing the test (not skipping it) when it is not installed.
fn run_in(dir: &Path, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (install Debian's mosquitto and mosquitto-clients)")
        });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn midge(dir: &Path, args: &[&str]) -> Output {
    let mut full = vec!["passwd"];
    full.extend_from_slice(args);
    run_in(dir, MIDGE, &full, None)
}

fn succeed(output: Output) -> Output {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn load(path: &Path) -> PasswordFile {
    PasswordFile::load(path).unwrap_or_else(|e| panic!("{e}"))
}

fn algorithm_of(file: &PasswordFile, user: &str) -> HashAlgorithm {
    file.get(user).unwrap().algorithm()
}

#[test]
fn midge_passwd_batch_files_verify_with_our_parser() {
    let dir = TempDir::new("batch");
    let file = dir.path("pw");
    let f = file.to_str().unwrap();
    succeed(midge(&dir.0, &["-b", "-c", f, "alice", "wonderland"]));
    succeed(midge(&dir.0, &["-H", "sha512", "-b", f, "bob", "builder"]));
    succeed(midge(
        &dir.0,
        &["-b", "-H", "argon2id", f, "carol", "-dash first"],
    ));
    succeed(midge(&dir.0, &["-b", f, "dave smith", "pässwörd ✓"]));
    succeed(midge(&dir.0, &["-b", f, "alice", "changed"]));

    let parsed = load(&file);
    assert_eq!(parsed.len(), 4);
    assert!(parsed.verify("alice", b"changed"));
    assert!(!parsed.verify("alice", b"wonderland"));
    assert!(parsed.verify("bob", b"builder"));
    assert!(parsed.verify("carol", b"-dash first"));
    assert!(parsed.verify("dave smith", "pässwörd ✓".as_bytes()));
    assert_eq!(algorithm_of(&parsed, "alice"), HashAlgorithm::Sha512Pbkdf2);
    assert_eq!(algorithm_of(&parsed, "bob"), HashAlgorithm::Sha512);
    assert_eq!(algorithm_of(&parsed, "carol"), HashAlgorithm::Argon2id);

    succeed(midge(&dir.0, &["-D", f, "bob"]));
    let parsed = load(&file);
    assert!(!parsed.contains_user("bob") && parsed.verify("alice", b"changed"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "new password files are private, as Mosquitto's"
        );
    }
}

#[test]
fn midge_passwd_prompts_twice_and_exits_2_on_mismatch() {
    let dir = TempDir::new("prompt");
    let out = succeed(run_in(
        &dir.0,
        MIDGE,
        &["passwd", "-c", "pw", "erin"],
        Some("s3cret\ns3cret\n"),
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Password: \nReenter password: \n"
    );
    assert!(load(&dir.path("pw")).verify("erin", b"s3cret"));

    let out = run_in(&dir.0, MIDGE, &["passwd", "pw", "erin"], Some("one\ntwo\n"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: Passwords do not match.\n"
    );
    assert!(
        load(&dir.path("pw")).verify("erin", b"s3cret"),
        "file unchanged"
    );
}

#[test]
fn midge_passwd_converts_plain_text_files() {
    let dir = TempDir::new("update");
    let file = dir.path("pw");
    fs::write(&file, "# users\nalice:wonderland\nbob:builder\n").unwrap();
    succeed(midge(&dir.0, &["-U", file.to_str().unwrap()]));
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# users\n") && !text.contains("wonderland"),
        "{text}"
    );
    let parsed = load(&file);
    assert!(parsed.verify("alice", b"wonderland") && parsed.verify("bob", b"builder"));
}

#[test]
fn mosquitto_passwd_files_verify_with_our_parser() {
    let dir = TempDir::new("mosquitto-written");
    succeed(run_in(
        &dir.0,
        "mosquitto_passwd",
        &["-b", "-c", "pw", "alice", "wonderland"],
        None,
    ));
    succeed(run_in(
        &dir.0,
        "mosquitto_passwd",
        &["-H", "sha512", "-b", "pw", "bob", "builder"],
        None,
    ));
    succeed(run_in(
        &dir.0,
        "mosquitto_passwd",
        &["-H", "sha512-pbkdf2", "-b", "pw", "carol", "p@ss word"],
        None,
    ));
    let parsed = load(&dir.path("pw"));
    assert!(parsed.verify("alice", b"wonderland"));
    assert!(parsed.verify("bob", b"builder"));
    assert!(parsed.verify("carol", b"p@ss word"));
    assert!(!parsed.verify("alice", b"builder"));
    assert_eq!(algorithm_of(&parsed, "alice"), HashAlgorithm::Sha512Pbkdf2);
    assert_eq!(algorithm_of(&parsed, "bob"), HashAlgorithm::Sha512);

    // And `midge passwd` edits a file mosquitto_passwd wrote without disturbing it.
    succeed(midge(&dir.0, &["-b", "pw", "dave", "x"]));
    let parsed = load(&dir.path("pw"));
    assert!(parsed.verify("alice", b"wonderland") && parsed.verify("dave", b"x"));
}

/// The same mistakes give the same messages and exit codes as mosquitto_passwd 2.0.
#[test]
fn errors_match_mosquitto_passwd() {
    let dir = TempDir::new("errors");
    succeed(midge(&dir.0, &["-b", "-c", "pw", "alice", "x"]));
    let cases: &[&[&str]] = &[
        &["-c", "-D", "pw", "u"],
        &["-c", "-U", "pw"],
        &["-D", "-U", "pw"],
        &["-b", "-D", "pw", "u"],
        &["-H", "md5", "-b", "pw", "u", "p"],
        &["-H"],
        &["-b", "pw", "u", "p", "-I"],
        &["-I", "0", "-b", "pw", "u", "p"],
        &["-c", "pw"],
        &["-c", "-b", "pw", "u"],
        &["-D", "pw"],
        &["-U", "pw", "extra"],
        &["-D", "pw", "nobody"],
        &["-b", "missing", "u", "p"],
        &["-b", "pw", "a:b", "p"],
        &["pw"],
    ];
    for args in cases {
        let ours = midge(&dir.0, args);
        let theirs = run_in(&dir.0, "mosquitto_passwd", args, None);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        if !theirs.stderr.is_empty() {
            assert_eq!(
                String::from_utf8_lossy(&ours.stderr),
                String::from_utf8_lossy(&theirs.stderr),
                "{args:?}"
            );
        }
    }
}

/// Kills the broker when the test ends, passing or not.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_mosquitto(dir: &TempDir, password_file: &Path) -> (Broker, u16) {
    let port = free_port();
    let whoami = run_in(&dir.0, "id", &["-un"], None);
    let user = String::from_utf8(whoami.stdout).unwrap();
    let config = dir.path("mosquitto.conf");
    fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             user {}\n",
            password_file.display(),
            user.trim()
        ),
    )
    .unwrap();
    let log = fs::File::create(dir.path("mosquitto.log")).unwrap();
    let child = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {MOSQUITTO}: {e} (apt-get install mosquitto)"));
    let mut broker = Broker(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Up to about ten seconds (no clock reads: clippy.toml bans Instant::now).
    for attempt in 0.. {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        let log = fs::read_to_string(dir.path("mosquitto.log")).unwrap_or_default();
        if let Some(status) = broker.0.try_wait().unwrap() {
            panic!("mosquitto exited ({status}):\n{log}");
        }
        assert!(attempt < 200, "mosquitto did not listen:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (broker, port)
}

fn publish(dir: &TempDir, port: u16, user: &str, password: &str) -> Output {
    let port = port.to_string();
    run_in(
        &dir.0,
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            user,
            "-P",
            password,
            "-t",
            "midge/test",
            "-m",
            "hello",
        ],
        None,
    )
}

#[test]
fn mosquitto_broker_accepts_files_written_by_midge_passwd() {
    let dir = TempDir::new("broker");
    let file = dir.path("pw");
    let f = file.to_str().unwrap();
    succeed(midge(&dir.0, &["-b", "-c", f, "alice", "wonderland"]));
    succeed(midge(&dir.0, &["-b", "-H", "sha512", f, "bob", "builder"]));
    fs::write(dir.path("plain"), "carol:p@ss word\n").unwrap();
    succeed(midge(&dir.0, &["-U", "plain"]));
    let carol = fs::read_to_string(dir.path("plain")).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(carol.as_bytes())
        .unwrap();

    let (_broker, port) = start_mosquitto(&dir, &file);
    for (user, password) in [
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("carol", "p@ss word"),
    ] {
        succeed(publish(&dir, port, user, password));
    }
    for (user, password) in [("alice", "wrong"), ("bob", "wonderland"), ("mallory", "x")] {
        let out = publish(&dir, port, user, password);
        assert!(!out.status.success(), "{user} with a wrong password got in");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not authorised"), "{user}: {stderr}");
    }
}
