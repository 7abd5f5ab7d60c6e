//! Store tests: record round trips, restart, expiry across restart, damaged files, group
//! commit. Time is a number here: the store has no clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use midge_codec::{Publish, PublishProperties, QoS, TopicName};

use super::format;
use super::*;

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "midge-store-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn message(topic: &str, payload: &str, qos: QoS, expires_at: Option<u64>) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(topic).unwrap(),
        Bytes::from(payload.to_string()),
    );
    publish.qos = qos;
    publish.properties = PublishProperties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("k".into(), "v".into())],
        ..PublishProperties::default()
    }
    .into();
    StoredMessage::new(&publish, expires_at, Some("publisher"))
}

fn session(client: &str, expires_at: Option<u64>) -> SessionRecord {
    SessionRecord {
        client_id: client.to_string(),
        protocol: 5,
        session_expiry: 3600,
        expires_at,
        last_packet_id: 7,
        subscriptions: vec![
            SubscriptionRecord {
                filter: "a/#".into(),
                options: format::options_byte(&midge_codec::SubscriptionOptions::new(
                    QoS::ExactlyOnce,
                )),
                id: Some(12),
            },
            SubscriptionRecord {
                filter: "$share/g/b/+".into(),
                options: 0x2d,
                id: None,
            },
        ],
        will: None,
    }
}

fn outgoing(id: MsgId, state: OutgoingState) -> OutgoingRecord {
    OutgoingRecord {
        message: id,
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: vec![12, 40],
        shared_group: Some("$share/g/b/+".into()),
        state,
    }
}

fn start(store: Arc<dyn Store>, now: u64) -> (Persistence, Restored) {
    let mut restored = restore(&*store, now, RestoreMode::Apply).unwrap();
    (Persistence::start(store, &mut restored), restored)
}

fn open_disk(dir: &TempDir) -> Arc<dyn Store> {
    Arc::new(DiskStore::open(dir.path(), OpenMode::Create).unwrap())
}

#[test]
fn every_record_kind_round_trips() {
    let m = message("a/b", "hello", QoS::ExactlyOnce, Some(99));
    assert_eq!(
        format::decode_message(&format::encode_message(&m)).unwrap(),
        m
    );
    let p = m.decode_publish().unwrap();
    assert_eq!(p.topic.as_str(), "a/b");
    assert_eq!(&p.payload[..], b"hello");
    assert_eq!(p.qos, QoS::ExactlyOnce);
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));

    let mut s = session("c1", Some(5));
    s.will = Some(WillRecord {
        message: message("will/t", "bye", QoS::AtLeastOnce, None),
        publish_at: 1234,
    });
    assert_eq!(
        format::decode_session(&format::encode_session(&s)).unwrap(),
        s
    );
    for state in [
        OutgoingState::Queued,
        OutgoingState::Sent(3),
        OutgoingState::Released(65535),
    ] {
        let o = outgoing(MsgId(9), state);
        assert_eq!(
            format::decode_outgoing(&format::encode_outgoing(&o)).unwrap(),
            o
        );
    }
    let r = RetainedRecord {
        message: MsgId(3),
        expires_at: None,
        size: 10,
    };
    assert_eq!(
        format::decode_retained(&format::encode_retained(&r)).unwrap(),
        r
    );
    format::decode_incoming(&format::encode_incoming()).unwrap();
    assert_eq!(
        format::parse_outgoing_key(&format::outgoing_key("c1", 77)).unwrap(),
        ("c1".to_string(), 77)
    );
    assert_eq!(
        format::parse_incoming_key(&format::incoming_key("c1", 5)).unwrap(),
        ("c1".to_string(), 5)
    );
    let o = midge_codec::SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: midge_codec::RetainHandling::DoNotSend,
    };
    assert_eq!(
        format::options_from_byte(format::options_byte(&o)).unwrap(),
        o
    );
}

