//! `midge pub` against the broker (Midge's, and Debian's mosquitto), checked with
//! `mosquitto_sub`/`midge sub`, and its errors compared byte for byte with
//! `mosquitto_pub` (Debian's mosquitto-clients 2.0).

mod support;

use std::process::Stdio;
use std::thread::sleep;
use std::time::Duration;

use support::*;

/// -m, -r, -q 0/1/2, every -V spelling, -i, -k, -x: the message arrives retained.
#[test]
fn message_retained_every_qos_and_version() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    for qos in ["0", "1", "2"] {
        for version in ["31", "mqttv31", "311", "mqttv311", "5", "mqttv5"] {
            let payload = format!("q{qos} v{version}");
            ok(midge(
                "pub",
                &[
                    "-p", &port, "-t", "p/m", "-m", &payload, "-r", "-q", qos, "-V", version, "-i",
                    "pub-test", "-k", "30",
                ],
            ));
            assert_eq!(retained(&port, "p/m"), format!("p/m {payload}\n"));
        }
    }
    ok(midge(
        "pub",
        &[
            "-p", &port, "-t", "p/x", "-m", "x", "-r", "-V", "5", "-x", "60", "-i", "x",
        ],
    ));
    assert_eq!(retained(&port, "p/x"), "p/x x\n");
    ok(midge(
        "pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "p/h",
            "-m",
            "h",
            "-r",
            "-I",
            "pre-",
        ],
    ));
    assert_eq!(retained(&port, "p/h"), "p/h h\n");
}

/// -f sends a file, -s standard input, both whole.
#[test]
fn file_and_stdin_payloads() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let dir = TempDir::new();
    let file = dir.path.join("payload");
    std::fs::write(&file, "from a file").unwrap();
    ok(midge(
        "pub",
        &["-p", &port, "-t", "p/f", "-f", file.to_str().unwrap(), "-r"],
    ));
    assert_eq!(retained(&port, "p/f"), "p/f from a file\n");
    let out = with_stdin(
        midge("pub", &["-p", &port, "-t", "p/s", "-s", "-r"]),
        b"all of\nstdin",
    );
    assert!(out.status.success());
    assert_eq!(retained(&port, "p/s"), "p/s all of\nstdin\n");
}

/// -n sends an empty message; -l one message per line; --repeat N times, with
/// --repeat-delay between.
#[test]
fn null_lines_and_repeat() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let sub = listen(&port, "p/n", 1);
    ok(midge("pub", &["-p", &port, "-t", "p/n", "-n"]));
    assert_eq!(text(&wait(sub).stdout), "p/n (null)\n");

    let sub = listen(&port, "p/l", 3);
    let out = with_stdin(
        midge("pub", &["-p", &port, "-t", "p/l", "-l", "-q", "1"]),
        b"one\ntwo\nthree\n",
    );
    assert!(out.status.success());
    assert_eq!(text(&wait(sub).stdout), "p/l one\np/l two\np/l three\n");

    let sub = listen(&port, "p/r", 3);
    ok(midge(
        "pub",
        &[
            "-p",
            &port,
            "-t",
            "p/r",
            "-m",
            "again",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.05",
        ],
    ));
    assert_eq!(text(&wait(sub).stdout), "p/r again\n".repeat(3));
}

/// -L mqtt://host:port/topic sets the host, port and topic.
#[test]
fn url_option() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let url = format!("mqtt://127.0.0.1:{port}/p/url");
    ok(midge("pub", &["-L", &url, "-m", "via url", "-r"]));
    assert_eq!(retained(&port, "p/url"), "p/url via url\n");
}

/// The options file ~/.config/midge/pub, one option per line.
#[test]
fn options_file_is_read() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let home = TempDir::home_with_options("pub", &format!("# defaults\n-p {port}\n-r\n"));
    let mut command = midge("pub", &["-t", "p/cfg", "-m", "configured"]);
    command.env("HOME", &home.path);
    ok(command);
    assert_eq!(retained(&port, "p/cfg"), "p/cfg configured\n");
}

/// Usage errors and an unreachable server: the same messages (bar the program name),
/// the same exit code as mosquitto_pub.
#[test]
fn errors_match_mosquitto_pub() {
    let closed_port = free_port().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-t", "a"],
        vec!["-m", "x"],
        vec!["-t", "a", "-m", "x", "-q"],
        vec!["-t", "a", "-m", "x", "-q", "3"],
        vec!["-t", "a", "-m", "x", "-k", "2"],
        vec!["-t", "a", "-m", "x", "-c"],
        vec!["-t", "a", "-m", "x", "-c", "-V", "5"],
        vec!["-t", "a", "-m", "x", "-p", "99999"],
        vec!["-t", "a", "-m", "x", "-V", "7"],
        vec!["-t", "a", "-m", "x", "-x"],
        vec!["-t", "a", "-m", "x", "-n"],
        vec!["-t", "a", "-m", "x", "-Z"],
        vec!["-t", "a#", "-m", "x"],
        vec!["-t", "a", "-f", "/nonexistent/file"],
        vec!["-t", "a", "-m", "x", "--repeat", "0"],
        vec!["-t", "a", "-m", "x", "-C", "1"],
        vec!["-t", "a", "-m", "x", "--will-retain"],
        vec!["-t", "a", "-m", "x", "-L", "mqtt://localhost"],
        vec!["-t", "a", "-m", "x", "-p", &closed_port],
        vec!["-t", "a", "-m", "x", "-M", "0"],
        vec!["-t", "a", "-m", "x", "-M", "many"],
        vec!["-t", "a", "-m", "x", "-M"],
        vec!["-t", "a", "-m", "x", "-A"],
        vec!["-t", "a", "-m", "x", "-h", "127.0.0.1", "-A", "192.0.2.1"],
        vec!["-t", "a", "-m", "x", "-A", "nonexistent.invalid"],
        vec!["-t", "a", "-m", "x", "-h", "nonexistent.invalid"],
        vec!["-t", "a", "-m", "x", "--proxy"],
        vec!["-t", "a", "-m", "x", "--proxy", "socks5://127.0.0.1:1080"],
        vec![
            "-t",
            "a",
            "-m",
            "x",
            "--proxy",
            "socks5h://127.0.0.1:1",
            "-p",
            &closed_port,
        ],
    ];
    for args in cases {
        same_errors("pub", &args);
    }
}

