//! `midge serve` as a user runs it: the real binary, `--test-config` on good and bad files
//! of both formats, and a broker started from a mosquitto.conf answering a raw CONNECT.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};

use support::{MIDGE, Server, TempDir, free_port};

fn midge(args: &[&str]) -> Output {
    Command::new(MIDGE)
        .args(args)
        // A configuration error is a message, never a backtrace.
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("midge runs")
}

fn test_config(path: &Path) -> (Option<i32>, String, String) {
    let out = midge(&["serve", "-c", path.to_str().unwrap(), "--test-config"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_config_accepts_the_example_file() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../midge.example.toml");
    let (code, stdout, stderr) = test_config(&example);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.ends_with("configuration OK (Midge TOML)\n"),
        "{stdout}"
    );
    assert_eq!(stderr, "");
}

#[test]
fn test_config_without_a_file_checks_the_defaults() {
    let out = midge(&["serve", "--test-config"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"default configuration OK\n");
}

#[test]
fn test_config_accepts_a_mosquitto_conf_and_prints_its_warnings() {
    let dir = TempDir::new();
    let conf = dir.file(
        "mosquitto.conf",
        "# Mosquitto\nlistener 1883\nauth_plugin /usr/lib/auth.so\n",
    );
    let (code, stdout, stderr) = test_config(&conf);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("{}: configuration OK (mosquitto.conf)\n", conf.display())
    );
    assert!(
        stderr.starts_with(&format!(
            "warning: {}:3: `auth_plugin` is ignored",
            conf.display()
        )),
        "{stderr}"
    );
}

#[test]
fn test_config_refuses_a_bad_mosquitto_conf_naming_file_and_line() {
    let dir = TempDir::new();
    let conf = dir.file("mosquitto.conf", "listener 1883\n\nlisten 1884\n");
    let (code, stdout, stderr) = test_config(&conf);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "Error: {}:3: unknown configuration key `listen`\n",
            conf.display()
        )
    );

    let conf = dir.file("bad-value.conf", "allow_anonymous maybe\n");
    let (code, _, stderr) = test_config(&conf);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "Error: {}:1: allow_anonymous: expected true or false, not `maybe`\n",
            conf.display()
        )
    );
}

#[test]
fn test_config_refuses_bad_toml_naming_file_line_and_key() {
    let dir = TempDir::new();
    let toml = dir.file(
        "midge.toml",
        "max_connections = 10\nmax_inflight_messages = 0\n",
    );
    let (code, _, stderr) = test_config(&toml);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "Error: {}:2: max_inflight_messages: must be at least 1 (65535: as many as MQTT \
             allows)\n",
            toml.display()
        )
    );
    let toml = dir.file("typo.toml", "[log]\nlevle = \"debug\"\n");
    let (code, _, stderr) = test_config(&toml);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "Error: {}:2:1: unknown field `levle`",
            toml.display()
        )),
        "{stderr}"
    );
}

#[test]
fn serve_exits_with_the_error_on_a_bad_config() {
    let dir = TempDir::new();
    let conf = dir.file("mosquitto.conf", "max_keepalive 5\n");
    let out = midge(&["serve", "-c", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Error: {}:1: max_keepalive: 5 is out of range (10 to 65535)\n",
            conf.display()
        )
    );
}

/// Sends an MQTT 3.1.1 CONNECT (clean session, keep alive 60, empty client id) and
/// returns the CONNACK's four bytes.
fn connack(stream: &mut TcpStream) -> [u8; 4] {
    let connect = [
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ];
    stream.write_all(&connect).unwrap();
    let mut connack = [0; 4];
    stream.read_exact(&mut connack).unwrap();
    connack
}

#[test]
fn serves_a_mosquitto_conf_listener() {
    let dir = TempDir::new();
    let port = free_port();
    let conf = dir.file(
        "mosquitto.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let mut server = Server::start(&dir, &["-c", conf.to_str().unwrap()]);
    let mut stream = server.connect(port);
    assert_eq!(connack(&mut stream), [0x20, 0x02, 0x00, 0x00]);
    let log = server.log();
    assert!(log.contains("configuration loaded"), "{log}");
    assert!(!log.contains("local only"), "{log}");
}

#[test]
fn mosquitto_conf_listener_refuses_anonymous_clients_by_default() {
    // Mosquitto 2: once a listener is defined, allow_anonymous defaults to false.
    let dir = TempDir::new();
    let port = free_port();
    let conf = dir.file("mosquitto.conf", &format!("listener {port} 127.0.0.1\n"));
    let mut server = Server::start(&dir, &["-c", conf.to_str().unwrap()]);
    let mut stream = server.connect(port);
    assert_eq!(connack(&mut stream), [0x20, 0x02, 0x00, 0x05]);
}

#[test]
fn port_option_serves_loopback_and_says_local_only() {
    let dir = TempDir::new();
    let port = free_port();
    let mut server = Server::start(&dir, &["-p", &port.to_string()]);
    let mut stream = server.connect(port);
    assert_eq!(connack(&mut stream), [0x20, 0x02, 0x00, 0x00]);
    let log = server.log();
    assert!(log.contains("Starting in local only mode"), "{log}");
}

#[test]
fn port_option_is_ignored_when_the_file_defines_listeners() {
    let dir = TempDir::new();
    let (port, other) = (free_port(), free_port());
    let conf = dir.file(
        "mosquitto.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let mut server = Server::start(
        &dir,
        &["-c", conf.to_str().unwrap(), "-p", &other.to_string()],
    );
    let mut stream = server.connect(port);
    assert_eq!(connack(&mut stream), [0x20, 0x02, 0x00, 0x00]);
    let log = server.log();
    assert!(log.contains("-p is ignored"), "{log}");
    if other != port {
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, other)).is_err());
    }
}

/// `midge serve` raises its soft limit on open files to the hard limit (each connection
/// is a file; a soft limit of 256 would stop it at about 250 clients), and says so.
#[cfg(target_os = "linux")]
#[test]
fn serve_raises_the_open_file_limit_to_the_hard_limit() {
    let port = free_port();
    let dir = TempDir::new();
    let log = dir.path.join("midge.log");
    let mut child = Command::new("bash")
        .args([
            "-c",
            "ulimit -S -n 256 && exec \"$0\" serve -p \"$1\"",
            MIDGE,
        ])
        .arg(port.to_string())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("bash runs midge");
    let mut listening = false;
    for _ in 0..200 {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            listening = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(listening, "midge does not listen:\n{text}");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "{line}");
    if hard != "256" {
        assert!(text.contains("open file limit raised from=256"), "{text}");
    }
}