#[test]
fn a_flipped_bit_or_a_newer_version_is_caught_in_every_record() {
    let value = format::encode_session(&session("c1", None));
    for bit in 0..value.len() * 8 {
        let mut damaged = value.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(format::decode_session(&damaged).is_err(), "bit {bit}");
    }
    for len in 0..value.len() {
        assert!(
            format::decode_session(&value[..len]).is_err(),
            "length {len}"
        );
    }
    let newer = format::seal(&[]);
    let mut newer = newer[..1].to_vec();
    newer[0] = format::FORMAT_VERSION + 1;
    let newer = {
        let crc = crc32fast::hash(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        newer
    };
    assert_eq!(
        format::open(&newer),
        Err(RecordError::Version(format::FORMAT_VERSION + 1))
    );
}

/// Everything a broker persists, committed through [`Persistence`].
fn fill(p: &Persistence) -> (MsgId, MsgId) {
    let shared = p.next_message_id();
    let retained = p.next_message_id();
    let mut s2 = session("c2", None);
    s2.session_expiry = u32::MAX;
    s2.will = Some(WillRecord {
        message: message("will/c2", "gone", QoS::AtLeastOnce, None),
        publish_at: 10_000,
    });
    let mut ops = vec![
        Op::PutMessage(
            shared,
            message("a/b", "fan-out", QoS::AtLeastOnce, Some(50_000)),
        ),
        Op::PutSession(Box::new(session("c1", None))),
        Op::PutSession(Box::new(s2)),
    ];
    for (client, seq, state) in [
        ("c1", 1, OutgoingState::Sent(1)),
        ("c2", 1, OutgoingState::Queued),
    ] {
        ops.push(Op::PushOutgoing {
            client_id: client.into(),
            seq,
            record: outgoing(shared, state),
        });
    }
    ops.push(Op::AddIncoming {
        client_id: "c1".into(),
        packet_id: 42,
    });
    p.commit_blocking(ops).unwrap();
    p.commit_blocking(vec![
        Op::PutMessage(retained, message("r/t", "kept", QoS::AtMostOnce, None)),
        Op::SetRetained {
            topic: "r/t".into(),
            record: RetainedRecord {
                message: retained,
                expires_at: None,
                size: 4,
            },
        },
        Op::SetOutgoingState {
            client_id: "c1".into(),
            seq: 1,
            state: OutgoingState::Released(1),
        },
    ])
    .unwrap();
    (shared, retained)
}

#[test]
fn a_reopened_disk_store_restores_every_kind_of_state() {
    let dir = TempDir::new("restart");
    let (shared, retained) = {
        let (p, restored) = start(open_disk(&dir), 1000);
        assert!(restored.sessions.is_empty());
        let ids = fill(&p);
        p.close();
        ids
    };
    let store = open_disk(&dir);
    let (p, restored) = start(store, 2000);
    assert!(restored.report.is_clean(), "{:?}", restored.report);
    assert_eq!(restored.sessions.len(), 2);
    let c1 = &restored.sessions[0];
    assert_eq!(c1.record, session("c1", None));
    assert_eq!(
        c1.outgoing,
        vec![(1, outgoing(shared, OutgoingState::Released(1)))]
    );
    assert_eq!(c1.incoming, vec![42]);
    let c2 = &restored.sessions[1];
    assert_eq!(c2.record.session_expiry, u32::MAX);
    assert_eq!(c2.record.will.as_ref().unwrap().publish_at, 10_000);
    assert_eq!(
        c2.outgoing,
        vec![(1, outgoing(shared, OutgoingState::Queued))]
    );
    // One body for both sessions.
    assert_eq!(restored.messages.len(), 1);
    assert_eq!(
        restored.messages[&shared].decode_publish().unwrap().payload,
        Bytes::from_static(b"fan-out")
    );
    assert_eq!(restored.retained.len(), 1);
    assert_eq!(restored.retained[0].0, "r/t");
    let body = p.message(retained).unwrap().unwrap();
    assert_eq!(&body.decode_publish().unwrap().payload[..], b"kept");
    assert!(restored.next_message_id > retained.0);
    assert_eq!(restored.report.messages, 2);
}

#[test]
fn a_body_lives_as_long_as_its_last_reference() {
    let store = Arc::new(MemoryStore::new());
    let (p, _) = start(store.clone(), 0);
    let id = p.next_message_id();
    let mut ops = vec![Op::PutMessage(
        id,
        message("t", "x", QoS::AtLeastOnce, None),
    )];
    for c in ["a", "b", "c"] {
        ops.push(Op::PutSession(Box::new(session(c, None))));
        ops.push(Op::PushOutgoing {
            client_id: c.into(),
            seq: 1,
            record: outgoing(id, OutgoingState::Queued),
        });
    }
    p.commit_blocking(ops).unwrap();
    let body_count = || {
        let mut n = 0;
        store.scan(Table::Messages, &mut |_, _| n += 1).unwrap();
        n
    };
    assert_eq!(body_count(), 1);
    p.commit_blocking(vec![
        Op::RemoveOutgoing {
            client_id: "a".into(),
            seq: 1,
        },
        Op::DeleteSession("b".into()),
    ])
    .unwrap();
    assert_eq!(body_count(), 1);
    p.commit_blocking(vec![Op::RemoveOutgoing {
        client_id: "c".into(),
        seq: 1,
    }])
    .unwrap();
    assert_eq!(body_count(), 0);
    // A body put without a reference is never written.
    let lone = p.next_message_id();
    p.commit_blocking(vec![Op::PutMessage(
        lone,
        message("t", "y", QoS::AtLeastOnce, None),
    )])
    .unwrap();
    assert_eq!(body_count(), 0);
}

#[test]
fn what_expired_while_down_is_removed_and_due_wills_are_returned() {
    let dir = TempDir::new("expiry");
    {
        let (p, _) = start(open_disk(&dir), 0);
        let fresh = p.next_message_id();
        let stale = p.next_message_id();
        let old_retained = p.next_message_id();
        let mut gone = session("gone", Some(5_000));
        gone.will = Some(WillRecord {
            message: message("will/gone", "bye", QoS::AtMostOnce, None),
            publish_at: 5_000,
        });
        p.commit_blocking(vec![
            Op::PutMessage(
                fresh,
                message("t", "fresh", QoS::AtLeastOnce, Some(100_000)),
            ),
            Op::PutMessage(stale, message("t", "stale", QoS::AtLeastOnce, Some(9_000))),
            Op::PutMessage(
                old_retained,
                message("r", "old", QoS::AtMostOnce, Some(9_000)),
            ),
            Op::PutSession(Box::new(session("kept", Some(60_000)))),
            Op::PutSession(Box::new(gone)),
            Op::PushOutgoing {
                client_id: "kept".into(),
                seq: 1,
                record: outgoing(stale, OutgoingState::Queued),
            },
            Op::PushOutgoing {
                client_id: "kept".into(),
                seq: 2,
                record: outgoing(fresh, OutgoingState::Queued),
            },
            Op::PushOutgoing {
                client_id: "gone".into(),
                seq: 1,
                record: outgoing(fresh, OutgoingState::Queued),
            },
            Op::SetRetained {
                topic: "r".into(),
                record: RetainedRecord {
                    message: old_retained,
                    expires_at: Some(9_000),
                    size: 3,
                },
            },
        ])
        .unwrap();
        p.close();
    }
    // The broker was down from t=1000 to t=10000.
    let store = open_disk(&dir);
    let restored = restore(&*store, 10_000, RestoreMode::Apply).unwrap();
    let report = &restored.report;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.expired_sessions, vec!["gone".to_string()]);
    assert_eq!(report.expired_outgoing, 1);
    assert_eq!(report.expired_retained, 1);
    assert_eq!(restored.sessions.len(), 1);
    assert_eq!(restored.sessions[0].outgoing.len(), 1);
    assert_eq!(restored.sessions[0].outgoing[0].0, 2);
    assert!(restored.retained.is_empty());
    assert_eq!(restored.due_wills.len(), 1);
    // The removals were written: a second restore finds nothing more to remove, and
    // only the fresh body is left.
    let again = restore(&*store, 10_000, RestoreMode::Apply).unwrap();
    assert!(again.report.expired_sessions.is_empty());
    assert_eq!(again.report.expired_outgoing, 0);
    let mut bodies = 0;
    store
        .scan(Table::Messages, &mut |_, _| bodies += 1)
        .unwrap();
    assert_eq!(bodies, 1);
}

