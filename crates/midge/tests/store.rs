//! `midge store check` and `midge store dump`, run as the real binary against stores
//! written through the broker library's store API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use midge_broker::store::{
    self, Change, DiskStore, Op, OpenMode, OutgoingRecord, OutgoingState, Persistence, RestoreMode,
    RetainedRecord, SessionRecord, Store, StoredMessage, SubscriptionRecord, Table, format,
};
use midge_codec::{Publish, QoS, TopicName};

const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("midge-store-cli-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn midge_store(command: &str, dir: &Path) -> Output {
    Command::new(MIDGE)
        .args(["store", command])
        .arg(dir)
        .output()
        .expect("midge runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn message(topic: &str, payload: &'static str, qos: QoS) -> StoredMessage {
    let mut publish = Publish::new(
        TopicName::new(topic).unwrap(),
        Bytes::from_static(payload.as_bytes()),
    );
    publish.qos = qos;
    StoredMessage::new(&publish, None, Some("pub-1"))
}

/// A store with one session (a subscription, a released QoS 2 flow, an incoming QoS 2
/// id) and one retained message.
fn write_store(dir: &Path) {
    let store: Arc<dyn Store> = Arc::new(DiskStore::open(dir, OpenMode::Create).unwrap());
    let mut restored = store::restore(&*store, 0, RestoreMode::Apply).unwrap();
    let p = Persistence::start(store, &mut restored);
    let (m, r) = (p.next_message_id(), p.next_message_id());
    p.commit_blocking(vec![
        Op::PutMessage(m, message("a/b", "secret payload", QoS::ExactlyOnce)),
        Op::PutMessage(r, message("status", "online", QoS::AtMostOnce)),
        Op::PutSession(Box::new(SessionRecord {
            client_id: "sensor-1".into(),
            protocol: 5,
            session_expiry: u32::MAX,
            expires_at: None,
            last_packet_id: 3,
            subscriptions: vec![SubscriptionRecord {
                filter: "a/#".into(),
                options: 2,
                id: Some(9),
            }],
            will: None,
        })),
        Op::PushOutgoing {
            client_id: "sensor-1".into(),
            seq: 0,
            record: OutgoingRecord {
                message: m,
                qos: QoS::ExactlyOnce,
                retain: false,
                subscription_ids: vec![9],
                shared_group: None,
                state: OutgoingState::Released(3),
            },
        },
        Op::AddIncoming {
            client_id: "sensor-1".into(),
            packet_id: 17,
        },
        Op::SetRetained {
            topic: "status".into(),
            record: RetainedRecord {
                message: r,
                expires_at: None,
                size: 6,
            },
        },
    ])
    .unwrap();
    p.close();
}

#[test]
fn check_of_an_intact_store_counts_everything_and_exits_0() {
    let dir = TempDir::new("intact");
    write_store(&dir.0);
    let o = midge_store("check", &dir.0);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(": 1 sessions, 1 outgoing messages, 1 incoming QoS 2 ids, 1 retained messages, 2 message bodies"),
        "{out}"
    );
    assert!(out.contains("0 damaged records"), "{out}");
    // The file itself is accepted too.
    let o = midge_store("check", &dir.0.join("midge.redb"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn dump_prints_every_record_without_payloads() {
    let dir = TempDir::new("dump");
    write_store(&dir.0);
    let o = midge_store("dump", &dir.0);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    assert_eq!(lines[0], "meta format version 1");
    assert!(
        lines[1].starts_with("messages 1 topic \"a/b\" qos 2 retain false payload 14 bytes"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("sessions \"sensor-1\" protocol 5 session_expiry 4294967295"),
        "{out}"
    );
    assert!(
        lines[3].contains("subscriptions [a/# options 0x02 id 9]"),
        "{out}"
    );
    assert!(
        lines[4]
            .starts_with("outgoing \"sensor-1\" #0 message 1 qos 2 retain false state released(3)"),
        "{out}"
    );
    assert_eq!(lines[5], "incoming \"sensor-1\" packet_id 17");
    assert_eq!(
        lines[6],
        "retained \"status\" message 2 expires_at - size 6"
    );
    assert!(!out.contains("secret payload"), "{out}");
}

#[test]
fn check_reports_damaged_records_exits_1_and_changes_nothing() {
    let dir = TempDir::new("damaged");
    write_store(&dir.0);
    {
        let store = DiskStore::open(&dir.0, OpenMode::Existing).unwrap();
        let key = format::session_key("sensor-1");
        let mut value = store.get(Table::Sessions, &key).unwrap().unwrap();
        value[6] ^= 0x01;
        store
            .write(&vec![Change {
                table: Table::Sessions,
                key,
                value: Some(value),
            }])
            .unwrap();
    }
    for _ in 0..2 {
        let o = midge_store("check", &dir.0);
        assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("damaged: sessions \"sensor-1\": checksum mismatch"),
            "{out}"
        );
        assert!(
            out.contains("dropped session \"sensor-1\" with its messages"),
            "{out}"
        );
    }
    let o = midge_store("dump", &dir.0);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("sessions sensor-1 <damaged: checksum mismatch"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_unreadable_store_exits_2_naming_the_file() {
    let dir = TempDir::new("unreadable");
    let o = midge_store("check", &dir.0);
    assert_eq!(o.status.code(), Some(2));
    let file = dir.0.join("midge.redb");
    assert_eq!(
        stderr(&o),
        format!(
            "midge store: {}: cannot open the persistence store: no such file\n",
            file.display()
        )
    );
    assert!(!dir.0.exists(), "check must not create a store");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    for command in ["check", "dump"] {
        let o = midge_store(command, &dir.0);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).starts_with(&format!("midge store: {}: ", file.display())),
            "{}",
            stderr(&o)
        );
    }
}
