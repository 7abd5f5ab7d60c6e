//! `midge pub` / `midge sub` over TLS (server-only and mutual), WebSocket, secure
//! WebSocket and Unix sockets against an in-process Midge broker; golden comparisons
//! with Debian's `mosquitto_sub`/`mosquitto_pub` for TLS command lines whose output is
//! deterministic (`-v`, `-N`, `-F`, refused certificates, bad files and options); and
//! the tools against Debian's `mosquitto` broker over TLS. Certificates come from rcgen.

#[path = "../../midge-broker/tests/common/pki.rs"]
mod pki;
mod support;

use std::path::PathBuf;

use midge_broker::config::ListenerProtocol;
use midge_broker::{Broker, Config, ListenerConfig};
use pki::{Ca, Issued};
use support::*;

/// An in-process broker with a TLS, a mutual-TLS, a WebSocket, a secure WebSocket and a
/// Unix socket listener, and the files to reach them.
struct Brokers {
    _runtime: tokio::runtime::Runtime,
    tls: u16,
    mtls: u16,
    ws: u16,
    wss: u16,
    unix: PathBuf,
    ca_file: String,
    other_ca: String,
    client: Issued,
    dir: PathBuf,
}

fn brokers(name: &str) -> Brokers {
    let dir = pki::temp_dir(name);
    let ca = Ca::new("Midge tools test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let other_ca = Ca::new("Another CA").write(&dir.join("other.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "tool");
    let unix = dir.join("mqtt.sock");
    let tls = |protocol| {
        let mut l = ListenerConfig::new("127.0.0.1:0".parse().unwrap());
        l.certfile = Some(server.cert.clone());
        l.keyfile = Some(server.key.clone());
        l.protocol = protocol;
        l
    };
    let mut mtls = tls(ListenerProtocol::Mqtt);
    mtls.cafile = Some(ca_file.clone());
    mtls.require_certificate = true;
    let mut ws = ListenerConfig::new("127.0.0.1:0".parse().unwrap());
    ws.protocol = ListenerProtocol::Websockets;
    let mut config = Config::local_ephemeral();
    config.listeners = vec![
        tls(ListenerProtocol::Mqtt),
        mtls,
        ws,
        tls(ListenerProtocol::Websockets),
        ListenerConfig::unix(&unix),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.block_on(Broker::start(config)).unwrap();
    let ports: Vec<u16> = handle.local_addrs().iter().map(|a| a.port()).collect();
    // The broker lives as long as the runtime.
    std::mem::forget(handle);
    Brokers {
        _runtime: runtime,
        tls: ports[0],
        mtls: ports[1],
        ws: ports[2],
        wss: ports[3],
        unix,
        ca_file: ca_file.display().to_string(),
        other_ca: other_ca.display().to_string(),
        client,
        dir,
    }
}

/// `midge pub -r` with `publish`, then `midge sub -C 1 -v` with `subscribe` gets it.
fn round_trip(topic: &str, publish: &[&str], subscribe: &[&str]) {
    let mut args = vec!["-t", topic, "-m", "over the wire", "-r", "-q", "1"];
    args.extend_from_slice(publish);
    ok(midge("pub", &args));
    let mut args = vec!["-t", topic, "-C", "1", "-v"];
    args.extend_from_slice(subscribe);
    let out = ok(midge("sub", &args));
    assert_eq!(text(&out.stdout), format!("{topic} over the wire\n"));
}

#[test]
fn pub_and_sub_over_tls_websocket_secure_websocket_and_unix() {
    let b = brokers("tools-transports");
    let tls = b.tls.to_string();
    let ca = b.ca_file.as_str();
    round_trip(
        "tls/a",
        &["-h", "localhost", "-p", &tls, "--cafile", ca],
        &[
            "-h",
            "localhost",
            "-p",
            &tls,
            "--cafile",
            ca,
            "--tls-version",
            "tlsv1.3",
        ],
    );
    // A CA directory, ALPN `mqtt`, and the URL form.
    let capath = b.dir.join("cas");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(&b.ca_file, capath.join("ca.pem")).unwrap();
    let url = format!("mqtts://localhost:{tls}/tls/b");
    round_trip(
        "tls/b",
        &[
            "--capath",
            capath.to_str().unwrap(),
            "-h",
            "localhost",
            "-p",
            &tls,
            "--tls-alpn",
            "mqtt",
        ],
        &["-L", &url, "--cafile", ca],
    );
    let mtls = b.mtls.to_string();
    let (cert, key) = (
        b.client.cert.to_str().unwrap(),
        b.client.key.to_str().unwrap(),
    );
    round_trip(
        "mtls/a",
        &[
            "-h",
            "localhost",
            "-p",
            &mtls,
            "--cafile",
            ca,
            "--cert",
            cert,
            "--key",
            key,
        ],
        &[
            "-h",
            "localhost",
            "-p",
            &mtls,
            "--cafile",
            ca,
            "--cert",
            cert,
            "--key",
            key,
        ],
    );
    let ws = format!("ws://localhost:{}/ws/a", b.ws);
    round_trip("ws/a", &["-L", &ws], &["-L", &ws]);
    let wss = format!("wss://localhost:{}/wss/a", b.wss);
    round_trip(
        "wss/a",
        &["-L", &wss, "--cafile", ca],
        &["-L", &wss, "--cafile", ca],
    );
    let unix = b.unix.to_str().unwrap();
    round_trip("unix/a", &["--unix", unix], &["--unix", unix]);
}

/// The same output, error and exit code as Mosquitto's clients over TLS: `-v`, `-N`,
/// `-F`, mutual TLS, files that are not there, an unknown TLS version, a certificate
/// without its key.
#[test]
fn golden_tls_command_lines() {
    let b = brokers("tools-golden");
    let tls = b.tls.to_string();
    let ca = b.ca_file.as_str();
    ok(midge(
        "pub",
        &[
            "-h",
            "localhost",
            "-p",
            &tls,
            "--cafile",
            ca,
            "-t",
            "g/t",
            "-m",
            "hello",
            "-r",
        ],
    ));
    let base = [
        "-h",
        "localhost",
        "-p",
        &tls,
        "--cafile",
        ca,
        "-t",
        "g/#",
        "-C",
        "1",
    ];
    for extra in [
        &["-v"][..],
        &["-N"],
        &["-F", "%t %p %q %r %l"],
        &["-v", "--insecure"],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        golden("sub", &args, None);
    }
    // A server certificate from a CA the client does not trust: Mosquitto's clients
    // print "Unable to connect (A TLS error occurred.)." and exit 1, or "Error: A TLS
    // error occurred." and exit 8, depending on whether the handshake failed before
    // mosquitto_connect returned (it varies from run to run); ours always the first.
    let out = output(midge(
        "sub",
        &[
            "-h",
            "localhost",
            "-p",
            &tls,
            "--cafile",
            &b.other_ca,
            "-t",
            "g/#",
        ],
    ));
    assert_eq!(
        text(&out.stderr),
        "Unable to connect (A TLS error occurred.).\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let mtls = b.mtls.to_string();
    let (cert, key) = (
        b.client.cert.to_str().unwrap(),
        b.client.key.to_str().unwrap(),
    );
    golden(
        "sub",
        &[
            "-h",
            "localhost",
            "-p",
            &mtls,
            "--cafile",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "-t",
            "g/#",
            "-C",
            "1",
            "-v",
        ],
        None,
    );
    for args in [
        &["-t", "g/t", "-m", "x", "--cafile", "/nonexistent/ca.pem"][..],
        &[
            "-t",
            "g/t",
            "-m",
            "x",
            "--cafile",
            ca,
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            key,
        ],
        &[
            "-t",
            "g/t",
            "-m",
            "x",
            "--cafile",
            ca,
            "--tls-version",
            "tlsv1.0",
        ],
        &["-t", "g/t", "-m", "x", "--cafile", ca, "--cert", cert],
        &["-t", "g/t", "-m", "x", "--cafile"],
        &["-t", "g/t", "-m", "x", "--unix", "/nonexistent/mqtt.sock"],
    ] {
        golden("pub", args, None);
    }
}

/// `midge pub`/`midge sub` against Debian's mosquitto with a TLS listener.
#[test]
fn tools_against_mosquitto_over_tls() {
    let dir = pki::temp_dir("tools-mosquitto-tls");
    let ca = Ca::new("Midge tools test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "tool");
    // mosquitto, started as root, reads its files as the user `mosquitto`.
    for path in [&dir, &ca_file, &server.cert, &server.key] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // A TLS listener, and a mutual-TLS one on a second port.
    let mtls_port = free_port();
    let (cert, key) = (server.cert.display(), server.key.display());
    let Some(mosquitto) = TestBroker::mosquitto(&format!(
        "certfile {cert}\nkeyfile {key}\nallow_anonymous true\n\
         listener {mtls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n\
         cafile {}\nrequire_certificate true\n",
        ca_file.display()
    )) else {
        return;
    };
    let port = mosquitto.port.to_string();
    let ca = ca_file.to_str().unwrap();
    round_trip(
        "mosq/tls",
        &["-h", "localhost", "-p", &port, "--cafile", ca],
        &["-h", "localhost", "-p", &port, "--cafile", ca, "-V", "5"],
    );
    let mtls = mtls_port.to_string();
    let (cert, key) = (client.cert.to_str().unwrap(), client.key.to_str().unwrap());
    let with_cert = [
        "-h",
        "localhost",
        "-p",
        &mtls,
        "--cafile",
        ca,
        "--cert",
        cert,
        "--key",
        key,
    ];
    round_trip("mosq/mtls", &with_cert, &with_cert);
    // Without a client certificate, mosquitto refuses the handshake.
    let out = output(midge(
        "pub",
        &[
            "-h",
            "localhost",
            "-p",
            &mtls,
            "--cafile",
            ca,
            "-t",
            "t",
            "-m",
            "x",
        ],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // An untrusted server: Mosquitto's words and exit code.
    let other = Ca::new("Another CA").write(&dir.join("other.pem"));
    let out = output(midge(
        "sub",
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            other.to_str().unwrap(),
            "-t",
            "t",
        ],
    ));
    assert_eq!(
        text(&out.stderr),
        "Unable to connect (A TLS error occurred.).\n"
    );
    assert_eq!(out.status.code(), Some(1));
}
