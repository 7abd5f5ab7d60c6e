//! `midge sub` against the broker, and byte for byte against `mosquitto_sub` (Debian's
//! mosquitto-clients 2.0): the same command lines, the same broker, the same messages
//! give the same output and exit code. Messages are published retained by
//! `mosquitto_pub`, so that both subscribers see the same ones, properties included.

mod support;

use std::thread::sleep;
use std::time::Duration;

use support::*;

/// Publishes the reference messages, retained, with MQTT 5.0 properties.
fn publish_fixtures(port: &str, dir: &TempDir) -> bool {
    let bin = dir.path.join("bin");
    std::fs::write(&bin, b"\x00\x01\xfe\xffA\n").unwrap();
    let bin = bin.to_str().unwrap().to_owned();
    let fixtures: [Vec<&str>; 3] = [
        vec!["-t", "golden/plain", "-m", "hello world"],
        vec!["-t", "golden/bin", "-f", &bin],
        [
            &["-t", "golden/props", "-m", "{\"a\":1}"][..],
            &properties(&[
                ("publish", "content-type", &["application/json"]),
                ("publish", "response-topic", &["reply/here"]),
                ("publish", "correlation-data", &["corr-17"]),
                ("publish", "payload-format-indicator", &["1"]),
                ("publish", "user-property", &["k1", "v1"]),
                ("publish", "user-property", &["k2", "v two"]),
            ]),
        ]
        .concat(),
    ];
    for args in fixtures {
        let Some(mut command) = mosquitto("pub", &["-p", port, "-V", "5", "-r", "-q", "1"]) else {
            return false;
        };
        command.args(&args);
        ok(command);
    }
    true
}

/// Runs the same `sub` command line with both tools (`-p port` first) and asserts
/// identical stdout, stderr and exit code.
fn golden(port: &str, args: &[&str]) {
    let mut full = vec!["-p", port];
    full.extend_from_slice(args);
    support::golden("sub", &full, None);
}

/// Every -F code that depends neither on the time nor on broker-chosen ids, with flags,
/// widths, precisions and escapes; -v, -N, the default output; -C, -R, -T,
/// --retained-only, -W, against the same retained messages.
#[test]
fn output_matches_mosquitto_sub() {
    let broker = TestBroker::midge();
    golden_suite(&broker.port.to_string());
}

/// The same comparison with Debian's mosquitto as the broker.
#[test]
fn output_matches_mosquitto_sub_on_mosquitto_broker() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous true\n") else {
        return;
    };
    golden_suite(&broker.port.to_string());
}

fn golden_suite(port: &str) {
    let port = port.to_owned();
    let dir = TempDir::new();
    if !publish_fixtures(&port, &dir) {
        return;
    }
    let formats = [
        "%t %p %l %q %r",
        "%x|%X",
        "%C|%D|%R|%F|%P",
        "[%A|%5A|%05S|%E|%-4F|%8C]",
        "%-12t|%12t|%.3t|%12.3t|%-12.3t|%05l|%-5l|%5l",
        "%10p|%-10p|%010p|%3p|%14x|%-14X|%4x",
        "\\t\\n\\\\\\a\\e\\r\\v\\0%%@@",
        "%%%-5%|%05%",
        // Time codes that change at most once a day (TZ=UTC for both tools).
        "@Y-@m-@d|@a|@A|@b|@B|@C|@y|@e|@j|@u|@w|@Z|@z|@D|@F|@x|@G|@g|@V|@U|@W|@@",
    ];
    for topic in ["golden/plain", "golden/bin", "golden/props"] {
        for format in formats {
            golden(&port, &["-V", "5", "-C", "1", "-t", topic, "-F", format]);
            golden(
                &port,
                &["-V", "5", "-C", "1", "-t", topic, "-F", format, "-N"],
            );
        }
        golden(&port, &["-C", "1", "-t", topic]);
        golden(&port, &["-C", "1", "-t", topic, "-v"]);
        golden(&port, &["-C", "1", "-t", topic, "-v", "-N"]);
        golden(&port, &["-C", "1", "-t", topic, "-N"]);
        golden(
            &port,
            &["-C", "1", "-t", topic, "-F", "%t %p", "-V", "mqttv311"],
        );
        golden(&port, &["-C", "1", "-t", topic, "-F", "%t %p", "-V", "31"]);
        // -R: retained messages are not printed; -W then times out (exit 27).
        golden(&port, &["-W", "1", "-R", "-t", topic, "-v"]);
        // --retained-only prints the retained message, then waits (-W).
        golden(&port, &["-W", "1", "--retained-only", "-t", topic, "-v"]);
    }
    // -T filters out; -t is repeatable.
    golden(
        &port,
        &[
            "-C",
            "1",
            "-v",
            "-t",
            "golden/#",
            "-T",
            "golden/bin",
            "-T",
            "golden/props",
        ],
    );
    golden(
        &port,
        &["-C", "1", "-v", "-t", "golden/plain", "-t", "nothing/here"],
    );
}

