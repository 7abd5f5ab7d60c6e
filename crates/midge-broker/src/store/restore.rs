//! Reading a store at start: every record is decoded and checked; what expired while
//! the broker was down goes; damaged records are dropped and reported, never silently.
//!
//! The engine's own errors (a damaged file it cannot read past) are returned as
//! [`StoreError`]s naming the file: the broker refuses to start. Damage inside a record
//! (caught by the record checksum) costs that record and what depends on it — a
//! session's outgoing entries go with a damaged session record — and is listed in the
//! [`RecoveryReport`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::commit::Index;
use super::format::{self, RecordError};
use super::{
    Batch, Change, MsgId, OutgoingRecord, RetainedRecord, SessionRecord, Store, StoreError,
    StoredMessage, Table, UnixMillis,
};

/// One damaged record and what was dropped because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The table.
    pub table: Table,
    /// The record's key, printable.
    pub key: String,
    /// What is wrong.
    pub error: String,
    /// What was dropped.
    pub dropped: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}; dropped {}",
            self.table.name(),
            self.key,
            self.error,
            self.dropped
        )
    }
}

/// What a restore found, kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The store, as [`Store::describe`] names it.
    pub store: String,
    /// Sessions restored.
    pub sessions: usize,
    /// Outgoing (queued and inflight) messages restored.
    pub outgoing: usize,
    /// Incoming QoS 2 packet ids restored.
    pub incoming: usize,
    /// Retained messages restored.
    pub retained: usize,
    /// Message bodies kept.
    pub messages: usize,
    /// Sessions that expired while the broker was down.
    pub expired_sessions: Vec<String>,
    /// Outgoing entries whose message expired while the broker was down.
    pub expired_outgoing: usize,
    /// Retained messages that expired while the broker was down.
    pub expired_retained: usize,
    /// Damaged or inconsistent records, and what went with them.
    pub problems: Vec<Problem>,
}

impl RecoveryReport {
    /// Whether every record was intact.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} sessions, {} outgoing messages, {} incoming QoS 2 ids, {} retained \
             messages, {} message bodies; expired while down: {} sessions, {} outgoing, {} \
             retained; {} damaged records",
            self.store,
            self.sessions,
            self.outgoing,
            self.incoming,
            self.retained,
            self.messages,
            self.expired_sessions.len(),
            self.expired_outgoing,
            self.expired_retained,
            self.problems.len()
        )
    }
}

/// A session as restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSession {
    /// Its record.
    pub record: SessionRecord,
    /// Outgoing entries in order, by sequence number.
    pub outgoing: Vec<(u64, OutgoingRecord)>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming: Vec<u16>,
}

/// Everything a restart needs, but retained bodies (read when a subscription needs
/// them, with [`super::Persistence::message`]).
#[derive(Debug, Default)]
pub struct Restored {
    /// Sessions that have not expired, by client id.
    pub sessions: Vec<RestoredSession>,
    /// The bodies the sessions' outgoing entries reference.
    pub messages: HashMap<MsgId, StoredMessage>,
    /// The retained index: topic → entry.
    pub retained: Vec<(String, RetainedRecord)>,
    /// Wills whose session expired while the broker was down: due now.
    pub due_wills: Vec<StoredMessage>,
    /// Where new message ids start.
    pub next_message_id: u64,
    /// What was found.
    pub report: RecoveryReport,
    /// For the writer.
    pub(crate) index: Index,
}

/// Whether [`restore`] deletes what it drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Delete expired and damaged records (the broker at start).
    Apply,
    /// Change nothing (`midge store check`).
    ReadOnly,
}

fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).escape_debug().to_string()
}

/// A record: key and value.
type Record = (Vec<u8>, Vec<u8>);

fn scan_all(store: &dyn Store, table: Table) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    store.scan(table, &mut |k, v| records.push((k.to_vec(), v.to_vec())))?;
    Ok(records)
}

