//! Interoperability with the real Mosquitto command-line clients.
//!
//! Each test starts the broker in-process on `127.0.0.1:0` and drives the
//! `mosquitto_pub` / `mosquitto_sub` binaries of the Debian package `mosquitto-clients`
//! (which `scripts/test` installs) against it, for protocol versions 3.1 (`-V 31`),
//! 3.1.1 (`-V 311`) and 5.0 (`-V 5`). A missing binary fails the test: it is not skipped.
//!
//! How the tests stay deterministic without sleeping for the broker:
//! - every `mosquitto_sub` runs with `-d`; its debug line `Subscribed (mid: …)` says the
//!   SUBACK arrived, and only then does the test publish (the clients run under
//!   `stdbuf -oL`: to a pipe, they would flush their debug lines only at exit);
//! - messages are printed with `-F "MSG %t %q %r %p"` (topic, QoS, retain flag, payload),
//!   so the assertions check the exact messages, in order, and ignore the debug lines;
//! - "nothing arrives" is checked with a sentinel: a later message on the same
//!   connection must be the first (and only) one printed;
//! - every process runs under a deadline ([`DEADLINE`]) and is killed when dropped, and
//!   every `mosquitto_sub` also gets `-W`, so no test can hang.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use midge_broker::{Broker, BrokerHandle, Config};
use tokio::sync::mpsc;

/// Longest time any single client process may take.
const DEADLINE: Duration = Duration::from_secs(10);
/// `mosquitto_sub -W`: Mosquitto's own timeout, a second line of defence.
const SUB_TIMEOUT_SECS: &str = "8";
/// What `mosquitto_sub` prints for each message.
const FORMAT: &str = "MSG %t %q %r %p";
/// Prefix of the lines printed through [`FORMAT`].
const MSG: &str = "MSG ";

/// A protocol version, as `mosquitto_pub`/`mosquitto_sub -V` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V31,
    V311,
    V5,
}

impl Version {
    fn arg(self) -> &'static str {
        match self {
            Version::V31 => "31",
            Version::V311 => "311",
            Version::V5 => "5",
        }
    }
}

async fn start_broker() -> BrokerHandle {
    Broker::start(Config::local_ephemeral())
        .await
        .expect("broker starts on 127.0.0.1:0")
}

/// The path of `program` in `$PATH`; panics (the test fails, it is not skipped) when
/// there is none.
fn find_in_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed: install the Debian package mosquitto-clients \
                 (scripts/test does)"
            )
        })
}

/// A running client process; killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
struct Client {
    /// For messages: the command line.
    what: String,
    child: Child,
    /// Lines of stdout, sent by a reader thread; closed at end of file.
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stdout line received so far (the transcript, for failure messages).
    seen: Vec<String>,
    /// Collects stderr to the end.
    stderr: Option<JoinHandle<String>>,
}

/// A client process that has exited.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    /// The lines printed through [`FORMAT`], prefix removed, in order.
    messages: Vec<String>,
    transcript: String,
}