#[test]
fn a_damaged_record_costs_that_record_and_is_reported() {
    let store = Arc::new(MemoryStore::new());
    let (shared, retained) = {
        let (p, _) = start(store.clone(), 0);
        let ids = fill(&p);
        p.close();
        ids
    };
    // Flip a byte of c1's session record and of the retained body.
    let flip = |table, key: Vec<u8>| {
        let mut value = store.get(table, &key).unwrap().unwrap();
        let mid = value.len() / 2;
        value[mid] ^= 0x10;
        store
            .write(&vec![Change {
                table,
                key,
                value: Some(value),
            }])
            .unwrap();
    };
    flip(Table::Sessions, format::session_key("c1"));
    flip(Table::Messages, format::message_key(retained));
    let restored = restore(&*store, 0, RestoreMode::Apply).unwrap();
    let problems: Vec<String> = restored
        .report
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("messages "), "{problems:#?}");
    assert!(problems[1].contains("session \"c1\""), "{problems:#?}");
    assert!(
        problems[2].contains("retained message of \"r/t\""),
        "{problems:#?}"
    );
    // c2 and the shared body survive.
    assert_eq!(restored.sessions.len(), 1);
    assert_eq!(restored.sessions[0].record.client_id, "c2");
    assert!(restored.messages.contains_key(&shared));
    // What was dropped was deleted: the next restore is clean.
    assert!(
        restore(&*store, 0, RestoreMode::Apply)
            .unwrap()
            .report
            .is_clean()
    );
}

