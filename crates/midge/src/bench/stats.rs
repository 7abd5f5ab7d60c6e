//! What the bench measures: live counters shared by every task (read once a second for
//! the progress line), the payload header that carries a publisher's id, sequence number
//! and send time, and the per-subscriber sequence tracker that finds lost and duplicated
//! messages. Nothing here does I/O; `publisher.rs` and `subscriber.rs` feed it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The bench's one clock read (STYLE.md rule 2): every timestamp is nanoseconds since an
/// origin taken from here at the start of the run.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Nanoseconds since `origin`, as written into payloads.
pub(crate) fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(now().saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// Marks a payload written by `midge bench`, so that `sub` ignores other traffic.
const MAGIC: [u8; 4] = *b"MdgB";

/// Bytes at the front of every payload: magic, publisher id (u32), sequence (u64),
/// send time (u64 nanoseconds since the origin), all big-endian.
pub(crate) const HEADER_LEN: usize = 24;

/// The header fields of a received payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) publisher: u32,
    pub(crate) seq: u64,
    pub(crate) sent_at: u64,
}

/// Writes the header into the first [`HEADER_LEN`] bytes of `payload`.
pub(crate) fn write_stamp(payload: &mut [u8], stamp: Stamp) {
    payload[..4].copy_from_slice(&MAGIC);
    payload[4..8].copy_from_slice(&stamp.publisher.to_be_bytes());
    payload[8..16].copy_from_slice(&stamp.seq.to_be_bytes());
    payload[16..24].copy_from_slice(&stamp.sent_at.to_be_bytes());
}

/// Reads the header, if the payload has one.
pub(crate) fn read_stamp(payload: &[u8]) -> Option<Stamp> {
    if payload.len() < HEADER_LEN || payload[..4] != MAGIC {
        return None;
    }
    let u64_at = |at: usize| u64::from_be_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
    Some(Stamp {
        publisher: u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes")),
        seq: u64_at(8),
        sent_at: u64_at(16),
    })
}

/// Counters every task bumps with relaxed atomics; the progress line reads them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Connections that got a successful CONNACK.
    pub(crate) connected: AtomicU64,
    /// Connections that failed (TCP, CONNACK refused, or dropped by the broker).
    pub(crate) conn_failed: AtomicU64,
    /// PUBLISH packets written to sockets.
    pub(crate) sent: AtomicU64,
    /// QoS 1/2 PUBLISH packets completed (PUBACK, or PUBCOMP).
    pub(crate) acked: AtomicU64,
    /// PUBLISH packets received by subscribers.
    pub(crate) received: AtomicU64,
    /// When a subscriber last read a message (nanoseconds since the origin).
    pub(crate) last_received: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A latency histogram in nanoseconds, 1 ns to 1 hour, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p99_9_us: f64,
    pub(crate) max_us: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            count: h.len(),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p99_9_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Records a duration into a nanosecond histogram (clamped to its bounds).
pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.max(1));
}

/// Which sequence numbers one receiver saw from each publisher: a bitset per publisher,
/// so that loss and duplication are exact whatever the order of arrival.
#[derive(Debug, Default, Clone)]
pub(crate) struct SeqTracker {
    /// Indexed by publisher id; bit `seq` set once seen.
    seen: Vec<Vec<u64>>,
    /// Messages whose (publisher, seq) was already seen.
    pub(crate) duplicated: u64,
}

impl SeqTracker {
    /// Notes one message; returns false if it is a duplicate.
    pub(crate) fn observe(&mut self, publisher: u32, seq: u64) -> bool {
        let p = publisher as usize;
        if self.seen.len() <= p {
            self.seen.resize_with(p + 1, Vec::new);
        }
        let bits = &mut self.seen[p];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize((word + 1).next_power_of_two(), 0);
        }
        let fresh = bits[word] & (1 << bit) == 0;
        bits[word] |= 1 << bit;
        if !fresh {
            self.duplicated += 1;
        }
        fresh
    }

    /// Folds another receiver's view in (members of one shared-subscription group):
    /// a message both saw counts as duplicated.
    pub(crate) fn merge(&mut self, other: &SeqTracker) {
        self.duplicated += other.duplicated;
        if self.seen.len() < other.seen.len() {
            self.seen.resize_with(other.seen.len(), Vec::new);
        }
        for (mine, theirs) in self.seen.iter_mut().zip(&other.seen) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                self.duplicated += u64::from((*a & *b).count_ones());
                *a |= *b;
            }
        }
    }

    /// Distinct messages seen from `publisher` with a sequence below `sent`.
    pub(crate) fn unique_from(&self, publisher: u32, sent: u64) -> u64 {
        let Some(bits) = self.seen.get(publisher as usize) else {
            return 0;
        };
        let full = (sent / 64) as usize;
        let mut n: u64 = bits
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let rest = sent % 64;
        if rest > 0 {
            if let Some(w) = bits.get(full) {
                n += u64::from((w & ((1u64 << rest) - 1)).count_ones());
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips() {
        let mut payload = vec![0u8; 64];
        let stamp = Stamp {
            publisher: 7,
            seq: 1 << 40,
            sent_at: 123_456_789,
        };
        write_stamp(&mut payload, stamp);
        assert_eq!(read_stamp(&payload), Some(stamp));
        assert_eq!(read_stamp(&payload[..HEADER_LEN - 1]), None);
        assert_eq!(read_stamp(&[0u8; 32]), None);
    }

    #[test]
    fn tracker_counts_loss_and_duplicates() {
        let mut t = SeqTracker::default();
        for seq in [0, 1, 2, 5, 5, 130] {
            t.observe(0, seq);
        }
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.unique_from(0, 131), 5);
        assert_eq!(t.unique_from(0, 3), 3);
        assert_eq!(t.unique_from(1, 10), 0);
    }

    #[test]
    fn merged_group_members_count_overlap_as_duplicates() {
        let (mut a, mut b) = (SeqTracker::default(), SeqTracker::default());
        a.observe(0, 0);
        a.observe(0, 1);
        b.observe(0, 1);
        b.observe(0, 2);
        a.merge(&b);
        assert_eq!(a.duplicated, 1);
        assert_eq!(a.unique_from(0, 3), 3);
    }
}
