//! Persistence: what survives a restart, and the durable commit that delays PUBACK.
//!
//! Three layers (docs/persistence.md has the format, the engine choice and the plan
//! for wiring this into the broker):
//! - [`Store`], the backend: a few tables of keys and values, written in atomic
//!   batches that are durable when [`Store::write`] returns. [`MemoryStore`] (the
//!   default: nothing survives) and [`DiskStore`] (redb, one file) implement it.
//! - the typed records ([`SessionRecord`], [`OutgoingRecord`], [`StoredMessage`],
//!   [`RetainedRecord`]) and their versioned, checksummed encoding (`format.rs`).
//!   A message body is stored once and referenced by id from every session that holds
//!   it and from the retained index; bodies are counted and deleted with their last
//!   reference, so fan-out to many persistent sessions does not copy payloads.
//! - [`Persistence`], the broker's handle: it turns [`Op`]s into batches on one writer
//!   thread that takes every request waiting, writes them as one batch (one fsync —
//!   group commit) and then completes each request's future. [`restore`] reads a store
//!   at start, dropping what expired while the broker was down and reporting damaged
//!   records.
//!
//! Time is a parameter (milliseconds since the Unix epoch, [`UnixMillis`]): there is no
//! clock in this module.

mod commit;
pub mod disk;
pub mod format;
pub mod memory;
mod restore;
#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use midge_codec::{Publish, QoS};

pub use commit::{Commit, CommitError, Ops, Persistence, PersistenceStats};
pub(crate) use commit::{Ticker, Tickets};
pub use disk::DiskStore;
pub use disk::OpenMode;
pub use format::RecordError;
pub use memory::MemoryStore;
pub use restore::{Problem, RecoveryReport, RestoreMode, Restored, RestoredSession, restore};

/// Milliseconds since the Unix epoch: how stored records say when something expires
/// (an `Instant` means nothing after a restart).
pub type UnixMillis = u64;

/// The tables of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `format` → the record format version.
    Meta,
    /// [`MsgId`] → [`StoredMessage`].
    Messages,
    /// client id → [`SessionRecord`].
    Sessions,
    /// (client id, sequence number) → [`OutgoingRecord`].
    Outgoing,
    /// (client id, packet id) → nothing: incoming QoS 2 awaiting PUBREL.
    Incoming,
    /// topic → [`RetainedRecord`].
    Retained,
}

impl Table {
    /// Every table, in the order `restore` and `dump` read them.
    pub const ALL: [Table; 6] = [
        Table::Meta,
        Table::Messages,
        Table::Sessions,
        Table::Outgoing,
        Table::Incoming,
        Table::Retained,
    ];

    /// The table's name in the file and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Messages => "messages",
            Table::Sessions => "sessions",
            Table::Outgoing => "outgoing",
            Table::Incoming => "incoming",
            Table::Retained => "retained",
        }
    }
}

/// One change in a [`Batch`]: put `value` under `key`, or delete `key` (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The table.
    pub table: Table,
    /// The key.
    pub key: Vec<u8>,
    /// The new value; `None` deletes.
    pub value: Option<Vec<u8>>,
}

/// Changes applied all or nothing.
pub type Batch = Vec<Change>;

/// Why the store failed. Errors that concern the file name it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("{path}: cannot open the persistence store: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The engine reports damage it cannot get past: the broker refuses to start.
    #[error("{path}: the persistence store is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the engine said.
        reason: String,
    },
    /// Written by a newer Midge.
    #[error("{path}: store format {found} is newer than this Midge reads ({supported})")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the store.
        found: u8,
        /// [`format::FORMAT_VERSION`].
        supported: u8,
    },
    /// Reading or writing failed.
    #[error("{path}: persistence store I/O: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A backend: tables of byte keys and values. Implementations are shared between the
/// writer thread and readers (`&self` everywhere).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies `batch` atomically. When it returns `Ok`, the batch is durable (for a
    /// disk store: fsynced); on `Err`, none of it was applied.
    fn write(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Calls `visit` with every key and value of `table`, keys in order.
    fn scan(&self, table: Table, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StoreError>;
    /// The value under `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// What the store is, for logs and errors: a file path, or `memory`.
    fn describe(&self) -> String;
}

/// The id of a stored message body. Ids grow; [`restore`] says where to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub u64);

/// A message body as stored: once, whatever the number of sessions holding it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The PUBLISH as MQTT 5.0 encodes it (`format::encode_publish`): topic, QoS,
    /// RETAIN, payload and the properties that travel with the message.
    pub publish: Vec<u8>,
    /// When the Message Expiry Interval runs out.
    pub expires_at: Option<UnixMillis>,
    /// Client id of the publisher (for No Local).
    pub origin: Option<String>,
}

impl std::fmt::Debug for StoredMessage {
    // The payload is redacted (STYLE.md rule 15).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("publish", &format_args!("<{} bytes>", self.publish.len()))
            .field("expires_at", &self.expires_at)
            .field("origin", &self.origin)
            .finish()
    }
}

impl StoredMessage {
    /// A stored message from its PUBLISH (packet id, DUP and topic alias are not kept).
    pub fn new(publish: &Publish, expires_at: Option<UnixMillis>, origin: Option<&str>) -> Self {
        Self::from_publish(publish.clone(), expires_at, origin)
    }

    /// [`StoredMessage::new`], taking the PUBLISH (no copy of it is made).
    pub fn from_publish(
        mut publish: Publish,
        expires_at: Option<UnixMillis>,
        origin: Option<&str>,
    ) -> Self {
        if let Some(set) = publish.properties.existing_mut() {
            set.topic_alias = None;
            set.subscription_identifiers.clear();
        }
        StoredMessage {
            publish: format::encode_publish(&publish),
            expires_at,
            origin: origin.map(str::to_string),
        }
    }

