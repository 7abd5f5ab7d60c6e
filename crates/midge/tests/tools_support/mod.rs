//! Shared by `tools_pub.rs`, `tools_sub.rs`, `tools_rr.rs`: a broker on `127.0.0.1:0`
//! (Midge in-process, or Debian's `/usr/sbin/mosquitto`) and runners for the `midge`
//! binary and for Mosquitto's clients, whose output is the reference.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A running broker; stopped on drop.
pub struct TestBroker {
    pub port: u16,
    _runtime: Option<tokio::runtime::Runtime>,
    process: Option<Child>,
    _dir: Option<TempDir>,
}

impl TestBroker {
    /// Midge's broker, in this process, on an ephemeral port.
    pub fn midge() -> TestBroker {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.block_on(async {
            midge_broker::Broker::start(midge_broker::Config::local_ephemeral())
                .await
                .unwrap()
        });
        let port = handle.local_addr().port();
        // The broker lives as long as the runtime.
        std::mem::forget(handle);
        TestBroker {
            port,
            _runtime: Some(runtime),
            process: None,
            _dir: None,
        }
    }

    /// Debian's mosquitto with `extra` config lines (`allow_anonymous true` ...), or None if it is not installed.
    pub fn mosquitto(extra: &str) -> Option<TestBroker> {
        TestBroker::mosquitto_on(free_port(), extra)
    }

    /// Debian's mosquitto on `port`.
    pub fn mosquitto_on(port: u16, extra: &str) -> Option<TestBroker> {
        let binary = Path::new("/usr/sbin/mosquitto");
        if !binary.exists() {
            eprintln!("skipped: /usr/sbin/mosquitto is not installed");
            return None;
        }
        let dir = TempDir::new();
        let conf = dir.path.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{extra}")).unwrap();
        let process = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(TestBroker {
            port,
            _runtime: None,
            process: Some(process),
            _dir: Some(dir),
        })
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("midge-tools-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `midge <tool> args...`, with HOME pointed at an empty directory (no options file).
pub fn midge(tool: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_midge"));
    command.arg(tool).args(args);
    command
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", "/nonexistent");
    command
}

/// `mosquitto_<tool> args...`, or None if Mosquitto's clients are not installed.
pub fn mosquitto(tool: &str, args: &[&str]) -> Option<Command> {
    let binary = format!("/usr/bin/mosquitto_{tool}");
    if !Path::new(&binary).exists() {
        eprintln!("skipped: {binary} is not installed");
        return None;
    }
    let mut command = Command::new(binary);
    command.args(args);
    command
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", "/nonexistent");
    Some(command)
}

/// Runs to completion, with a 20 s guard.
pub fn output(mut command: Command) -> Output {
    command.stdin(Stdio::null());
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(child)
}

/// Waits for a spawned child (stdout/stderr piped), killing it after 20 s.
pub fn wait(mut child: Child) -> Output {
    for _ in 0..2000 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!(
        "command did not finish: {:?}",
        child.wait_with_output().unwrap()
    );
}

/// Starts a command in the background with its output captured.
pub fn spawn(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `command`, asserting exit 0.
pub fn ok(command: Command) -> Output {
    let out = output(command);
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