impl Client {
    /// Starts `program` with `args`; `-p PORT` and `-V VERSION` are added. Its stdout
    /// is line-buffered (`stdbuf -oL`): Mosquitto's clients flush the debug lines only
    /// at exit when writing to a pipe.
    fn spawn(program: &str, addr: SocketAddr, version: Version, args: &[&str]) -> Client {
        let path = find_in_path(program);
        let mut command = Command::new("stdbuf");
        command
            .arg("-oL")
            .arg(path)
            .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
            .args(["-V", version.arg()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Client {
            what,
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// `mosquitto_sub -d -F FORMAT -W … ARGS`; returns once its SUBACK has arrived.
    async fn subscriber(addr: SocketAddr, version: Version, args: &[&str]) -> Client {
        let mut all = vec!["-d", "-F", FORMAT, "-W", SUB_TIMEOUT_SECS];
        all.extend_from_slice(args);
        let mut sub = Client::spawn("mosquitto_sub", addr, version, &all);
        sub.wait_for_line(|line| line.starts_with("Subscribed (mid:"))
            .await;
        sub
    }

    /// Reads stdout until a line satisfies `done`; panics at the deadline or at the end
    /// of the output.
    async fn wait_for_line(&mut self, done: impl Fn(&str) -> bool) {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                let found = done(&line);
                self.seen.push(line);
                if found {
                    return true;
                }
            }
            false
        };
        let found = tokio::time::timeout(DEADLINE, wait).await;
        if found != Ok(true) {
            let transcript = self.seen.join("\n");
            panic!(
                "{}: expected line not printed ({}):\n{transcript}",
                self.what,
                if found.is_err() {
                    "deadline passed"
                } else {
                    "output ended"
                }
            );
        }
    }

    /// Waits (up to the deadline) for the process to exit, and collects its output.
    async fn finish(mut self) -> Finished {
        let exited = tokio::time::timeout(DEADLINE, async {
            loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => return status,
                    Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(e) => panic!("{}: cannot wait: {e}", self.what),
                }
            }
        })
        .await;
        // The reader thread closes the channel at end of file, i.e. once the process
        // (and any child holding the pipe) has gone.
        let _ = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line);
            }
        })
        .await;
        let stderr = self
            .stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        let transcript = format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            self.what,
            self.seen.join("\n")
        );
        let Ok(status) = exited else {
            panic!("process did not exit within {DEADLINE:?}: {transcript}");
        };
        let messages = self
            .seen
            .iter()
            .filter_map(|line| line.strip_prefix(MSG))
            .map(str::to_owned)
            .collect();
        Finished {
            status,
            messages,
            transcript,
        }
    }

    /// SIGKILL: the connection ends without DISCONNECT.
    fn kill(&mut self) {
        self.child.kill().expect("kill the client");
        self.child.wait().expect("reap the client");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Finished {
    /// Asserts a zero exit status and returns the messages.
    fn ok(self) -> Vec<String> {
        assert!(
            self.status.success(),
            "exit {}: {}",
            self.status,
            self.transcript
        );
        self.messages
    }
}

/// `mosquitto_pub ARGS`, with `stdin` written to its standard input (for `-l`); asserts
/// that it exits with status 0 (for QoS 1 and 2: every message acknowledged).
async fn publish(addr: SocketAddr, version: Version, args: &[&str], stdin: &str) {
    let mut client = Client::spawn("mosquitto_pub", addr, version, args);
    let mut input = client.child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("write mosquitto_pub's stdin");
    drop(input);
    client.finish().await.ok();
}

/// Publishes one message with `mosquitto_pub -t TOPIC -q QOS -m PAYLOAD EXTRA…`; an
/// empty payload is sent with `-n` (a zero-length message).
async fn publish_one(
    addr: SocketAddr,
    version: Version,
    topic: &str,
    qos: u8,
    payload: &str,
    extra: &[&str],
) {
    let qos = qos.to_string();
    let mut args = vec!["-t", topic, "-q", &qos];
    if payload.is_empty() {
        args.push("-n");
    } else {
        args.extend_from_slice(&["-m", payload]);
    }
    args.extend_from_slice(extra);
    publish(addr, version, &args, "").await;
}

/// The expected [`FORMAT`] line of one message.
fn msg(topic: &str, qos: u8, retain: bool, payload: &str) -> String {
    format!("{topic} {qos} {} {payload}", u8::from(retain))
}

// ---------------------------------------------------------------------------------------
// Publish / subscribe at each QoS
// ---------------------------------------------------------------------------------------

/// For QoS 0, 1 and 2: `mosquitto_sub -q Q -C 3` on `t/#` receives exactly the three
/// messages `mosquitto_pub -q Q -l` sends on `t/<Q>`, in order, at QoS Q, not retained;
/// the publisher exits 0 (QoS 1 and 2: every PUBACK / PUBREC+PUBCOMP arrived).
async fn publish_subscribe_each_qos(version: Version) {
    let broker = start_broker().await;
    let addr = broker.local_addr();
    for qos in 0..=2u8 {
        let q = qos.to_string();
        let topic = format!("t/{qos}");
        let sub = Client::subscriber(addr, version, &["-t", "t/#", "-q", &q, "-C", "3"]).await;
        publish(
            addr,
            version,
            &["-t", &topic, "-q", &q, "-l"],
            "one\ntwo\nthree\n",
        )
        .await;
        let expected: Vec<_> = ["one", "two", "three"]
            .iter()
            .map(|p| msg(&topic, qos, false, p))
            .collect();
        assert_eq!(sub.finish().await.ok(), expected, "{version:?} QoS {qos}");
    }
    broker.shutdown().await;
}

/// The delivered QoS is the minimum of the published QoS and the subscription's: QoS 2
/// published to a QoS 1 subscription arrives at QoS 1, QoS 1 published to a QoS 2
/// subscription at QoS 1.
async fn delivered_qos_is_minimum(version: Version) {
    let broker = start_broker().await;
    let addr = broker.local_addr();
    for (sub_qos, pub_qos) in [(1u8, 2u8), (2, 1), (0, 2)] {
        let sq = sub_qos.to_string();
        let sub = Client::subscriber(addr, version, &["-t", "m/t", "-q", &sq, "-C", "1"]).await;
        publish_one(addr, version, "m/t", pub_qos, "x", &[]).await;
        assert_eq!(
            sub.finish().await.ok(),
            [msg("m/t", sub_qos.min(pub_qos), false, "x")],
            "{version:?}: subscribed at {sub_qos}, published at {pub_qos}"
        );
    }
    broker.shutdown().await;
}

/// conformance: v3.1.1 MQTT-3.3.4-1
/// conformance: v3.1.1 MQTT-4.3.1-1
/// conformance: v3.1.1 MQTT-4.3.2-2
/// conformance: v3.1.1 MQTT-4.3.3-2
/// conformance: v3.1.1 MQTT-4.6.0-6
#[tokio::test(flavor = "multi_thread")]
async fn v31_publish_subscribe_each_qos() {
    publish_subscribe_each_qos(Version::V31).await;
}

/// Mosquitto's own clients interoperate with Midge using nothing outside the
/// specification.
///
/// conformance: v3.1.1 MQTT-3.3.4-1
/// conformance: v3.1.1 MQTT-4.3.1-1
/// conformance: v3.1.1 MQTT-4.3.2-2
/// conformance: v3.1.1 MQTT-4.3.3-2
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v3.1.1 MQTT-7.0.0-2
#[tokio::test(flavor = "multi_thread")]
async fn v311_publish_subscribe_each_qos() {
    publish_subscribe_each_qos(Version::V311).await;
}

/// conformance: v5 MQTT-3.3.4-1
/// conformance: v5 MQTT-4.3.1-1
/// conformance: v5 MQTT-4.3.2-4
/// conformance: v5 MQTT-4.3.3-8
/// conformance: v5 MQTT-4.3.3-11
/// conformance: v5 MQTT-4.6.0-5
#[tokio::test(flavor = "multi_thread")]
async fn v5_publish_subscribe_each_qos() {
    publish_subscribe_each_qos(Version::V5).await;
}

/// conformance: v3.1.1 MQTT-3.8.4-6
#[tokio::test(flavor = "multi_thread")]
async fn v31_delivered_qos_is_minimum() {
    delivered_qos_is_minimum(Version::V31).await;
}

/// conformance: v3.1.1 MQTT-3.8.4-6
#[tokio::test(flavor = "multi_thread")]
async fn v311_delivered_qos_is_minimum() {
    delivered_qos_is_minimum(Version::V311).await;
}

/// conformance: v5 MQTT-3.8.4-8
#[tokio::test(flavor = "multi_thread")]
async fn v5_delivered_qos_is_minimum() {
    delivered_qos_is_minimum(Version::V5).await;
}

// ---------------------------------------------------------------------------------------
// Retained messages
// ---------------------------------------------------------------------------------------

/// `mosquitto_pub -r` at each QoS stores the message (replacing the previous one) and
/// forwards it to a live subscriber with the retain flag clear; a later subscriber gets
/// it with the retain flag set; `mosquitto_pub -n -r` deletes it, so
/// the next subscriber's first message is a non-retained sentinel.
async fn retained_set_replace_delete(version: Version) {
    let broker = start_broker().await;
    let addr = broker.local_addr();
    for qos in 0..=2u8 {
        let q = qos.to_string();
        let topic = format!("r/{qos}");
        // A live subscriber gets it with RETAIN 0: it matched an established
        // subscription (and mosquitto_sub does not ask for Retain As Published).
        let live = Client::subscriber(addr, version, &["-t", &topic, "-q", &q, "-C", "1"]).await;
        publish_one(addr, version, &topic, qos, "first", &["-r"]).await;
        assert_eq!(
            live.finish().await.ok(),
            [msg(&topic, qos, false, "first")],
            "{version:?} QoS {qos}: a retained message to an established subscription"
        );
        publish_one(addr, version, &topic, qos, "second", &["-r"]).await;
        // A non-retained message neither replaces nor removes the retained one.
        publish_one(addr, version, &topic, qos, "plain", &[]).await;

        let sub = Client::subscriber(addr, version, &["-t", &topic, "-q", &q, "-C", "1"]).await;
        assert_eq!(
            sub.finish().await.ok(),
            [msg(&topic, qos, true, "second")],
            "{version:?} QoS {qos}: retained message for a new subscriber"
        );

        publish_one(addr, version, &topic, qos, "", &["-r"]).await;
        let sub = Client::subscriber(addr, version, &["-t", &topic, "-q", &q, "-C", "1"]).await;
        publish_one(addr, version, &topic, qos, "sentinel", &[]).await;
        assert_eq!(
            sub.finish().await.ok(),
            [msg(&topic, qos, false, "sentinel")],
            "{version:?} QoS {qos}: the empty retained message must delete the retained one"
        );
    }
    broker.shutdown().await;
}

/// conformance: v3.1.1 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-6
/// conformance: v3.1.1 MQTT-3.3.1-8
/// conformance: v3.1.1 MQTT-3.3.1-9
/// conformance: v3.1.1 MQTT-3.3.1-10
/// conformance: v3.1.1 MQTT-3.3.1-11
/// conformance: v3.1.1 MQTT-3.3.1-12
#[tokio::test(flavor = "multi_thread")]
async fn v31_retained_set_replace_delete() {
    retained_set_replace_delete(Version::V31).await;
}

/// conformance: v3.1.1 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-6
/// conformance: v3.1.1 MQTT-3.3.1-7
/// conformance: v3.1.1 MQTT-3.3.1-8
/// conformance: v3.1.1 MQTT-3.3.1-9
/// conformance: v3.1.1 MQTT-3.3.1-10
/// conformance: v3.1.1 MQTT-3.3.1-11
/// conformance: v3.1.1 MQTT-3.3.1-12
#[tokio::test(flavor = "multi_thread")]
async fn v311_retained_set_replace_delete() {
    retained_set_replace_delete(Version::V311).await;
}

/// conformance: v5 MQTT-3.3.1-5
/// conformance: v5 MQTT-3.3.1-6
/// conformance: v5 MQTT-3.3.1-7
/// conformance: v5 MQTT-3.3.1-8
/// conformance: v5 MQTT-3.3.1-9
/// conformance: v5 MQTT-3.3.1-12
#[tokio::test(flavor = "multi_thread")]
async fn v5_retained_set_replace_delete() {
    retained_set_replace_delete(Version::V5).await;
}

// ---------------------------------------------------------------------------------------
// Wills
// ---------------------------------------------------------------------------------------

/// A `mosquitto_sub` with a will, killed with SIGKILL: a watcher receives the will, at
/// the will's QoS, not retained. Then a `mosquitto_sub` with a will that exits cleanly
/// (`-C 1` reached: DISCONNECT): the watcher's first message is a later sentinel, not
/// the will.
async fn will_on_kill_not_on_disconnect(version: Version) {
    let broker = start_broker().await;
    let addr = broker.local_addr();

    let watcher = Client::subscriber(addr, version, &["-t", "will/#", "-q", "1", "-C", "1"]).await;
    let mut victim = Client::subscriber(
        addr,
        version,
        &[
            "-t",
            "victim/in",
            "--will-topic",
            "will/victim",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    )
    .await;
    victim.kill();
    assert_eq!(
        watcher.finish().await.ok(),
        [msg("will/victim", 1, false, "gone")],
        "{version:?}: the will of a killed client"
    );

    let watcher = Client::subscriber(addr, version, &["-t", "will/#", "-q", "1", "-C", "1"]).await;
    let polite = Client::subscriber(
        addr,
        version,
        &[
            "-t",
            "polite/in",
            "-C",
            "1",
            "--will-topic",
            "will/polite",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    )
    .await;
    publish_one(addr, version, "polite/in", 0, "bye", &[]).await;
    assert_eq!(
        polite.finish().await.ok(),
        [msg("polite/in", 0, false, "bye")]
    );
    // Give a (wrongly) published will time to overtake the sentinel.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_one(addr, version, "will/sentinel", 1, "sentinel", &[]).await;
    assert_eq!(
        watcher.finish().await.ok(),
        [msg("will/sentinel", 1, false, "sentinel")],
        "{version:?}: no will after a clean DISCONNECT"
    );
    broker.shutdown().await;
}

/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v3.1.1 MQTT-3.1.2-10
/// conformance: v3.1.1 MQTT-3.1.2-16
/// conformance: v3.1.1 MQTT-3.14.4-3
#[tokio::test(flavor = "multi_thread")]
async fn v31_will_on_kill_not_on_disconnect() {
    will_on_kill_not_on_disconnect(Version::V31).await;
}

/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v3.1.1 MQTT-3.1.2-10
/// conformance: v3.1.1 MQTT-3.1.2-16
/// conformance: v3.1.1 MQTT-3.14.4-3
#[tokio::test(flavor = "multi_thread")]
async fn v311_will_on_kill_not_on_disconnect() {
    will_on_kill_not_on_disconnect(Version::V311).await;
}

/// conformance: v5 MQTT-3.1.2-7
/// conformance: v5 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.2-10
/// conformance: v5 MQTT-3.1.2-14
#[tokio::test(flavor = "multi_thread")]
async fn v5_will_on_kill_not_on_disconnect() {
    will_on_kill_not_on_disconnect(Version::V5).await;
}

// ---------------------------------------------------------------------------------------
// Persistent sessions
// ---------------------------------------------------------------------------------------

/// `mosquitto_sub -c -i ID -q 1 -E` subscribes and exits; three QoS 1 messages are
/// published while it is away; `mosquitto_sub -c -i ID -q 1 -C 3` then receives them, in
/// order. (For 5.0, `-x 60` asks for a session expiry interval.)
async fn persistent_session_queues_qos1(version: Version) {
    let broker = start_broker().await;
    let addr = broker.local_addr();
    let id = format!("midge-interop-{}", version.arg());
    let mut persistent = vec!["-c", "-i", &id, "-q", "1", "-t", "p/t"];
    if version == Version::V5 {
        persistent.extend_from_slice(&["-x", "60"]);
    }

    let mut first = persistent.clone();
    first.push("-E");
    let sub = Client::subscriber(addr, version, &first).await;
    assert_eq!(sub.finish().await.ok(), Vec::<String>::new());

    publish(
        addr,
        version,
        &["-t", "p/t", "-q", "1", "-l"],
        "m1\nm2\nm3\n",
    )
    .await;

    let mut second = persistent.clone();
    second.extend_from_slice(&["-C", "3"]);
    let sub = Client::spawn(
        "mosquitto_sub",
        addr,
        version,
        &[&["-d", "-F", FORMAT, "-W", SUB_TIMEOUT_SECS], &second[..]].concat(),
    );
    let expected: Vec<_> = ["m1", "m2", "m3"]
        .iter()
        .map(|p| msg("p/t", 1, false, p))
        .collect();
    assert_eq!(
        sub.finish().await.ok(),
        expected,
        "{version:?}: messages queued for the persistent session"
    );
    broker.shutdown().await;
}

/// conformance: v3.1.1 MQTT-3.1.2-4
/// conformance: v3.1.1 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-4.1.0-1
#[tokio::test(flavor = "multi_thread")]
async fn v31_persistent_session_queues_qos1() {
    persistent_session_queues_qos1(Version::V31).await;
}

/// conformance: v3.1.1 MQTT-3.1.2-4
/// conformance: v3.1.1 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-4.1.0-1
#[tokio::test(flavor = "multi_thread")]
async fn v311_persistent_session_queues_qos1() {
    persistent_session_queues_qos1(Version::V311).await;
}

/// conformance: v5 MQTT-3.1.2-5
/// conformance: v5 MQTT-3.1.2-6
#[tokio::test(flavor = "multi_thread")]
async fn v5_persistent_session_queues_qos1() {
    persistent_session_queues_qos1(Version::V5).await;
}

// ---------------------------------------------------------------------------------------
// TLS: mosquitto_pub / mosquitto_sub with --cafile, --cert, --key
// ---------------------------------------------------------------------------------------

#[path = "common/pki.rs"]
mod pki;

/// mosquitto_sub and mosquitto_pub over mutual TLS: the broker checks their certificate
/// against its `cafile`, they check the broker's against theirs (the server certificate
/// names 127.0.0.1); a client without a certificate cannot publish.
#[tokio::test(flavor = "multi_thread")]
async fn tls_mutual_with_mosquitto_clients() {
    let dir = pki::temp_dir("interop-tls");
    let ca = pki::Ca::new("Midge interop CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "mosquitto-client");
    let mut config = Config::local_ephemeral();
    let listener = &mut config.listeners[0];
    listener.certfile = Some(server.cert);
    listener.keyfile = Some(server.key);
    listener.cafile = Some(ca_file.clone());
    listener.require_certificate = true;
    let broker = Broker::start(config).await.expect("TLS broker starts");
    let addr = broker.local_addr();
    let ca_arg = ca_file.to_str().unwrap();
    let (cert, key) = (client.cert.to_str().unwrap(), client.key.to_str().unwrap());
    let tls = ["--cafile", ca_arg, "--cert", cert, "--key", key];
    for version in [Version::V311, Version::V5] {
        let mut sub_args = vec!["-t", "tls/#", "-q", "1", "-C", "2"];
        sub_args.extend_from_slice(&tls);
        let sub = Client::subscriber(addr, version, &sub_args).await;
        for (qos, payload) in [(1, "one"), (2, "two")] {
            publish_one(addr, version, "tls/x", qos, payload, &tls).await;
        }
        assert_eq!(
            sub.finish().await.ok(),
            vec![msg("tls/x", 1, false, "one"), msg("tls/x", 1, false, "two")],
            "{version:?}"
        );
    }
    // Without a client certificate: refused, mosquitto_pub fails.
    let mut refused = Client::spawn(
        "mosquitto_pub",
        addr,
        Version::V311,
        &["-t", "tls/x", "-m", "no", "--cafile", ca_arg],
    );
    drop(refused.child.stdin.take());
    let finished = refused.finish().await;
    assert!(!finished.status.success(), "{}", finished.transcript);
    broker.shutdown().await;
}

/// mosquitto_sub and mosquitto_pub through a Unix socket listener (`--unix`): the
/// broker has no TCP listener, and the `-p` given to the clients is a closed port.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn unix_socket_with_mosquitto_clients() {
    let dir = pki::temp_dir("interop-unix");
    let path = dir.join("mqtt.sock");
    let mut config = Config::local_ephemeral();
    config.listeners = vec![midge_broker::ListenerConfig::unix(&path)];
    let broker = Broker::start(config).await.expect("broker starts");
    let closed: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let unix = ["--unix", path.to_str().unwrap()];
    let mut sub_args = vec!["-t", "unix/#", "-q", "1", "-C", "2"];
    sub_args.extend_from_slice(&unix);
    let sub = Client::subscriber(closed, Version::V5, &sub_args).await;
    publish_one(closed, Version::V5, "unix/a", 1, "one", &unix).await;
    publish_one(closed, Version::V311, "unix/b", 0, "two", &unix).await;
    assert_eq!(
        sub.finish().await.ok(),
        vec![
            msg("unix/a", 1, false, "one"),
            msg("unix/b", 0, false, "two")
        ]
    );
    broker.shutdown().await;
}
