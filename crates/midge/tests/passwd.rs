//! `midge passwd` against Mosquitto: files each tool writes are read by the other, and
//! Debian's Mosquitto broker accepts the passwords `midge passwd` hashed.
//!
//! These tests need Debian's `mosquitto` and `mosquitto-clients` packages
//! (`/usr/sbin/mosquitto`, `mosquitto_passwd`, `mosquitto_pub`), which `scripts/test`
//! installs. Without them they fail; they never skip.

mod support;

use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use midge_broker::auth::passwd::{HashAlgorithm, PasswordFile};
use support::{MIDGE, TempDir, free_port};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

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
    let dir = TempDir::new();
    let file = dir.path.join("pw");
    let f = file.to_str().unwrap();
    succeed(midge(&dir.path, &["-b", "-c", f, "alice", "wonderland"]));
    succeed(midge(
        &dir.path,
        &["-H", "sha512", "-b", f, "bob", "builder"],
    ));
    succeed(midge(
        &dir.path,
        &["-b", "-H", "argon2id", f, "carol", "-dash first"],
    ));
    succeed(midge(&dir.path, &["-b", f, "dave smith", "pässwörd ✓"]));
    succeed(midge(&dir.path, &["-b", f, "alice", "changed"]));

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

    succeed(midge(&dir.path, &["-D", f, "bob"]));
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
    let dir = TempDir::new();
    let out = succeed(run_in(
        &dir.path,
        MIDGE,
        &["passwd", "-c", "pw", "erin"],
        Some("s3cret\ns3cret\n"),
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Password: \nReenter password: \n"
    );
    assert!(load(&dir.path.join("pw")).verify("erin", b"s3cret"));

    let out = run_in(
        &dir.path,
        MIDGE,
        &["passwd", "pw", "erin"],
        Some("one\ntwo\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: Passwords do not match.\n"
    );
    assert!(
        load(&dir.path.join("pw")).verify("erin", b"s3cret"),
        "file unchanged"
    );
}

#[test]
fn midge_passwd_converts_plain_text_files() {
    let dir = TempDir::new();
    let file = dir.path.join("pw");
    fs::write(&file, "# users\nalice:wonderland\nbob:builder\n").unwrap();
    succeed(midge(&dir.path, &["-U", file.to_str().unwrap()]));
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
    let dir = TempDir::new();
    succeed(run_in(
        &dir.path,
        "mosquitto_passwd",
        &["-b", "-c", "pw", "alice", "wonderland"],
        None,
    ));
    succeed(run_in(
        &dir.path,
        "mosquitto_passwd",
        &["-H", "sha512", "-b", "pw", "bob", "builder"],
        None,
    ));
    succeed(run_in(
        &dir.path,
        "mosquitto_passwd",
        &["-H", "sha512-pbkdf2", "-b", "pw", "carol", "p@ss word"],
        None,
    ));
    let parsed = load(&dir.path.join("pw"));
    assert!(parsed.verify("alice", b"wonderland"));
    assert!(parsed.verify("bob", b"builder"));
    assert!(parsed.verify("carol", b"p@ss word"));
    assert!(!parsed.verify("alice", b"builder"));
    assert_eq!(algorithm_of(&parsed, "alice"), HashAlgorithm::Sha512Pbkdf2);
    assert_eq!(algorithm_of(&parsed, "bob"), HashAlgorithm::Sha512);

    // And `midge passwd` edits a file mosquitto_passwd wrote without disturbing it.
    succeed(midge(&dir.path, &["-b", "pw", "dave", "x"]));
    let parsed = load(&dir.path.join("pw"));
    assert!(parsed.verify("alice", b"wonderland") && parsed.verify("dave", b"x"));
}

/// The same mistakes give the same messages and exit codes as mosquitto_passwd 2.0.
#[test]
fn errors_match_mosquitto_passwd() {
    let dir = TempDir::new();
    succeed(midge(&dir.path, &["-b", "-c", "pw", "alice", "x"]));
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
        let ours = midge(&dir.path, args);
        let theirs = run_in(&dir.path, "mosquitto_passwd", args, None);
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

fn start_mosquitto(dir: &TempDir, password_file: &Path) -> (Broker, u16) {
    let port = free_port();
    let whoami = run_in(&dir.path, "id", &["-un"], None);
    let user = String::from_utf8(whoami.stdout).unwrap();
    let config = dir.path.join("mosquitto.conf");
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
    let log = fs::File::create(dir.path.join("mosquitto.log")).unwrap();
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
        let log = fs::read_to_string(dir.path.join("mosquitto.log")).unwrap_or_default();
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
        &dir.path,
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
    let dir = TempDir::new();
    let file = dir.path.join("pw");
    let f = file.to_str().unwrap();
    succeed(midge(&dir.path, &["-b", "-c", f, "alice", "wonderland"]));
    succeed(midge(
        &dir.path,
        &["-b", "-H", "sha512", f, "bob", "builder"],
    ));
    fs::write(dir.path.join("plain"), "carol:p@ss word\n").unwrap();
    succeed(midge(&dir.path, &["-U", "plain"]));
    let carol = fs::read_to_string(dir.path.join("plain")).unwrap();
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
