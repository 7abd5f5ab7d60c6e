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
use midge_broker::{Config, ListenerConfig};
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
    let (runtime, ports) = start_midge(config);
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

/// `-h localhost -p port --cafile ca`: TLS to `port`, the server's certificate checked
/// against `ca` and the name `localhost`.
fn tls<'a>(port: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec!["-h", "localhost", "-p", port, "--cafile", ca]
}

/// [`tls`] with the client certificate `cert` and its key `key` (mutual TLS).
fn mtls<'a>(port: &'a str, ca: &'a str, (cert, key): (&'a str, &'a str)) -> Vec<&'a str> {
    [&tls(port, ca)[..], &["--cert", cert, "--key", key]].concat()
}

/// The client certificate's files, as arguments.
fn client_files(client: &Issued) -> (&str, &str) {
    (client.cert.to_str().unwrap(), client.key.to_str().unwrap())
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

/// A server certificate from a CA the client does not trust (`other_ca`): Mosquitto's
/// clients print "Unable to connect (A TLS error occurred.)." and exit 1, or "Error: A
/// TLS error occurred." and exit 8, depending on whether the handshake failed before
/// mosquitto_connect returned (it varies from run to run); ours always the first.
fn assert_untrusted(port: &str, other_ca: &str) {
    let out = output(midge(
        "sub",
        &[&tls(port, other_ca)[..], &["-t", "g/#"]].concat(),
    ));
    assert_eq!(
        text(&out.stderr),
        "Unable to connect (A TLS error occurred.).\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn pub_and_sub_over_tls_websocket_secure_websocket_and_unix() {
    let b = brokers("tools-transports");
    let (tls_port, mtls_port) = (b.tls.to_string(), b.mtls.to_string());
    let ca = b.ca_file.as_str();
    let capath = b.dir.join("cas");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(&b.ca_file, capath.join("ca.pem")).unwrap();
    let url = format!("mqtts://localhost:{tls_port}/tls/b");
    let with_cert = mtls(&mtls_port, ca, client_files(&b.client));
    let ws = format!("ws://localhost:{}/ws/a", b.ws);
    let wss = format!("wss://localhost:{}/wss/a", b.wss);
    let unix = b.unix.to_str().unwrap();
    // (topic, `midge pub` options, `midge sub` options)
    let cases: [(&str, Vec<&str>, Vec<&str>); 6] = [
        (
            "tls/a",
            tls(&tls_port, ca),
            [&tls(&tls_port, ca)[..], &["--tls-version", "tlsv1.3"]].concat(),
        ),
        // A CA directory, ALPN `mqtt`, and the URL form.
        (
            "tls/b",
            vec![
                "--capath",
                capath.to_str().unwrap(),
                "-h",
                "localhost",
                "-p",
                &tls_port,
                "--tls-alpn",
                "mqtt",
            ],
            vec!["-L", &url, "--cafile", ca],
        ),
        ("mtls/a", with_cert.clone(), with_cert),
        ("ws/a", vec!["-L", &ws], vec!["-L", &ws]),
        (
            "wss/a",
            vec!["-L", &wss, "--cafile", ca],
            vec!["-L", &wss, "--cafile", ca],
        ),
        ("unix/a", vec!["--unix", unix], vec!["--unix", unix]),
    ];
    for (topic, publish, subscribe) in cases {
        round_trip(topic, &publish, &subscribe);
    }
}

/// The same output, error and exit code as Mosquitto's clients over TLS: `-v`, `-N`,
/// `-F`, mutual TLS, files that are not there, an unknown TLS version, a certificate
/// without its key.
#[test]
fn golden_tls_command_lines() {
    let b = brokers("tools-golden");
    let (tls_port, mtls_port) = (b.tls.to_string(), b.mtls.to_string());
    let ca = b.ca_file.as_str();
    let server = tls(&tls_port, ca);
    ok(midge(
        "pub",
        &[&server[..], &["-t", "g/t", "-m", "hello", "-r"]].concat(),
    ));
    let subscribe = ["-t", "g/#", "-C", "1"];
    for extra in [
        &["-v"][..],
        &["-N"],
        &["-F", "%t %p %q %r %l"],
        &["-v", "--insecure"],
    ] {
        golden("sub", &[&server[..], &subscribe, extra].concat(), None);
    }
    assert_untrusted(&tls_port, &b.other_ca);
    let (cert, key) = client_files(&b.client);
    golden(
        "sub",
        &[&mtls(&mtls_port, ca, (cert, key))[..], &subscribe, &["-v"]].concat(),
        None,
    );
    for extra in [
        &["--cafile", "/nonexistent/ca.pem"][..],
        &["--cafile", ca, "--cert", "/nonexistent/c.pem", "--key", key],
        &["--cafile", ca, "--tls-version", "tlsv1.0"],
        &["--cafile", ca, "--cert", cert],
        &["--cafile"],
        &["--unix", "/nonexistent/mqtt.sock"],
    ] {
        golden("pub", &[&["-t", "g/t", "-m", "x"], extra].concat(), None);
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
        &tls(&port, ca),
        &[&tls(&port, ca)[..], &["-V", "5"]].concat(),
    );
    let mtls_port = mtls_port.to_string();
    let with_cert = mtls(&mtls_port, ca, client_files(&client));
    round_trip("mosq/mtls", &with_cert, &with_cert);
    // Without a client certificate, mosquitto refuses the handshake.
    let out = output(midge(
        "pub",
        &[&tls(&mtls_port, ca)[..], &["-t", "t", "-m", "x"]].concat(),
    ));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // An untrusted server: Mosquitto's words and exit code.
    let other = Ca::new("Another CA").write(&dir.join("other.pem"));
    assert_untrusted(&port, other.to_str().unwrap());
}