/// Usage errors: same message and exit code as mosquitto_sub.
#[test]
fn usage_errors_match_mosquitto_sub() {
    for args in [
        &["-p", "1883"][..],
        &["-v"],
        &["-t", "a", "-C", "-W", "1"],
        &["-t", "a", "-C", "0"],
        &["-t", "a", "-W", "0"],
        &["-t", "a", "-W"],
        &["-t", "a#"],
        &["-t", "a", "-q", "3"],
        &["-t", "a", "-k", "2"],
        &["-t", "a", "-V", "6"],
        &["-t", "a", "-c"],
        &["-t", "a", "-Z"],
        &["-t", "a", "-i", "x", "-I", "y"],
        &["-t", "a", "--will-payload", "x"],
        &["-t", "a", "-V", "5", "-c"],
        &["-t", "a", "-V", "5", "-c", "-x", "10"],
        &["-t", "a", "-F", "%-"],
        &["-t", "a", "-F", "%"],
        &["-t", "a", "-F", "%.1"],
        &["-t", "a", "-F", "%05"],
        &["-t", "a", "-F", "trailing @"],
        &["-t", "a", "-F", "\\q"],
        &["-t", "a", "-F", "\\"],
        &["-t", "a", "-F", "%z"],
        &["-t", "a", "-p", "70000"],
        &["-t", "a", "-L", "mqtt://localhost"],
    ] {
        same_errors("sub", args);
    }
}

/// Live messages: -C counts them, an empty payload prints "(null)" with -v, QoS 1 and
/// 2 arrive; both tools print the same.
#[test]
fn live_messages_match_mosquitto_sub() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let args = ["-p", &port, "-t", "live/#", "-C", "4", "-v", "-q", "2"];
    let Some(reference) = mosquitto("sub", &args) else {
        return;
    };
    let reference = spawn(reference);
    let ours = spawn(midge("sub", &args));
    sleep(Duration::from_millis(800));
    for (topic, extra) in [
        ("live/1", &["-m", "one"][..]),
        ("live/2", &["-n"]),
        ("live/3", &["-m", "three", "-q", "1"]),
        ("live/4", &["-m", "four", "-q", "2"]),
    ] {
        let mut command = midge("pub", &["-p", &port, "-t", topic]);
        command.args(extra);
        ok(command);
    }
    let expected = wait(reference);
    let actual = wait(ours);
    assert_eq!(text(&actual.stdout), text(&expected.stdout));
    assert_eq!(
        text(&actual.stdout),
        "live/1 one\nlive/2 (null)\nlive/3 three\nlive/4 four\n"
    );
    assert_eq!(actual.status.code(), Some(0));
}

/// -E: subscribe, then exit 0 without waiting for messages.
#[test]
fn exit_after_subscribe() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let out = ok(midge("sub", &["-p", &port, "-t", "a/b", "-E", "-v"]));
    assert!(out.stdout.is_empty());
}

/// -U: the subscription is removed again, so the retained message is not delivered
/// after it; -E ends the run.
#[test]
fn unsubscribe_option() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge("sub", &["-p", &port, "-t", "u/#", "-U", "u/#", "-E"]));
}

/// --remove-retained: each retained message received is cleared.
#[test]
fn remove_retained_clears_messages() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge(
        "pub",
        &["-p", &port, "-t", "keep/me", "-m", "x", "-r", "-q", "1"],
    ));
    let out = ok(midge(
        "sub",
        &[
            "-p",
            &port,
            "-t",
            "keep/me",
            "-C",
            "1",
            "--remove-retained",
            "-v",
        ],
    ));
    assert_eq!(text(&out.stdout), "keep/me x\n");
    sleep(Duration::from_millis(300));
    let out = output(midge(
        "sub",
        &["-p", &port, "-t", "keep/me", "-W", "1", "-v"],
    ));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(27));
    assert_eq!(text(&out.stderr), "Timed out\n");
}

/// The options file ~/.config/midge/sub supplies options, one per line.
#[test]
fn options_file_is_read() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge("pub", &["-p", &port, "-t", "cfg/t", "-m", "v", "-r"]));
    let home = TempDir::home_with_options("sub", &format!("# comment\n-p {port}\n-v\n-F %t=%p\n"));
    let mut command = midge("sub", &["-t", "cfg/t", "-C", "1"]);
    command.env("HOME", &home.path);
    let out = ok(command);
    assert_eq!(text(&out.stdout), "cfg/t=v\n");
}

