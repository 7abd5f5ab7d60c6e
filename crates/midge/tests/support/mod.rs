//! Shared by the binary's integration tests (`tools_*.rs`, `serve*.rs`, `passwd.rs`,
//! `bench.rs`): a broker on `127.0.0.1:0` (Midge in-process, Debian's
//! `/usr/sbin/mosquitto`, or a spawned `midge serve`), temporary directories, and runners
//! for the `midge` binary and for Mosquitto's clients, whose output is the reference. Mosquitto's broker and clients are
//! installed by `scripts/test`; a test that needs them fails if they are missing.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The `midge` binary under test.
pub const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

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
        let (runtime, ports) = start_midge(midge_broker::Config::local_ephemeral());
        TestBroker {
            port: ports[0],
            _runtime: Some(runtime),
            process: None,
            _dir: None,
        }
    }

    /// Debian's mosquitto with `extra` config lines (`allow_anonymous true` ...). Always
    /// `Some` (a missing binary fails the test); an `Option` for the callers' `let else`.
    pub fn mosquitto(extra: &str) -> Option<TestBroker> {
        TestBroker::mosquitto_on(free_port(), extra)
    }

    /// Debian's mosquitto on `port`.
    pub fn mosquitto_on(port: u16, extra: &str) -> Option<TestBroker> {
        let binary = Path::new("/usr/sbin/mosquitto");
        assert!(
            binary.exists(),
            "/usr/sbin/mosquitto is not installed (scripts/test installs it)"
        );
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

/// Midge's broker with `config`, in this process, in a runtime of its own: the runtime
/// (the broker lives as long as it) and the ports of the listeners, in their order.
pub fn start_midge(config: midge_broker::Config) -> (tokio::runtime::Runtime, Vec<u16>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime
        .block_on(midge_broker::Broker::start(config))
        .unwrap();
    let ports = handle.local_addrs().iter().map(|a| a.port()).collect();
    // The broker lives as long as the runtime.
    std::mem::forget(handle);
    (runtime, ports)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
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
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// A home directory whose options file for `midge <tool>`
    /// (`~/.config/midge/<tool>`) holds `options`: for `HOME`.
    pub fn home_with_options(tool: &str, options: &str) -> TempDir {
        let home = TempDir::new();
        let dir = home.path.join(".config/midge");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(tool), options).unwrap();
        home
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
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

/// `mosquitto_<tool> args...`. Always `Some` (a missing binary fails the test); an
/// `Option` for the callers' `let else`.
pub fn mosquitto(tool: &str, args: &[&str]) -> Option<Command> {
    let binary = format!("/usr/bin/mosquitto_{tool}");
    assert!(
        Path::new(&binary).exists(),
        "{binary} is not installed (scripts/test installs mosquitto-clients)"
    );
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

/// Runs `command` with `input` on its standard input.
pub fn with_stdin(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait(child)
}

/// Starts `midge sub -v -C count -q 2` on `topic` and gives it time to subscribe.
pub fn listen(port: &str, topic: &str, count: u32) -> Child {
    let count = count.to_string();
    let child = spawn(midge(
        "sub",
        &["-p", port, "-t", topic, "-C", &count, "-v", "-q", "2"],
    ));
    std::thread::sleep(Duration::from_millis(500));
    child
}

/// The retained message on `topic`, as `midge sub -C 1 -v` prints it.
pub fn retained(port: &str, topic: &str) -> String {
    text(&ok(midge("sub", &["-p", port, "-t", topic, "-C", "1", "-v"])).stdout)
}

/// A running `midge serve`, killed on drop; its log goes to a file in `dir`.
pub struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    /// `midge serve args...`.
    pub fn start(dir: &TempDir, args: &[&str]) -> Server {
        let log = dir.path.join("midge.log");
        let child = Command::new(MIDGE)
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("midge starts");
        Server { child, log }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects to `port` on 127.0.0.1 once the broker listens (up to 10 s).
    pub fn connect(&mut self, port: u16) -> TcpStream {
        for _ in 0..200 {
            if let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                return stream;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("midge exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("midge does not listen on {port}:\n{}", self.log());
    }

    /// Sends SIGHUP and waits (up to 10 s) until the log has grown by a line containing
    /// `expected`; returns what was logged since.
    pub fn hangup(&self, expected: &str) -> String {
        let before = self.log().len();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            let log = self.log();
            if log[before..].contains(expected) {
                return log[before..].to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no `{expected}` in the log after SIGHUP:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `-D packet property value...` for each `(packet, property, values)`: MQTT 5.0
/// properties as `midge pub`/`sub` and Mosquitto's clients take them.
pub fn properties<'a>(list: &[(&'a str, &'a str, &[&'a str])]) -> Vec<&'a str> {
    let mut args = Vec::new();
    for &(packet, property, values) in list {
        args.extend(["-D", packet, property]);
        args.extend_from_slice(values);
    }
    args
}

/// Runs `tool args` with Mosquitto's client and with ours (`stdin` on their standard
/// input, if any), one after the other: (Mosquitto's output, ours).
pub fn run_both(tool: &str, args: &[&str], stdin: Option<&[u8]>) -> (Output, Output) {
    let run = |command| match stdin {
        Some(input) => with_stdin(command, input),
        None => output(command),
    };
    let reference = mosquitto(tool, args).expect("mosquitto's client");
    (run(reference), run(midge(tool, args)))
}

/// Runs `tool args` with Mosquitto's client and with ours (`stdin` on their standard
/// input, if any), one after the other, and asserts the same standard output (byte for
/// byte), standard error (the tool's name aside) and exit code.
pub fn golden(tool: &str, args: &[&str], stdin: Option<&[u8]>) {
    let (expected, actual) = run_both(tool, args, stdin);
    assert_eq!(
        text(&actual.stdout),
        text(&expected.stdout),
        "stdout of {tool} {args:?}"
    );
    assert_eq!(
        actual.stdout, expected.stdout,
        "stdout bytes of {tool} {args:?}"
    );
    same_stderr_and_exit(tool, args, &expected, &actual);
}

/// Runs `tool args` with Mosquitto's client and with ours and asserts the same
/// standard error (the tool's name aside) and exit code: for errors, where Mosquitto's
/// clients print their usage text on standard output and ours do not.
pub fn same_errors(tool: &str, args: &[&str]) {
    let (expected, actual) = run_both(tool, args, None);
    same_stderr_and_exit(tool, args, &expected, &actual);
}

fn same_stderr_and_exit(tool: &str, args: &[&str], expected: &Output, actual: &Output) {
    assert_eq!(
        text(&actual.stderr),
        text(&expected.stderr).replace(&format!("mosquitto_{tool}"), &format!("midge {tool}")),
        "stderr of {tool} {args:?}"
    );
    assert_eq!(
        actual.status.code(),
        expected.status.code(),
        "exit of {tool} {args:?}"
    );
}

/// A SOCKS5 proxy on 127.0.0.1 for `--proxy` tests: no authentication, or only the
/// user name and password given; it connects every request to the target's port on
/// loopback, whatever the name, and records each request (`host:port`).
pub struct SocksProxy {
    pub port: u16,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SocksProxy {
    pub fn start(credentials: Option<(&str, &str)>) -> SocksProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        let credentials = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                let credentials = credentials.clone();
                std::thread::spawn(move || {
                    let _ = socks_session(stream, credentials.as_ref(), &log);
                });
            }
        });
        SocksProxy { port, requests }
    }
}

fn socks_session(
    mut client: TcpStream,
    credentials: Option<&(String, String)>,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use std::io::Read as _;
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods)?;
    match credentials {
        Some((user, password)) => {
            if !methods.contains(&2) {
                return client.write_all(&[5, 0xff]);
            }
            client.write_all(&[5, 2])?;
            let mut b = [0u8; 2];
            client.read_exact(&mut b)?;
            let mut name = vec![0u8; usize::from(b[1])];
            client.read_exact(&mut name)?;
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut pass = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut pass)?;
            if name != user.as_bytes() || pass != password.as_bytes() {
                return client.write_all(&[1, 1]);
            }
            client.write_all(&[1, 0])?;
        }
        None => client.write_all(&[5, 0])?,
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request)?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip)?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip)?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    log.lock().unwrap().push(format!("{host}:{port}"));
    let Ok(upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut c2, mut u2) = (client.try_clone()?, upstream.try_clone()?);
    let (mut c1, mut u1) = (client, upstream);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut u1);
        let _ = u1.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut c2);
    let _ = c2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}