    /// The PUBLISH back (with a stand-in packet id 1 for QoS 1/2).
    pub fn decode_publish(&self) -> Result<Publish, RecordError> {
        format::decode_publish(&self.publish)
    }

    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What can become a [`StoredMessage`]: the broker's in-memory message.
pub trait ToStored: Send + Sync {
    /// The message as the store keeps it, expiring at `expires_at`.
    fn to_stored(&self, expires_at: Option<UnixMillis>) -> StoredMessage;
}

/// A message body not encoded yet (see [`Op::PutMessageFrom`]), held weakly: the
/// broker's deliveries hold the message, and once none does, every delivery of it has
/// ended and its outgoing entries are on their way out of the store. The writer then
/// writes neither the body nor those entries. (Held weakly also so that the writer,
/// which would often drop the last reference, frees none of the message's memory.)
#[derive(Clone)]
pub struct MessageSource {
    /// The message.
    pub message: Weak<dyn ToStored>,
    /// When it expires.
    pub expires_at: Option<UnixMillis>,
}

impl MessageSource {
    /// The stored body; `None` if the message is gone.
    pub fn to_stored(&self) -> Option<StoredMessage> {
        Some(self.message.upgrade()?.to_stored(self.expires_at))
    }
}

impl std::fmt::Debug for MessageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_stored().fmt(f)
    }
}

impl PartialEq for MessageSource {
    fn eq(&self, other: &Self) -> bool {
        self.to_stored() == other.to_stored()
    }
}

impl Eq for MessageSource {}

/// A subscription of a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The filter, `$share/…` included.
    pub filter: String,
    /// Options in the 5.0 SUBSCRIBE byte layout (`format::options_byte`).
    pub options: u8,
    /// Subscription identifier.
    pub id: Option<u32>,
}

/// A will waiting for its delay or for the session's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillRecord {
    /// The will message (its expiry counts from publication: `expires_at` is unset).
    pub message: StoredMessage,
    /// When to publish it: the earlier of the will delay and the session's end.
    pub publish_at: UnixMillis,
}

/// A persistent session's own record. Outgoing messages and incoming QoS 2 ids have
/// their own tables, so that one acknowledgement rewrites one small record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client identifier.
    pub client_id: String,
    /// Protocol level of the last connection (3, 4 or 5).
    pub protocol: u8,
    /// Session Expiry Interval in seconds (`u32::MAX`: never).
    pub session_expiry: u32,
    /// When the session expires: set when its connection ends, `None` while connected
    /// or for a session that never expires.
    pub expires_at: Option<UnixMillis>,
    /// Last packet id handed out to an outgoing message.
    pub last_packet_id: u16,
    /// The subscriptions.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// The pending will.
    pub will: Option<WillRecord>,
}

/// Where an outgoing message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingState {
    /// Queued, not sent yet (offline queue, or behind the Receive Maximum).
    Queued,
    /// PUBLISH sent under this packet id; PUBACK or PUBREC awaited.
    Sent(u16),
    /// PUBREL sent; PUBCOMP awaited.
    Released(u16),
}

/// A message on its way to one session: a reference to the body and the per-session
/// details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// The body.
    pub message: MsgId,
    /// Delivery QoS.
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers.
    pub subscription_ids: Vec<u32>,
    /// The shared subscription it came through.
    pub shared_group: Option<String>,
    /// The flow's state.
    pub state: OutgoingState,
}

/// A retained index entry: what memory keeps of a retained message (the body stays on
/// disk until a subscription needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedRecord {
    /// The body.
    pub message: MsgId,
    /// When it expires.
    pub expires_at: Option<UnixMillis>,
    /// Payload size, for the retained byte limit.
    pub size: u32,
}

/// A typed change, as the broker makes them (docs/persistence.md, "Wiring").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store a message body. It is written only if a later op of the same commit
    /// references it (an outgoing entry or the retained index).
    PutMessage(MsgId, StoredMessage),
    /// [`Op::PutMessage`] with a body that the writer encodes only if it is written:
    /// a message acknowledged by its subscribers within the batch never is.
    PutMessageFrom(MsgId, MessageSource),
    /// Create or replace a session's record.
    PutSession(Box<SessionRecord>),
    /// The session ended: its record, outgoing and incoming entries go.
    DeleteSession(Arc<str>),
    /// A message routed to a session (queued or sent).
    PushOutgoing {
        /// The session.
        client_id: Arc<str>,
        /// Its order in the session.
        seq: u64,
        /// The entry.
        record: OutgoingRecord,
    },
    /// An outgoing flow moved on (sent, or PUBREC received).
    SetOutgoingState {
        /// The session.
        client_id: Arc<str>,
        /// The entry.
        seq: u64,
        /// The new state.
        state: OutgoingState,
    },
    /// An outgoing flow ended (PUBACK, PUBCOMP, expiry, handed to another member).
    RemoveOutgoing {
        /// The session.
        client_id: Arc<str>,
        /// The entry.
        seq: u64,
    },
    /// An incoming QoS 2 PUBLISH was received under this packet id (PUBREC follows).
    AddIncoming {
        /// The session.
        client_id: Arc<str>,
        /// The packet id.
        packet_id: u16,
    },
    /// PUBREL received: the id is free again.
    RemoveIncoming {
        /// The session.
        client_id: Arc<str>,
        /// The packet id.
        packet_id: u16,
    },
    /// The retained message of `topic` is now this one.
    SetRetained {
        /// The topic.
        topic: String,
        /// The index entry.
        record: RetainedRecord,
    },
    /// The topic has no retained message any more.
    DeleteRetained(String),
}
