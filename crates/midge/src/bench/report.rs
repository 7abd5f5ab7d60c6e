//! The run's results: one [`Report`], printed as a summary or as JSON (`--json`), and
//! the progress line printed each second while the run goes on.

use std::fmt::Write as _;

use super::scenario::Scenario;
use super::stats::Latency;

/// Everything a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: Scenario,
    pub(crate) broker: String,
    pub(crate) protocol: String,
    pub(crate) qos: u8,
    pub(crate) payload_size: usize,
    pub(crate) publishers: usize,
    pub(crate) subscribers: usize,
    /// Seconds of publishing (or of holding connections).
    pub(crate) duration_s: f64,
    pub(crate) connections: ConnReport,
    pub(crate) messages: MsgReport,
    /// End-to-end latency, from the timestamp in the payload to the subscriber's read.
    pub(crate) latency: Latency,
}

/// Connections opened during the run.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ConnReport {
    pub(crate) attempted: u64,
    pub(crate) established: u64,
    pub(crate) failed: u64,
    /// Established connections divided by the time it took to open them all.
    pub(crate) per_second: f64,
    /// TCP connect to CONNACK (and SUBACK, for subscribers).
    pub(crate) latency: Latency,
}

/// Messages sent and received, with loss and duplication at the run's QoS.
#[derive(Debug, serde::Serialize)]
pub(crate) struct MsgReport {
    pub(crate) qos: u8,
    pub(crate) sent: u64,
    /// QoS 1/2: messages whose PUBACK / PUBCOMP arrived.
    pub(crate) acked: u64,
    pub(crate) received: u64,
    /// What the subscribers should have received (each message once per receiver);
    /// absent when the publishers are not ours (`sub`).
    pub(crate) expected: Option<u64>,
    pub(crate) lost: Option<u64>,
    pub(crate) duplicated: u64,
    pub(crate) sent_per_second: f64,
    pub(crate) received_per_second: f64,
}

impl Report {
    /// The human-readable summary.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.connections;
        let m = &self.messages;
        let _ = writeln!(
            s,
            "{:?} against {} ({}, QoS {}, {} B payloads, {} publishers, {} subscribers, {:.1} s)",
            self.scenario,
            self.broker,
            self.protocol,
            self.qos,
            self.payload_size,
            self.publishers,
            self.subscribers,
            self.duration_s
        );
        let _ = writeln!(
            s,
            "connections: {} established, {} failed, {:.0}/s; connect latency {}",
            c.established,
            c.failed,
            c.per_second,
            latency_line(&c.latency)
        );
        let _ = writeln!(
            s,
            "messages:    sent {} ({:.0}/s), acked {}, received {} ({:.0}/s)",
            m.sent, m.sent_per_second, m.acked, m.received, m.received_per_second
        );
        if let Some(expected) = m.expected {
            let _ = writeln!(
                s,
                "delivery:    expected {expected}, lost {}, duplicated {} (QoS {})",
                m.lost.unwrap_or(0),
                m.duplicated,
                m.qos
            );
        }
        let _ = writeln!(s, "latency:     {}", latency_line(&self.latency));
        s
    }
}

fn latency_line(l: &Latency) -> String {
    if l.count == 0 {
        return "n/a".to_owned();
    }
    format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {} (n = {})",
        us(l.p50_us),
        us(l.p90_us),
        us(l.p99_us),
        us(l.p99_9_us),
        us(l.max_us),
        l.count
    )
}

/// Microseconds, shown in ms above 10 ms.
fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}ms", v / 1_000.0)
    } else {
        format!("{v:.0}µs")
    }
}

/// One progress line: per-second rates since the previous line.
pub(crate) fn progress_line(
    elapsed_s: u64,
    connected: u64,
    sent: u64,
    acked: u64,
    received: u64,
) -> String {
    format!(
        "[{elapsed_s:>4}s] conns {connected:>6}  sent {sent:>9}/s  acked {acked:>9}/s  recv {received:>9}/s"
    )
}