/// Against Debian's mosquitto broker: publish with every version; -u/-P checked by the
/// broker's password file; a refused connection reported as mosquitto_pub does, with
/// the same exit code (the CONNACK code).
#[test]
fn against_mosquitto_broker() {
    let dir = TempDir::new();
    let passwd = dir.path.join("passwd");
    ok(midge(
        "passwd",
        &["-c", "-b", passwd.to_str().unwrap(), "alice", "secret"],
    ));
    // mosquitto drops root privileges before reading the file.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Some(broker) = TestBroker::mosquitto(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwd.display()
    )) else {
        return;
    };
    let port = broker.port.to_string();
    for version in ["31", "311", "5"] {
        ok(midge(
            "pub",
            &[
                "-p", &port, "-u", "alice", "-P", "secret", "-V", version, "-t", "m/p", "-m",
                version, "-r", "-q", "1",
            ],
        ));
        let out = ok(midge(
            "sub",
            &[
                "-p", &port, "-u", "alice", "-P", "secret", "-t", "m/p", "-C", "1", "-v",
            ],
        ));
        assert_eq!(text(&out.stdout), format!("m/p {version}\n"));
    }
    for args in [
        &["-t", "a", "-m", "x"][..],
        &["-t", "a", "-m", "x", "-u", "alice", "-P", "wrong"],
        &[
            "-t", "a", "-m", "x", "-u", "alice", "-P", "wrong", "-V", "mqttv31",
        ],
    ] {
        same_errors("pub", &[&["-p", port.as_str()], args].concat());
    }
    let out = output(midge(
        "pub",
        &["-p", &port, "-t", "a", "-m", "x", "--quiet"],
    ));
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(5));
    let out = output(midge(
        "pub",
        &["-p", &port, "-t", "a", "-m", "x", "-V", "5"],
    ));
    assert_eq!(
        text(&out.stderr).lines().next(),
        Some("Connection error: Not authorized")
    );
    assert_eq!(out.status.code(), Some(135));
}

/// -D: PUBLISH properties reach the subscriber (read with mosquitto_sub -F), CONNECT,
/// SUBSCRIBE and DISCONNECT properties are accepted by Debian's mosquitto broker, and
/// -D errors read as mosquitto_pub's.
#[test]
fn property_option() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let props = properties(&[
        ("publish", "content-type", &["text/plain"]),
        ("publish", "response-topic", &["re/ply"]),
        ("publish", "correlation-data", &["c-1"]),
        ("publish", "payload-format-indicator", &["1"]),
        ("publish", "user-property", &["k", "v"]),
        ("publish", "user-property", &["k2", "v2"]),
        ("connect", "receive-maximum", &["10"]),
        ("connect", "user-property", &["who", "me"]),
        ("disconnect", "reason-string", &["bye"]),
    ]);
    let publish = ["-p", &port, "-t", "p/props", "-m", "x", "-r", "-q", "1"];
    ok(midge("pub", &[&publish[..], &props].concat()));
    let Some(reference) = mosquitto(
        "sub",
        &[
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "p/props",
            "-C",
            "1",
            "-F",
            "%C|%R|%D|%F|%P",
        ],
    ) else {
        return;
    };
    assert_eq!(
        text(&ok(reference).stdout),
        "text/plain|re/ply|c-1|1|k:v k2:v2\n"
    );
    let out = ok(midge(
        "sub",
        &[
            "-p",
            &port,
            "-t",
            "p/props",
            "-C",
            "1",
            "-F",
            "%S|%t",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
        ],
    ));
    assert_eq!(text(&out.stdout), "7|p/props\n");
    for bad in [
        &["-D"][..],
        &["-D", "publish"],
        &["-D", "nonsense", "content-type", "x"],
        &["-D", "publish", "nonsense", "x"],
        &["-D", "connect", "content-type", "x"],
        &["-D", "publish", "content-type"],
        &["-D", "publish", "user-property", "k"],
        &["-D", "subscribe", "subscription-identifier", "1"],
    ] {
        same_errors("pub", &[&["-t", "a", "-m", "x"], bad].concat());
    }
}

/// --will-topic/--will-payload/--will-qos/--will-retain: when `midge pub -l` is killed,
/// the broker publishes the will.
#[test]
fn will_options() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let mut publisher = midge(
        "pub",
        &[
            "-p",
            &port,
            "-t",
            "w/data",
            "-l",
            "--will-topic",
            "w/gone",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "--will-retain",
        ],
    );
    let mut child = publisher
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    sleep(Duration::from_millis(300));
    assert_eq!(retained(&port, "w/gone"), "w/gone bye\n");
}
