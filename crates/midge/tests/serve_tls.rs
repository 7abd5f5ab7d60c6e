//! `midge serve -c mosquitto.conf` with a TLS listener, checked with Debian's
//! `mosquitto_pub --cafile`: SIGHUP reloads the certificate and key in the running
//! binary while a connected `mosquitto_sub` stays connected. Certificates are made with
//! the `openssl` command (scripts/test installs it and mosquitto-clients).

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

fn temp_dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("midge-serve-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// A self-signed certificate for 127.0.0.1 (its own CA), as `NAME.pem` and `NAME.key`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (Debian package openssl; scripts/test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (cert, key)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mosquitto_pub --cafile CA -m MESSAGE`: whether it succeeded.
fn publish(port: u16, ca: &Path, message: &str) -> bool {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "tls/t",
            "-q",
            "1",
        ])
        .args(["-m", message, "--cafile"])
        .arg(ca)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub (Debian package mosquitto-clients)")
        .success()
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    let dir = temp_dir("reload");
    let (old_cert, old_key) = self_signed(&dir, "old");
    let (new_cert, new_key) = self_signed(&dir, "new");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::copy(&old_cert, &cert).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncertfile {}\nkeyfile {}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let log = dir.join("midge.log");
    let server = Killed(
        Command::new(MIDGE)
            .args(["serve", "-c", conf.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("midge starts"),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    for _ in 0..200 {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // A subscriber over TLS with the old certificate, kept connected across the reload.
    let mut sub = Killed(
        Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args([
                "-t", "tls/#", "-q", "1", "-C", "2", "-W", "20", "-d", "--cafile",
            ])
            .arg(&old_cert)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = sub.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("mosquitto_sub did not print `{what}`:\n{}", read_log()));
        if line.contains(what) {
            return;
        }
    };
    wait_for("Subscribed (mid:");
    assert!(publish(port, &old_cert, "before"), "{}", read_log());
    wait_for("before");

    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let before = read_log().len();
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..200 {
        if read_log()[before..].contains("TLS certificates reloaded") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        read_log()[before..].contains("TLS certificates reloaded"),
        "{}",
        read_log()
    );
    assert!(
        !publish(port, &old_cert, "old certificate"),
        "the old certificate is gone"
    );
    assert!(publish(port, &new_cert, "after"), "{}", read_log());
    // The subscriber connected before the reload still gets messages.
    wait_for("after");
    let status = sub.0.wait().unwrap();
    assert!(status.success());
}
