//! `-d` (libmosquitto's packet log), `-M`, `-A` and `--nodelay` of `midge pub`, `midge
//! sub` and `midge rr`, compared line for line with Debian's `mosquitto_pub`,
//! `mosquitto_sub` and `mosquitto_rr` run with the same options against the same broker
//! (client ids fixed with `-i`, so that the lines are deterministic). Each pair of runs
//! is sequential: the two clients share their id.

mod support;

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use support::*;

/// The packet log of publications at every QoS and version, retained, repeated, with
/// properties, from standard input one per line with one in flight (`-M 1`), with
/// `--nodelay`; of subscriptions (several filters, 5.0 options, `-U`, `-E`, `--quiet`)
/// receiving retained messages at QoS 0 and 1; and of a request that times out.
fn debug_suite(port: &str) {
    let p = port;
    // Retained messages for the subscribers.
    golden(
        "pub",
        &[
            "-p", p, "-i", "dbg-p", "-d", "-t", "dbg/a", "-m", "one", "-r", "-q", "1",
        ],
        None,
    );
    golden(
        "pub",
        &[
            "-p", p, "-i", "dbg-p", "-d", "-t", "dbg/b", "-m", "two", "-r", "-q", "2", "-V", "5",
        ],
        None,
    );
    for args in [
        &["-t", "dbg/x", "-m", "hello"][..],
        &["-t", "dbg/x", "-m", "hello", "-q", "1", "-V", "31"],
        &["-t", "dbg/x", "-n", "-q", "2", "--repeat", "3"],
        &[
            "-t",
            "dbg/x",
            "-m",
            "hello",
            "-q",
            "1",
            "-V",
            "5",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ],
        &["-t", "dbg/x", "-m", "hello", "-q", "1", "--nodelay"],
    ] {
        let mut full = vec!["-p", p, "-i", "dbg-p", "-d"];
        full.extend_from_slice(args);
        golden("pub", &full, None);
    }
    golden(
        "pub",
        &[
            "-p", p, "-i", "dbg-p", "-d", "-t", "dbg/l", "-l", "-q", "1", "-M", "1",
        ],
        Some(b"a\nbb\nccc\n"),
    );
    golden(
        "pub",
        &[
            "-p", p, "-i", "dbg-p", "-d", "-t", "dbg/l", "-l", "-q", "2", "-M", "1",
        ],
        Some(b"a\nbb\n"),
    );
    for args in [
        &["-t", "dbg/a", "-C", "1", "-v"][..],
        &["-t", "dbg/a", "-t", "dbg/b", "-q", "1", "-C", "2"],
        &["-t", "dbg/+", "-q", "1", "-C", "1"],
        &[
            "-t", "dbg/b", "-q", "1", "-C", "1", "-V", "5", "-F", "%t %p %m",
        ],
        &[
            "-t",
            "dbg/none",
            "-E",
            "-R",
            "-V",
            "5",
            "--retain-as-published",
        ],
        &["-t", "dbg/none", "-E", "-q", "2", "--quiet"],
        &["-t", "dbg/none", "-W", "1", "-U", "dbg/#", "-V", "5"],
    ] {
        let mut full = vec!["-p", p, "-i", "dbg-s", "-d"];
        full.extend_from_slice(args);
        golden("sub", &full, None);
    }
    for args in [
        &["-t", "dbg/req", "-e", "dbg/resp", "-m", "hi", "-W", "1"][..],
        &[
            "-t", "dbg/req", "-e", "dbg/resp", "-m", "hi", "-W", "1", "-q", "1",
        ],
    ] {
        let mut full = vec!["-p", p, "-i", "dbg-r", "-d"];
        full.extend_from_slice(args);
        golden("rr", &full, None);
    }
    // Clean up the retained messages.
    for topic in ["dbg/a", "dbg/b"] {
        ok(midge("pub", &["-p", p, "-t", topic, "-n", "-r"]));
    }
}

#[test]
fn debug_log_matches_mosquitto_clients() {
    let broker = TestBroker::midge();
    debug_suite(&broker.port.to_string());
}

#[test]
fn debug_log_matches_mosquitto_clients_on_mosquitto_broker() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous true\n") else {
        return;
    };
    debug_suite(&broker.port.to_string());
}

/// A refused connection: the CONNACK's code in the log, then the error.
#[test]
fn debug_log_of_a_refused_connection() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous false\n") else {
        return;
    };
    let port = broker.port.to_string();
    for version in ["311", "5"] {
        golden(
            "pub",
            &[
                "-p", &port, "-i", "dbg-x", "-d", "-V", version, "-t", "a", "-m", "x",
            ],
            None,
        );
    }
}