/// A disk store damaged by truncation or bit flips: `restore` either succeeds (with a
/// report) or returns an error naming the file. It never panics.
fn damaged_store_outcome(dir: &TempDir) -> Result<RecoveryReport, String> {
    let file = dir.path().join(disk::FILE_NAME);
    let opened = std::panic::catch_unwind(|| {
        DiskStore::open(dir.path(), OpenMode::Existing)
            .and_then(|s| restore(&s, 0, RestoreMode::ReadOnly).map(|r| r.report))
    });
    match opened {
        Err(_) => panic!("a panic escaped the store on a damaged file"),
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => {
            let text = e.to_string();
            assert!(text.contains(&*file.to_string_lossy()), "{text}");
            Err(text)
        }
    }
}

fn build_disk_store(dir: &TempDir) -> Vec<u8> {
    {
        let (p, _) = start(open_disk(dir), 0);
        fill(&p);
        p.close();
    }
    std::fs::read(dir.path().join(disk::FILE_NAME)).unwrap()
}

#[test]
fn a_truncated_file_is_recovered_or_refused_naming_the_file() {
    let dir = TempDir::new("truncate");
    let original = build_disk_store(&dir);
    let file = dir.path().join(disk::FILE_NAME);
    let mut refused = 0;
    let step = (original.len() / 40).max(1);
    for len in (0..original.len()).step_by(step) {
        std::fs::write(&file, &original[..len]).unwrap();
        if damaged_store_outcome(&dir).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
}

#[test]
fn bit_flips_in_the_file_are_recovered_or_refused_naming_the_file() {
    let dir = TempDir::new("bitflip");
    let original = build_disk_store(&dir);
    let file = dir.path().join(disk::FILE_NAME);
    let flip = |pos: usize, bit: u32| {
        let mut damaged = original.clone();
        damaged[pos] ^= 1 << bit;
        std::fs::write(&file, &damaged).unwrap();
        damaged_store_outcome(&dir)
    };
    // A deterministic spread of positions over the whole file (mostly free space).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = flip((x % original.len() as u64) as usize, (x % 8) as u32);
    }
    // Every byte of a stored payload: the damage is always seen, as a dropped record
    // in the report or as a refusal naming the file.
    let at = original
        .windows(7)
        .position(|w| w == b"fan-out")
        .expect("the payload is in the file");
    for pos in at..at + 7 {
        for bit in [0, 3, 7] {
            let seen = match flip(pos, bit) {
                Ok(report) => !report.is_clean(),
                Err(_) => true,
            };
            assert!(seen, "flip of bit {bit} at {pos} went unnoticed");
        }
    }
}