/// `%J` is refused rather than printed differently; the time codes
/// are refused where local time is not UTC.
#[test]
fn unsupported_format_codes_are_refused() {
    for format in ["%J %t", "%I %t"] {
        let mut command = midge("sub", &["-t", "a", "-F", format]);
        command.env("TZ", "Europe/Paris");
        let out = output(command);
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(
            text(&out.stderr).contains("only supported yet when local time is UTC"),
            "{format}: {}",
            text(&out.stderr)
        );
    }
}

/// %I, %U and @ codes print the current time (UTC), in mosquitto_sub's layout.
#[test]
fn time_codes() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge("pub", &["-p", &port, "-t", "tm", "-m", "x", "-r"]));
    let out = ok(midge(
        "sub",
        &[
            "-p",
            &port,
            "-t",
            "tm",
            "-C",
            "1",
            "-F",
            "%I|%U|@s.@N|@H:@M:@S|@T|@c",
        ],
    ));
    let line = text(&out.stdout);
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{line}");
    assert!(
        fields[0].len() == 24 && fields[0].ends_with("+0000"),
        "{line}"
    );
    assert!(
        fields[1].len() > 11 && fields[1].as_bytes()[10] == b'.',
        "{line}"
    );
    assert_eq!(fields[2].split('.').nth(1).map(str::len), Some(9), "{line}");
    assert_eq!(fields[3], fields[4], "{line}");
    assert_eq!(&fields[0][11..19], fields[3], "{line}");
}

/// Against Debian's mosquitto broker: subscribe, receive, and a refused connection
/// reported in words with the CONNACK code as exit status.
#[test]
fn against_mosquitto_broker() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous true\n") else {
        return;
    };
    let port = broker.port.to_string();
    ok(midge(
        "pub",
        &["-p", &port, "-t", "m/t", "-m", "from midge", "-r"],
    ));
    for version in ["31", "311", "5"] {
        let out = ok(midge(
            "sub",
            &["-p", &port, "-t", "m/#", "-C", "1", "-v", "-V", version],
        ));
        assert_eq!(text(&out.stdout), "m/t from midge\n");
    }
    let Some(closed) = TestBroker::mosquitto("allow_anonymous false\n") else {
        return;
    };
    let port = closed.port.to_string();
    let out = output(midge("sub", &["-p", &port, "-t", "a"]));
    assert_eq!(
        text(&out.stderr),
        "Connection error: Connection Refused: not authorised.\n"
    );
    assert_eq!(out.status.code(), Some(5));
    let out = output(midge("sub", &["-p", &port, "-t", "a", "-V", "5"]));
    assert_eq!(text(&out.stderr), "Connection error: Not authorized\n");
    assert_eq!(out.status.code(), Some(135));
}

/// -c with -i and -q 1: the session persists; a message published while the
/// subscriber is away is delivered when it comes back.
#[test]
fn persistent_session() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let sub = ["-p", &port, "-c", "-i", "keeper", "-q", "1", "-t", "s/#"];
    let mut first = sub.to_vec();
    first.push("-E");
    ok(midge("sub", &first));
    ok(midge(
        "pub",
        &["-p", &port, "-t", "s/1", "-m", "queued", "-q", "1"],
    ));
    let mut second = sub.to_vec();
    second.extend(["-C", "1", "-v"]);
    assert_eq!(text(&ok(midge("sub", &second)).stdout), "s/1 queued\n");
}

/// --random-filter: 100 prints everything; bad chances are refused as mosquitto_sub
/// refuses them.
#[test]
fn random_filter() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    ok(midge("pub", &["-p", &port, "-t", "rf", "-m", "x", "-r"]));
    let out = ok(midge(
        "sub",
        &["-p", &port, "-t", "rf", "-C", "1", "--random-filter", "100"],
    ));
    assert_eq!(text(&out.stdout), "x\n");
    for chance in ["0", "abc", "1001"] {
        same_errors("sub", &["-t", "a", "--random-filter", chance]);
    }
}

/// --retain-as-published keeps the retain flag on a live retained message (%r).
#[test]
fn retain_as_published() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let sub = spawn(midge(
        "sub",
        &[
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "rap",
            "-C",
            "1",
            "-F",
            "%r",
            "--retain-as-published",
        ],
    ));
    sleep(Duration::from_millis(500));
    ok(midge("pub", &["-p", &port, "-t", "rap", "-m", "x", "-r"]));
    assert_eq!(text(&wait(sub).stdout), "1\n");
}

