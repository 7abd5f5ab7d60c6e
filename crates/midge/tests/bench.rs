//! `midge bench` as a user runs it: the real binary against a `midge serve` on a free
//! port, one short run per scenario, checking that the JSON report is sane.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{MIDGE, Server, TempDir, free_port};

/// A `midge serve` on a free loopback port, killed on drop.
struct Broker {
    _server: Server,
    port: u16,
    _dir: TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = TempDir::new();
        let port = free_port();
        let mut server = Server::start(&dir, &["-p", &port.to_string()]);
        drop(server.connect(port));
        Broker {
            _server: server,
            port,
            _dir: dir,
        }
    }

    /// Runs `midge bench ARGS --json` against this broker and parses its report.
    fn bench(&self, args: &[&str]) -> Value {
        let port = self.port.to_string();
        let out = Command::new(MIDGE)
            .arg("bench")
            .args(args)
            .args(["-p", &port, "-d", "1", "--json", "--quiet"])
            .output()
            .expect("midge bench runs");
        assert!(
            out.status.success(),
            "midge bench {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the report is JSON")
    }
}

fn u(report: &Value, path: &str) -> u64 {
    report
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {report}"))
}

fn f(report: &Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {report}"))
}

/// Delivery at QoS 1 and 2 (both versions) loses and duplicates nothing. The rate is
/// capped: a broker acknowledges a PUBLISH once routed, so an unthrottled publisher can
/// overflow a subscriber's bounded queue (1,000 messages by default, as in Mosquitto),
/// and the broker then drops messages, as documented.
#[test]
fn pairs_lose_nothing_at_qos_1_and_2() {
    let broker = Broker::start();
    for (qos, version) in [("1", "311"), ("2", "5")] {
        let r = broker.bench(&[
            "pairs", "-c", "4", "-q", qos, "-V", version, "-s", "64", "-r", "500",
        ]);
        assert_eq!(r["scenario"], "pairs");
        assert_eq!(u(&r, "/connections/established"), 8);
        let sent = u(&r, "/messages/sent");
        assert!(sent > 0, "{r}");
        assert_eq!(u(&r, "/messages/acked"), sent, "{r}");
        assert_eq!(u(&r, "/messages/received"), sent, "{r}");
        assert_eq!(u(&r, "/messages/lost"), 0, "{r}");
        assert_eq!(u(&r, "/messages/duplicated"), 0, "{r}");
        assert_eq!(u(&r, "/latency/count"), sent, "{r}");
        let p50 = f(&r, "/latency/p50_us");
        assert!(p50 > 0.0 && p50 <= f(&r, "/latency/p99_us"), "{r}");
        assert!(f(&r, "/latency/p99_us") <= f(&r, "/latency/max_us"), "{r}");
    }
}

/// Many publishers, one wildcard subscriber; a rate limit holds.
#[test]
fn fan_in_delivers_to_the_wildcard_subscriber() {
    let broker = Broker::start();
    let r = broker.bench(&["fan-in", "-c", "4", "-q", "1", "-r", "200"]);
    assert_eq!(u(&r, "/publishers"), 4);
    assert_eq!(u(&r, "/subscribers"), 1);
    let sent = u(&r, "/messages/sent");
    // 4 publishers at 200/s for about a second.
    assert!((400..=1200).contains(&sent), "{r}");
    assert_eq!(u(&r, "/messages/received"), sent, "{r}");
    assert_eq!(u(&r, "/messages/lost"), 0, "{r}");
}

/// One publisher, many subscribers: each gets every message.
#[test]
fn fan_out_delivers_each_message_to_every_subscriber() {
    let broker = Broker::start();
    let r = broker.bench(&["fan-out", "-c", "5", "-q", "1", "-s", "1024", "-r", "500"]);
    let sent = u(&r, "/messages/sent");
    assert!(sent > 0, "{r}");
    assert_eq!(u(&r, "/messages/expected"), 5 * sent, "{r}");
    assert_eq!(u(&r, "/messages/received"), 5 * sent, "{r}");
    assert_eq!(u(&r, "/messages/lost"), 0, "{r}");
}

/// Shared subscriptions: each group gets each message once.
#[test]
fn shared_groups_get_each_message_once() {
    let broker = Broker::start();
    let r = broker.bench(&[
        "shared",
        "-c",
        "6",
        "--groups",
        "2",
        "--publishers",
        "2",
        "-q",
        "1",
        "-V",
        "5",
        "-r",
        "500",
    ]);
    let sent = u(&r, "/messages/sent");
    assert!(sent > 0, "{r}");
    assert_eq!(u(&r, "/messages/received"), 2 * sent, "{r}");
    assert_eq!(u(&r, "/messages/lost"), 0, "{r}");
    assert_eq!(u(&r, "/messages/duplicated"), 0, "{r}");
}

/// QoS 0 unthrottled: messages flow; loss is reported, not asserted (QoS 0 may drop).
#[test]
fn qos0_pub_and_pairs_report_rates() {
    let broker = Broker::start();
    let r = broker.bench(&["pub", "-c", "2"]);
    assert!(u(&r, "/messages/sent") > 0, "{r}");
    assert!(f(&r, "/messages/sent_per_second") > 0.0, "{r}");
    assert!(r["messages"]["lost"].is_null(), "{r}");
    let r = broker.bench(&["pairs", "-c", "2", "-q", "0"]);
    assert!(u(&r, "/messages/received") > 0, "{r}");
    assert!(u(&r, "/messages/lost") <= u(&r, "/messages/sent"), "{r}");
}

/// Connections at a given rate, from two source addresses, held for the duration.
#[test]
fn conn_opens_connections_at_a_rate() {
    let broker = Broker::start();
    let r = broker.bench(&[
        "conn",
        "-c",
        "40",
        "--conn-rate",
        "200",
        "--bind",
        "127.0.0.1,127.0.0.2",
    ]);
    assert_eq!(u(&r, "/connections/established"), 40, "{r}");
    assert_eq!(u(&r, "/connections/failed"), 0, "{r}");
    let rate = f(&r, "/connections/per_second");
    // About 200/s; a loaded machine may connect more slowly, never faster.
    assert!(rate > 50.0 && rate < 250.0, "{r}");
    assert_eq!(u(&r, "/connections/latency/count"), 40, "{r}");
}

/// `sub` counts what others publish; a bad option is refused.
#[test]
fn sub_runs_and_bad_options_fail() {
    let broker = Broker::start();
    let r = broker.bench(&["sub", "-c", "2", "-t", "other/#"]);
    assert_eq!(u(&r, "/connections/established"), 2);
    assert_eq!(u(&r, "/messages/received"), 0);
    let out = Command::new(MIDGE)
        .args(["bench", "pairs", "-s", "8", "-p", &broker.port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size"));
}