#[test]
fn a_store_of_a_newer_format_is_refused() {
    let dir = TempDir::new("version");
    {
        let store = DiskStore::open(dir.path(), OpenMode::Create).unwrap();
        let mut newer = vec![format::FORMAT_VERSION + 1];
        let crc = crc32fast::hash(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        store
            .write(&vec![Change {
                table: Table::Meta,
                key: b"format".to_vec(),
                value: Some(newer),
            }])
            .unwrap();
    }
    let e = DiskStore::open(dir.path(), OpenMode::Existing).unwrap_err();
    assert!(matches!(e, StoreError::Version { found, .. } if found == format::FORMAT_VERSION + 1));
    assert!(e.to_string().contains(disk::FILE_NAME), "{e}");
}

#[test]
fn a_missing_store_is_not_created_by_check() {
    let dir = TempDir::new("missing");
    let e = DiskStore::open(dir.path(), OpenMode::Existing).unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    assert!(!dir.path().exists());
}

#[test]
fn concurrent_commits_share_fsyncs() {
    let dir = TempDir::new("group");
    let store = Arc::new(DiskStore::open(dir.path(), OpenMode::Create).unwrap());
    let before = store.commits();
    let (p, _) = start(store.clone(), 0);
    const THREADS: u64 = 32;
    const EACH: u64 = 20;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let p = p.clone();
            scope.spawn(move || {
                let client = format!("c{t}");
                p.commit_blocking(vec![Op::PutSession(Box::new(session(&client, None)))])
                    .unwrap();
                for seq in 0..EACH {
                    let id = p.next_message_id();
                    p.commit_blocking(vec![
                        Op::PutMessage(id, message("t", "x", QoS::AtLeastOnce, None)),
                        Op::PushOutgoing {
                            client_id: client.as_str().into(),
                            seq,
                            record: outgoing(id, OutgoingState::Queued),
                        },
                    ])
                    .unwrap();
                }
            });
        }
    });
    let stats = p.stats();
    let requests = THREADS * (EACH + 1);
    assert_eq!(stats.requests, requests);
    // Every batch is one redb commit (one fsync), and batches carry many requests.
    assert_eq!(store.commits() - before, stats.batches);
    assert!(
        stats.batches < requests / 2,
        "{} batches for {requests} requests",
        stats.batches
    );
    p.close();
    let restored = restore(&*store, 0, RestoreMode::ReadOnly).unwrap();
    assert_eq!(restored.report.outgoing as u64, THREADS * EACH);
}

#[tokio::test]
async fn commit_futures_complete_when_durable_and_fail_after_close() {
    let store = Arc::new(MemoryStore::new());
    let (p, _) = start(store.clone(), 0);
    let futures: Vec<_> = (0..100)
        .map(|i| {
            p.commit(vec![Op::PutSession(Box::new(session(
                &format!("c{i}"),
                None,
            )))])
        })
        .collect();
    for f in futures {
        f.await.unwrap();
    }
    let mut n = 0;
    store.scan(Table::Sessions, &mut |_, _| n += 1).unwrap();
    assert_eq!(n, 100);
    p.close();
    assert_eq!(
        p.commit(vec![Op::DeleteSession("c1".into())]).await,
        Err(CommitError::Closed)
    );
}

/// Format 1 as written by this Midge: the records of [`golden_records`] with their
/// encodings, one `name hex` line each, in `testdata/format-v1.txt`. A change of the
/// encoding fails here: bump `FORMAT_VERSION` and keep reading version 1 instead.
fn golden_records() -> Vec<(&'static str, Vec<u8>)> {
    let mut s = session("golden", Some(1_700_000_000_000));
    s.will = Some(WillRecord {
        message: message("will/golden", "bye", QoS::AtLeastOnce, None),
        publish_at: 1_700_000_060_000,
    });
    vec![
        (
            "message",
            format::encode_message(&message("a/b", "hello", QoS::ExactlyOnce, Some(1234))),
        ),
        ("session", format::encode_session(&s)),
        (
            "outgoing",
            format::encode_outgoing(&outgoing(MsgId(7), OutgoingState::Released(9))),
        ),
        ("incoming", format::encode_incoming()),
        (
            "retained",
            format::encode_retained(&RetainedRecord {
                message: MsgId(8),
                expires_at: Some(99),
                size: 5,
            }),
        ),
        ("outgoing_key", format::outgoing_key("golden", 3)),
        ("incoming_key", format::incoming_key("golden", 4)),
        ("message_key", format::message_key(MsgId(7))),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn format_1_matches_its_golden_file() {
    const GOLDEN: &str = include_str!("testdata/format-v1.txt");
    let expected: Vec<(String, String)> = golden_records()
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), hex(&bytes)))
        .collect();
    let golden: Vec<(String, String)> = GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, hex) = l.split_once(' ').expect("`name hex` lines");
            (name.to_string(), hex.to_string())
        })
        .collect();
    assert_eq!(golden, expected);
    // And each golden value still decodes.
    let value = |name: &str| {
        let hex = &golden
            .iter()
            .find(|(n, _)| n == name)
            .expect("in the file")
            .1;
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        format::decode_session(&value("session")).unwrap().client_id,
        "golden"
    );
    format::decode_message(&value("message")).unwrap();
    format::decode_outgoing(&value("outgoing")).unwrap();
    format::decode_retained(&value("retained")).unwrap();
}

/// A backend whose writes fail from the `n`th on (a full or broken disk).
#[derive(Debug)]
struct FailingStore {
    inner: MemoryStore,
    fail_from: u64,
}