/// A lost connection is retried, as mosquitto_sub does: the broker restarts, `midge
/// sub` reconnects, subscribes again and goes on counting.
#[test]
fn reconnects_after_lost_connection() {
    let Some(broker) = TestBroker::mosquitto("allow_anonymous true\n") else {
        return;
    };
    let port = broker.port;
    let p = port.to_string();
    let sub = spawn(midge("sub", &["-p", &p, "-t", "lost/#", "-C", "2", "-v"]));
    sleep(Duration::from_millis(500));
    ok(midge("pub", &["-p", &p, "-t", "lost/1", "-m", "before"]));
    drop(broker);
    sleep(Duration::from_millis(300));
    let _broker = TestBroker::mosquitto_on(port, "allow_anonymous true\n").unwrap();
    sleep(Duration::from_millis(2500));
    ok(midge("pub", &["-p", &p, "-t", "lost/2", "-m", "after"]));
    let out = wait(sub);
    assert_eq!(text(&out.stdout), "lost/1 before\nlost/2 after\n");
    assert_eq!(out.status.code(), Some(0));
}

/// The `tst` value of `%j` output replaced, so that two runs compare.
fn mask_tst(output: &[u8]) -> String {
    let text = text(output);
    let mut masked = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"tst\":") {
        let (head, tail) = rest.split_at(at + 6);
        masked.push_str(head);
        let tail = tail.trim_start_matches('\t');
        let end = tail[1..].find('"').map_or(tail.len(), |e| e + 2);
        masked.push_str("TST");
        rest = &tail[end..];
    }
    masked.push_str(rest);
    masked
}

/// `%j` (and with --pretty) as mosquitto_sub prints it, bar the timestamp, on 3.1.1 and
/// 5.0 (where the properties are included).
#[test]
fn json_format_matches_mosquitto_sub() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let dir = TempDir::new();
    if !publish_fixtures(&port, &dir) {
        return;
    }
    for topic in ["golden/plain", "golden/bin", "golden/props"] {
        for extra in [
            &["-F", "%j"][..],
            &["-F", "%j", "--pretty"],
            &["-F", "%j|%t", "-V", "5"],
            &["-F", "%j", "-V", "5", "--pretty", "-q", "1"],
        ] {
            let args = [&["-p", port.as_str(), "-t", topic, "-C", "1"], extra].concat();
            let (expected, actual) = run_both("sub", &args, None);
            assert!(expected.status.success(), "mosquitto_sub {args:?}");
            assert!(actual.status.success(), "{}", text(&actual.stderr));
            assert_eq!(
                mask_tst(&actual.stdout),
                mask_tst(&expected.stdout),
                "{args:?}"
            );
            let line = text(&actual.stdout);
            let tst = line
                .split("\"tst\":")
                .nth(1)
                .unwrap()
                .trim_start_matches('\t');
            assert!(
                tst.starts_with("\"20") && tst[1..].find('"') == Some(32),
                "{line}"
            );
        }
    }
}

/// `%J` (the payload parsed as JSON and embedded as a value) as mosquitto_sub prints it
/// through cJSON, bar the timestamp: objects, arrays, numbers in cJSON's layout,
/// escapes, duplicate keys, `--pretty`, 5.0 properties; a payload that is not JSON
/// prints nothing for `%J` and an error on standard error, and still counts for `-C`.
#[test]
fn parsed_json_format_matches_mosquitto_sub() {
    let broker = TestBroker::midge();
    let port = broker.port.to_string();
    let fixtures = [
        (
            "json/object",
            r#"{"a": [1, 2.5, "x"], "b": null, "a": {"deep": [[], {}]}}"#,
        ),
        (
            "json/numbers",
            "[1e10, 0.1, 1.5e300, 123456789012, 3.0, 01, 1., 1e999, 2.5e-7, 1234567.25]",
        ),
        ("json/scalar", " 42 "),
        ("json/string", r#""tab\there \u00e9 \ud83d\ude00 \/""#),
        ("json/invalid", "{not json}"),
        ("json/trailing", "[1] [2]"),
    ];
    for (topic, payload) in fixtures {
        let Some(mut command) = mosquitto("pub", &["-p", &port, "-r", "-t", topic, "-m", payload])
        else {
            return;
        };
        command.args(["-V", "5"]);
        command.args(properties(&[(
            "publish",
            "content-type",
            &["application/json"],
        )]));
        ok(command);
    }
    for (topic, _) in fixtures {
        for extra in [
            &["-F", "%J"][..],
            &["-F", "<%J>", "--pretty"],
            &["-F", "%J", "-V", "5", "-q", "1"],
            &["-F", "%J", "-V", "5", "--pretty"],
        ] {
            let args = [&["-p", port.as_str(), "-t", topic, "-C", "1"], extra].concat();
            let (expected, actual) = run_both("sub", &args, None);
            assert_eq!(
                mask_tst(&actual.stdout),
                mask_tst(&expected.stdout),
                "{args:?}"
            );
            assert_eq!(
                text(&actual.stderr),
                text(&expected.stderr),
                "stderr of {args:?}"
            );
            assert_eq!(actual.status.code(), expected.status.code(), "{args:?}");
        }
    }
}
