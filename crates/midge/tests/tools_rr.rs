//! `midge rr` against the broker, and against `mosquitto_rr` (Debian's
//! mosquitto-clients 2.0): same output, messages and exit codes.

mod support;

use std::thread::sleep;
use std::time::Duration;

use support::*;

/// Runs the same `rr` command line with both tools; asserts identical output and exit.
fn golden(args: &[&str]) {
    support::golden("rr", args, None);
}

/// The response is printed as -v, -N and -F say; here it is a retained message on the
/// response topic, so both tools see the same one.
#[test]
fn response_printed_like_mosquitto_rr() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge(
        "pub",
        &[
            "-p",
            &port,
            "-t",
            "rr/resp",
            "-m",
            "the answer",
            "-r",
            "-q",
            "1",
        ],
    ));
    for extra in [
        &[][..],
        &["-v"],
        &["-v", "-N"],
        &["-N"],
        &["-F", "%t|%p|%l|%q|%r|%x"],
        &["-V", "311", "-v"],
        &["-q", "1", "-F", "%-10t|%5l"],
    ] {
        let mut args = vec![
            "-p",
            port.as_str(),
            "-t",
            "rr/req",
            "-e",
            "rr/resp",
            "-m",
            "q",
        ];
        args.extend_from_slice(extra);
        golden(&args);
    }
}

/// The request carries the Response Topic and Correlation Data (5.0).
#[test]
fn request_carries_response_topic_and_correlation_data() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let listener = spawn(midge(
        "sub",
        &[
            "-p", &port, "-V", "5", "-t", "rr/q", "-C", "1", "-F", "%R|%p|%D",
        ],
    ));
    sleep(Duration::from_millis(500));
    let out = output(midge(
        "rr",
        &[
            "-p", &port, "-t", "rr/q", "-e", "rr/r", "-m", "ping", "-W", "1",
        ],
    ));
    assert_eq!(out.status.code(), Some(27));
    assert_eq!(text(&out.stderr), "Timed out\n");
    let seen = text(&wait(listener).stdout);
    assert!(seen.starts_with("rr/r|ping|midge-rr-"), "{seen}");
}

/// -W with no response: "Timed out", exit 27; usage errors as mosquitto_rr.
#[test]
fn timeout_and_usage_errors_match_mosquitto_rr() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    golden(&[
        "-p", &port, "-t", "rr/x", "-e", "rr/none", "-m", "x", "-W", "1",
    ]);
    golden(&[
        "-p", &port, "-t", "rr/x", "-e", "rr/none", "-n", "-W", "1", "-v",
    ]);
    for args in [
        &["-t", "a"][..],
        &["-t", "a", "-e", "b"],
        &["-e", "b", "-m", "x"],
        &["-t", "a", "-e", "b/#", "-m", "x"],
        &["-t", "a", "-e", "b", "-m", "x", "-C", "2"],
        &["-t", "a", "-e", "b", "-m", "x", "-W", "0"],
        &["-t", "a", "-e", "b", "-m", "x", "-F", "%z"],
    ] {
        golden(args);
    }
}

/// A refused connection against Debian's mosquitto: same words and exit code.
#[test]
fn refused_by_mosquitto_broker() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous false\n") else {
        return;
    };
    let port = broker.port.to_string();
    golden(&["-p", &port, "-t", "a", "-e", "b", "-m", "x"]);
    golden(&["-p", &port, "-t", "a", "-e", "b", "-m", "x", "-V", "311"]);
}