impl Store for FailingStore {
    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if self.inner.writes() >= self.fail_from {
            return Err(StoreError::Io {
                path: "failing".into(),
                reason: "No space left on device".into(),
            });
        }
        self.inner.write(batch)
    }
    fn scan(&self, table: Table, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        self.inner.scan(table, visit)
    }
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn describe(&self) -> String {
        "failing".into()
    }
}

#[test]
fn after_a_failed_write_no_commit_succeeds() {
    let store = Arc::new(FailingStore {
        inner: MemoryStore::new(),
        fail_from: 1,
    });
    let (p, _) = start(store.clone(), 0);
    p.commit_blocking(vec![Op::PutSession(Box::new(session("a", None)))])
        .unwrap();
    let e = p
        .commit_blocking(vec![Op::PutSession(Box::new(session("b", None)))])
        .unwrap_err();
    assert_eq!(
        e,
        CommitError::Store("failing: persistence store I/O: No space left on device".into())
    );
    // Later commits fail too, even if the disk came back: the writer's view of the
    // store may differ from the file now, and nothing more may be acknowledged.
    let e = p
        .commit_blocking(vec![Op::DeleteSession("a".into())])
        .unwrap_err();
    assert!(matches!(e, CommitError::Store(_)));
    let mut sessions = 0;
    store
        .scan(Table::Sessions, &mut |_, _| sessions += 1)
        .unwrap();
    assert_eq!(sessions, 1);
}

/// A message pushed to a session and acknowledged before its batch is written costs no
/// write at all; what is still unacknowledged at the end of a batch is written.
#[test]
fn a_flow_that_ends_within_its_batch_is_not_written() {
    let (memory, p) = with_session_c1();
    let writes = memory.writes();
    let body = message("a/b", "x", QoS::AtLeastOnce, None);
    let push = |seq, id| Op::PushOutgoing {
        client_id: "c1".into(),
        seq,
        record: outgoing(MsgId(id), OutgoingState::Queued),
    };
    let remove = |seq| Op::RemoveOutgoing {
        client_id: "c1".into(),
        seq,
    };
    p.commit_blocking(vec![
        Op::PutMessage(MsgId(1), body.clone()),
        push(1, 1),
        Op::AddIncoming {
            client_id: "c1".into(),
            packet_id: 7,
        },
        remove(1),
        Op::RemoveIncoming {
            client_id: "c1".into(),
            packet_id: 7,
        },
    ])
    .unwrap();
    assert_eq!(memory.writes(), writes, "nothing left to write");
    p.commit_blocking(vec![Op::PutMessage(MsgId(2), body), push(2, 2), push(3, 2)])
        .unwrap();
    p.commit_blocking(vec![remove(2)]).unwrap();
    p.close();
    let restored = restore(&*memory, 0, RestoreMode::ReadOnly).unwrap();
    assert_eq!(restored.sessions[0].outgoing.len(), 1);
    assert_eq!(restored.sessions[0].outgoing[0].0, 3);
    assert_eq!(restored.report.messages, 1);
    assert!(restored.report.is_clean(), "{}", restored.report);
}