/// Reads the store as of `now`; see the module docs.
pub fn restore(
    store: &dyn Store,
    now: UnixMillis,
    mode: RestoreMode,
) -> Result<Restored, StoreError> {
    let mut r = Restorer {
        report: RecoveryReport {
            store: store.describe(),
            ..RecoveryReport::default()
        },
        deletes: Batch::new(),
        bodies: HashMap::new(),
    };
    let mut max_id = 0;
    // Bodies are checked where they lie, not copied: a million retained messages are
    // not loaded into memory, even for a moment.
    store.scan(
        Table::Messages,
        &mut |key, value| match format::parse_message_key(key)
            .and_then(|id| Ok((id, format::check_message(value)?)))
        {
            Ok((id, expires_at)) => {
                max_id = max_id.max(id.0);
                r.bodies.insert(id, expires_at);
            }
            Err(e) => {
                if let Ok(id) = format::parse_message_key(key) {
                    max_id = max_id.max(id.0);
                }
                r.drop(Table::Messages, key.to_vec(), e, "the message body".into());
            }
        },
    )?;
    let mut restored = Restored::default();
    let mut sessions: BTreeMap<String, RestoredSession> = BTreeMap::new();
    let mut expired: HashSet<String> = HashSet::new();
    let mut damaged: HashSet<String> = HashSet::new();
    for (key, value) in scan_all(store, Table::Sessions)? {
        // As `parse_outgoing_key` reads it, to match the session's other entries.
        let client = String::from_utf8_lossy(&key).into_owned();
        match format::decode_session(&value) {
            Ok(record) if record.client_id.as_bytes() != key => {
                damaged.insert(client.clone());
                let e = RecordError::Malformed("client id differs from the key");
                r.drop(Table::Sessions, key, e, format!("session {client:?}"));
            }
            Ok(record) if record.expires_at.is_some_and(|at| at <= now) => {
                r.delete(Table::Sessions, key);
                if let Some(will) = &record.will {
                    restored.due_wills.push(will.message.clone());
                }
                r.report.expired_sessions.push(record.client_id.clone());
                expired.insert(record.client_id);
            }
            Ok(record) => {
                let session = RestoredSession {
                    record,
                    outgoing: Vec::new(),
                    incoming: Vec::new(),
                };
                sessions.insert(session.record.client_id.clone(), session);
            }
            Err(e) => {
                damaged.insert(client.clone());
                let what = format!("session {client:?} with its messages");
                r.drop(Table::Sessions, key, e, what);
            }
        }
    }
    let mut index = Index::default();
    for (key, value) in scan_all(store, Table::Outgoing)? {
        let parsed = format::parse_outgoing_key(&key)
            .and_then(|(client, seq)| Ok((client, seq, format::decode_outgoing(&value)?)));
        let (client, seq, record) = match parsed {
            Ok(p) => p,
            Err(e) => {
                r.drop(Table::Outgoing, key, e, "an outgoing message".into());
                continue;
            }
        };
        let Some(session) = sessions.get_mut(&client) else {
            if !expired.contains(&client) && !damaged.contains(&client) {
                let e = RecordError::Malformed("no session record for this client");
                r.drop(Table::Outgoing, key, e, "an outgoing message".into());
            } else {
                r.delete(Table::Outgoing, key);
            }
            continue;
        };
        match r.bodies.get(&record.message) {
            None => {
                let e = RecordError::Malformed("its message body is missing or damaged");
                let what = format!("an outgoing message of session {client:?}");
                r.drop(Table::Outgoing, key, e, what);
            }
            Some(Some(at)) if *at <= now => {
                r.report.expired_outgoing += 1;
                r.delete(Table::Outgoing, key);
            }
            Some(_) => {
                index.add_ref(record.message);
                index
                    .outgoing
                    .entry(Arc::from(client))
                    .or_default()
                    .insert(seq, record.clone());
                session.outgoing.push((seq, record));
            }
        }
    }
    for (key, value) in scan_all(store, Table::Incoming)? {
        let parsed = format::parse_incoming_key(&key)
            .and_then(|(client, id)| format::decode_incoming(&value).map(|()| (client, id)));
        match parsed {
            Ok((client, id)) => match sessions.get_mut(&client) {
                Some(session) => {
                    index
                        .incoming
                        .entry(Arc::from(client))
                        .or_default()
                        .insert(id);
                    session.incoming.push(id);
                }
                None => r.delete(Table::Incoming, key),
            },
            Err(e) => r.drop(Table::Incoming, key, e, "an incoming QoS 2 id".into()),
        }
    }
    for (key, value) in scan_all(store, Table::Retained)? {
        let parsed = format::parse_retained_key(&key)
            .and_then(|topic| Ok((topic, format::decode_retained(&value)?)));
        let (topic, record) = match parsed {
            Ok(p) => p,
            Err(e) => {
                r.drop(Table::Retained, key, e, "a retained message".into());
                continue;
            }
        };
        if !r.bodies.contains_key(&record.message) {
            let e = RecordError::Malformed("its message body is missing or damaged");
            r.drop(
                Table::Retained,
                key,
                e,
                format!("the retained message of {topic:?}"),
            );
        } else if record.expires_at.is_some_and(|at| at <= now) {
            r.report.expired_retained += 1;
            r.delete(Table::Retained, key);
        } else {
            index.add_ref(record.message);
            index.retained.insert(topic.clone(), record.message);
            restored.retained.push((topic, record));
        }
    }
    // Bodies nobody references any more (their references expired or were damaged).
    let unreferenced: Vec<MsgId> = r
        .bodies
        .keys()
        .filter(|id| !index.refs.contains_key(id))
        .copied()
        .collect();
    for id in unreferenced {
        r.delete(Table::Messages, format::message_key(id));
    }
    for session in sessions.values() {
        for (_, record) in &session.outgoing {
            if restored.messages.contains_key(&record.message) {
                continue;
            }
            let value = store.get(Table::Messages, &format::message_key(record.message))?;
            if let Some(message) = value.and_then(|v| format::decode_message(&v).ok()) {
                restored.messages.insert(record.message, message);
            }
        }
    }
    let report = &mut r.report;
    report.sessions = sessions.len();
    report.outgoing = sessions.values().map(|s| s.outgoing.len()).sum();
    report.incoming = sessions.values().map(|s| s.incoming.len()).sum();
    report.retained = restored.retained.len();
    report.messages = index.refs.len();
    if mode == RestoreMode::Apply && !r.deletes.is_empty() {
        store.write(&r.deletes)?;
    }
    restored.sessions = sessions.into_values().collect();
    restored.next_message_id = max_id + 1;
    restored.report = r.report;
    restored.index = index;
    Ok(restored)
}

struct Restorer {
    report: RecoveryReport,
    deletes: Batch,
    /// Intact bodies and their expiry.
    bodies: HashMap<MsgId, Option<UnixMillis>>,
}

impl Restorer {
    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.deletes.push(Change {
            table,
            key,
            value: None,
        });
    }

    fn drop(&mut self, table: Table, key: Vec<u8>, error: RecordError, dropped: String) {
        self.report.problems.push(Problem {
            table,
            key: match table {
                Table::Messages => format::parse_message_key(&key)
                    .map(|id| id.0.to_string())
                    .unwrap_or_else(|_| printable(&key)),
                Table::Outgoing | Table::Incoming => format::parse_client_key(&key)
                    .map(|(c, rest)| format!("{c:?}/{}", hex(rest)))
                    .unwrap_or_else(|_| printable(&key)),
                _ => format!("{:?}", printable(&key)),
            },
            error: error.to_string(),
            dropped,
        });
        self.delete(table, key);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