/// An Authentication Method the broker does not know (`-D connect
/// authentication-method`): refused with 0x8C (140), as mosquitto_pub reports it.
#[test]
fn unknown_authentication_method_refused() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    golden(
        "pub",
        &[
            "-p",
            &port,
            "-i",
            "dbg-auth",
            "-d",
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "connect",
            "authentication-method",
            "x-unknown",
            "-D",
            "connect",
            "authentication-data",
            "abc",
        ],
        None,
    );
    let out = output(midge(
        "pub",
        &[
            "-p",
            &port,
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "connect",
            "authentication-data",
            "abc",
        ],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("needs an authentication-method"));
}

/// `-M n`: never more than n QoS 1/2 publications unacknowledged, and with n > 1 the
/// lines of `-l` do not wait for each other. Read from the `-d` log.
#[test]
fn max_inflight_bounds_the_publications_in_flight() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let lines: Vec<u8> = (0..50)
        .flat_map(|n| format!("line {n}\n").into_bytes())
        .collect();
    for (max, qos) in [(2, "1"), (3, "2"), (20, "1")] {
        let max_arg = max.to_string();
        let out = with_stdin(
            midge(
                "pub",
                &[
                    "-p", &port, "-d", "-t", "inflight", "-l", "-q", qos, "-M", &max_arg,
                ],
            ),
            &lines,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let log = text(&out.stdout);
        let mut in_flight = 0;
        let mut most = 0;
        let mut sent = 0;
        for line in log.lines() {
            if line.contains("sending PUBLISH") {
                in_flight += 1;
                sent += 1;
                most = most.max(in_flight);
            } else if line.contains("received PUBACK") || line.contains("received PUBCOMP") {
                in_flight -= 1;
            }
        }
        assert_eq!(sent, 50, "{log}");
        assert_eq!(in_flight, 0, "{log}");
        assert!(most <= max, "{most} in flight with -M {max}:\n{log}");
        assert!(most >= 2, "-M {max} never had two in flight:\n{log}");
    }
}

/// `-A`: the connection comes from the address given (127.0.0.2 is a loopback address
/// on Linux); every tool takes it.
#[test]
fn bind_address_is_the_source_of_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for tool in ["pub", "sub", "rr"] {
        let child = spawn(midge(
            tool,
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-A",
                "127.0.0.2",
                "-t",
                "a",
                "-e",
                "b",
                "-m",
                "x",
            ]
            .iter()
            .copied()
            .filter(|a| tool == "rr" || (*a != "-e" && *a != "b"))
            .filter(|a| tool != "sub" || (*a != "-m" && *a != "x"))
            .collect::<Vec<_>>(),
        ));
        let (mut stream, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.2", "{tool}");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(first[0], 0x10, "{tool}: a CONNECT");
        drop(stream);
        let out = wait(child);
        assert_eq!(out.status.code(), Some(1), "{tool}");
    }
}

/// `--proxy socks5h://[user[:password]@]host[:port]`: through a SOCKS5 proxy, which is
/// asked for the server by name; the same packet log as mosquitto_pub's and
/// mosquitto_sub's through the same proxy, and the same error when it refuses.
#[test]
fn through_a_socks5_proxy() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let open = SocksProxy::start(None);
    let url = format!("socks5h://127.0.0.1:{}", open.port);
    golden(
        "pub",
        &[
            "-p", &port, "-i", "px", "-d", "--proxy", &url, "-t", "px/a", "-m", "x", "-q", "1",
            "-r",
        ],
        None,
    );
    golden(
        "sub",
        &[
            "-p", &port, "-i", "px", "-d", "--proxy", &url, "-t", "px/a", "-C", "1", "-q", "1",
        ],
        None,
    );
    assert_eq!(
        *open.requests.lock().unwrap(),
        vec![format!("localhost:{port}"); 4]
    );

    let guarded = SocksProxy::start(Some(("user", "secret")));
    let url = format!("socks5h://user:secret@127.0.0.1:{}", guarded.port);
    golden(
        "pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-i",
            "px",
            "-d",
            "--proxy",
            &url,
            "-t",
            "px/b",
            "-m",
            "y",
        ],
        None,
    );
    assert_eq!(
        *guarded.requests.lock().unwrap(),
        vec![format!("127.0.0.1:{port}"); 2]
    );
    // Refused credentials: "Proxy error.", status 16 (MOSQ_ERR_PROXY), for every tool.
    let url = format!("socks5h://user:wrong@127.0.0.1:{}", guarded.port);
    for args in [
        &["pub", "-m", "x"][..],
        &["sub", "-W", "2"],
        &["rr", "-e", "px/r", "-m", "x", "-W", "2"],
    ] {
        let mut full = vec!["-p", &port, "--proxy", &url, "-t", "px/c"];
        full.extend_from_slice(&args[1..]);
        golden(args[0], &full, None);
    }
    ok(midge("pub", &["-p", &port, "-t", "px/a", "-n", "-r"]));
}