/// Pushes and removals within one batch end as their ops say: an entry pushed and
/// removed (with a state change between) leaves nothing to write; a stored entry pushed
/// again (replaced) and removed is deleted; a session deleted and made again between a
/// push and a removal keeps only what was pushed after. (A shortcut that skipped a
/// batch's push-and-remove pairs before applying them was tried against this test.)
#[test]
fn pushes_and_removals_within_one_batch_end_as_their_ops_say() {
    let memory = Arc::new(MemoryStore::new());
    let (p, _) = start(memory.clone(), 0);
    let body = message("a/b", "x", QoS::AtLeastOnce, None);
    let push = |client: &str, seq, id| Op::PushOutgoing {
        client_id: client.into(),
        seq,
        record: outgoing(MsgId(id), OutgoingState::Queued),
    };
    let remove = |client: &str, seq| Op::RemoveOutgoing {
        client_id: client.into(),
        seq,
    };
    let put_session = |client: &str| Op::PutSession(Box::new(session(client, None)));
    p.commit_blocking(vec![
        put_session("c1"),
        put_session("c2"),
        Op::PutMessage(MsgId(1), body.clone()),
        push("c2", 1, 1),
        push("c2", 2, 1),
    ])
    .unwrap();
    let writes = memory.writes();
    // The simple case, with a state change in between: nothing is written.
    p.commit_blocking(vec![
        Op::PutMessage(MsgId(3), body.clone()),
        push("c2", 7, 3),
        Op::SetOutgoingState {
            client_id: "c2".into(),
            seq: 7,
            state: OutgoingState::Sent(9),
        },
        remove("c2", 7),
    ])
    .unwrap();
    assert_eq!(memory.writes(), writes, "nothing left to write");
    // c2's entry 1 is stored: pushed again (replaced), then removed, it is gone.
    p.commit_blocking(vec![push("c2", 1, 1), remove("c2", 1)])
        .unwrap();
    // c1: pushed, session deleted and made again, pushed again and removed: entry 5 is
    // gone; the push after is kept.
    p.commit_blocking(vec![
        Op::PutMessage(MsgId(4), body.clone()),
        push("c1", 5, 4),
        Op::DeleteSession("c1".into()),
        put_session("c1"),
        push("c1", 5, 4),
        remove("c1", 5),
        push("c1", 6, 4),
    ])
    .unwrap();
    p.close();
    let restored = restore(&*memory, 0, RestoreMode::ReadOnly).unwrap();
    let seqs = |client: &str| -> Vec<u64> {
        let session = restored
            .sessions
            .iter()
            .find(|s| &*s.record.client_id == client);
        session
            .expect("restored")
            .outgoing
            .iter()
            .map(|(seq, _)| *seq)
            .collect()
    };
    assert_eq!(seqs("c1"), [6]);
    assert_eq!(seqs("c2"), [2]);
    let mut ids: Vec<u64> = restored.messages.keys().map(|id| id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 4], "the bodies that entries refer to");
    assert!(restored.report.is_clean(), "{}", restored.report);
}

/// A message handed to the writer unencoded, counting its encodings.
struct Counted(StoredMessage, std::sync::atomic::AtomicUsize);

impl Counted {
    fn new() -> Self {
        Counted(
            message("a/b", "x", QoS::AtLeastOnce, None),
            Default::default(),
        )
    }

    fn count(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ToStored for Counted {
    fn to_stored(&self, expires_at: Option<UnixMillis>) -> StoredMessage {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StoredMessage {
            expires_at,
            ..self.0.clone()
        }
    }
}

/// A memory store and its writer, with session `c1` stored.
fn with_session_c1() -> (Arc<MemoryStore>, Persistence) {
    let memory = Arc::new(MemoryStore::new());
    let (p, _) = start(memory.clone(), 0);
    p.commit_blocking(vec![Op::PutSession(Box::new(session("c1", None)))])
        .unwrap();
    (memory, p)
}

/// A body handed over unencoded ([`Op::PutMessageFrom`]) is encoded only when it is
/// written: never for a flow that ends within its batch, once for one that survives it,
/// whose entry is written in its last state of the batch.
#[test]
fn a_body_is_encoded_only_when_it_is_written() {
    let (memory, p) = with_session_c1();
    let counted = Arc::new(Counted::new());
    let source = |expires_at| MessageSource {
        message: Arc::downgrade(&counted) as std::sync::Weak<dyn ToStored>,
        expires_at,
    };
    let push = |seq, id| Op::PushOutgoing {
        client_id: "c1".into(),
        seq,
        record: outgoing(MsgId(id), OutgoingState::Queued),
    };
    p.commit_blocking(vec![
        Op::PutMessageFrom(MsgId(1), source(None)),
        push(1, 1),
        Op::RemoveOutgoing {
            client_id: "c1".into(),
            seq: 1,
        },
    ])
    .unwrap();
    assert_eq!(counted.count(), 0);
    p.commit_blocking(vec![
        Op::PutMessageFrom(MsgId(2), source(Some(9_000))),
        push(2, 2),
        Op::SetOutgoingState {
            client_id: "c1".into(),
            seq: 2,
            state: OutgoingState::Sent(5),
        },
    ])
    .unwrap();
    assert_eq!(counted.count(), 1);
    p.close();
    let restored = restore(&*memory, 0, RestoreMode::ReadOnly).unwrap();
    let outgoing = &restored.sessions[0].outgoing;
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0].0, 2);
    assert_eq!(outgoing[0].1.state, OutgoingState::Sent(5));
    let body = &restored.messages[&MsgId(2)];
    assert_eq!(body.expires_at, Some(9_000));
    assert_eq!(body.publish, counted.0.publish);
    assert!(restored.report.is_clean(), "{}", restored.report);
}

/// A body sent again with a later entry that references it (a held-back entry sent
/// after another session's, `crate::durable`) is not encoded or written again; it stays
/// while an entry references it, goes with the last, and is written anew if an entry
/// references it after that.
#[test]
fn a_body_sent_again_is_written_once_and_kept_while_referenced() {
    let (memory, p) = with_session_c1();
    let counted = Arc::new(Counted::new());
    let encoded = || counted.count();
    let put = || {
        Op::PutMessageFrom(
            MsgId(1),
            MessageSource {
                message: Arc::downgrade(&counted) as std::sync::Weak<dyn ToStored>,
                expires_at: None,
            },
        )
    };
    let push = |seq| Op::PushOutgoing {
        client_id: "c1".into(),
        seq,
        record: outgoing(MsgId(1), OutgoingState::Queued),
    };
    let remove = |seq| Op::RemoveOutgoing {
        client_id: "c1".into(),
        seq,
    };
    let stored = |memory: &MemoryStore| {
        let restored = restore(memory, 0, RestoreMode::ReadOnly).unwrap();
        assert!(restored.report.is_clean(), "{}", restored.report);
        let seqs: Vec<u64> = restored.sessions[0].outgoing.iter().map(|o| o.0).collect();
        (seqs, restored.messages.contains_key(&MsgId(1)))
    };
    p.commit_blocking(vec![put(), push(1)]).unwrap();
    p.commit_blocking(vec![put(), push(2)]).unwrap();
    assert_eq!(encoded(), 1, "encoded once");
    p.commit_blocking(vec![remove(1)]).unwrap();
    assert_eq!(
        stored(&memory),
        (vec![2], true),
        "kept for the second entry"
    );
    // Within one batch: the last reference goes, the body comes again with a new one.
    p.commit_blocking(vec![remove(2), put(), push(3)]).unwrap();
    assert_eq!(stored(&memory), (vec![3], true));
    p.commit_blocking(vec![remove(3)]).unwrap();
    assert_eq!(stored(&memory), (vec![], false), "gone with the last entry");
    p.commit_blocking(vec![put(), push(4)]).unwrap();
    assert_eq!(stored(&memory), (vec![4], true), "written anew");
    assert_eq!(encoded(), 2);
    p.close();
}

/// A body handed over unencoded whose message is gone by the time its batch is written
/// (every delivery of it ended): neither the body nor the entries referencing it are
/// written, and their removals, when they come, leave a clean store.
#[test]
fn a_gone_body_and_its_entries_are_not_written() {
    struct Plain(StoredMessage);
    impl ToStored for Plain {
        fn to_stored(&self, _: Option<UnixMillis>) -> StoredMessage {
            self.0.clone()
        }
    }
    let (memory, p) = with_session_c1();
    let writes = memory.writes();
    let gone: Arc<dyn ToStored> = Arc::new(Plain(message("a/b", "x", QoS::AtLeastOnce, None)));
    let source = MessageSource {
        message: Arc::downgrade(&gone),
        expires_at: None,
    };
    drop(gone);
    p.commit_blocking(vec![
        Op::PutMessageFrom(MsgId(1), source),
        Op::PushOutgoing {
            client_id: "c1".into(),
            seq: 1,
            record: outgoing(MsgId(1), OutgoingState::Queued),
        },
    ])
    .unwrap();
    assert_eq!(memory.writes(), writes, "nothing written");
    p.commit_blocking(vec![Op::RemoveOutgoing {
        client_id: "c1".into(),
        seq: 1,
    }])
    .unwrap();
    p.close();
    let restored = restore(&*memory, 0, RestoreMode::ReadOnly).unwrap();
    assert!(restored.sessions[0].outgoing.is_empty());
    assert_eq!(restored.report.messages, 0);
    assert!(restored.report.is_clean(), "{}", restored.report);
}

/// The writer's backlog counts requests sent and not yet taken: it goes back to zero
/// once the writer has taken everything, and `drained` then completes at once.
#[test]
fn the_backlog_goes_back_to_zero_and_drained_completes() {
    let memory = Arc::new(MemoryStore::new());
    let (p, _) = start(memory, 0);
    for _ in 0..100 {
        p.send(vec![Op::DeleteRetained("nothing/here".into())]);
    }
    p.commit_blocking(vec![Op::PutSession(Box::new(session("c1", None)))])
        .unwrap();
    assert!(!p.is_backlogged());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), p.drained())
                .await
                .expect("drained at once")
        });
    assert_eq!(p.stats().requests, 101);
    assert_eq!(p.stats().ops, 101);
}
