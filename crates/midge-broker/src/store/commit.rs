//! Group commit: the broker's handle on the store.
//!
//! Requests ([`Op`] lists) go over a channel to one writer thread. The thread takes the
//! first request, then every request already waiting, turns them all into one
//! [`Batch`] and writes it with one [`Store::write`] (one fsync on disk), then completes
//! each request's future. While a batch is being fsynced, the next one gathers: the
//! more clients wait, the more each fsync carries, with no timer.
//!
//! The thread also keeps the reference counts of message bodies, so that a body is
//! written once with its first reference and deleted with its last.
//!
//! If a write fails, nothing of that batch was applied; every request of it, and every
//! later one, fails: the broker must not acknowledge what it cannot make durable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::format;
use super::{
    Batch, Change, MessageSource, MsgId, Op, OutgoingRecord, Store, StoreError, StoredMessage,
    Table,
};

/// The writer's maps: its keys are the broker's own, so a fast hash will do.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The writer thread's nice value (Linux). On a busy core the writer then does not
/// preempt the connections each time a request arrives: it runs when they yield, and
/// finds a batch in which most messages were already acknowledged by their subscribers
/// and cancel out (see [`Pending`]). Measured (BENCHMARKS.md, "Persistence"): with the
/// broker on one core, nice 0 wrote 0.67 changes per message in 1,100 fsyncs a second,
/// nice 10 wrote 0.03 in 80. Not lower: under full load the writer still gets about a
/// tenth of the core, and publishers whose subscribers are offline wait for it.
const WRITER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`WRITER_NICE`]; a failure only costs speed.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), WRITER_NICE)
    {
        tracing::debug!(error = %e, "persistence writer: priority not lowered");
    }
}

/// Most requests folded into one batch.
const MAX_REQUESTS_PER_BATCH: usize = 4096;

/// Why a commit did not become durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The store failed (this batch or an earlier one).
    #[error("{0}")]
    Store(String),
    /// The writer has stopped.
    #[error("the persistence writer has stopped")]
    Closed,
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistenceStats {
    /// Commit requests completed.
    pub requests: u64,
    /// Batches written (each one fsync on a disk store).
    pub batches: u64,
    /// Ops received.
    pub ops: u64,
    /// Changes written: what was left of the ops once those that cancel out within a
    /// batch were dropped.
    pub changes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    ops: AtomicU64,
    changes: AtomicU64,
    /// Requests sent and not yet taken by the writer.
    backlog: AtomicUsize,
    /// Told when the backlog falls to [`BACKLOG_LOW`].
    drained: tokio::sync::Notify,
}

/// Requests waiting for the writer above which [`Persistence::is_backlogged`] says so:
/// the connections then stop reading from their clients until the writer has caught up
/// to [`BACKLOG_LOW`], so that a writer slower than the publishers makes them wait
/// instead of letting its queue (and the broker's memory) grow without bound.
pub(crate) const BACKLOG_HIGH: usize = 16 * 1024;

/// See [`BACKLOG_HIGH`].
pub(crate) const BACKLOG_LOW: usize = BACKLOG_HIGH / 2;

/// The completion of one [`Persistence::commit`]: `Ok` once its ops are durable. The ops
/// were handed to the writer when `commit` returned, so dropping this loses nothing but
/// the news. Unpin and cancel-safe: it can be polled from a `select!` by reference.
#[derive(Debug)]
pub struct Commit {
    /// The request's number and where its completion is told; `None`: not sent.
    ticket: Option<(u64, Arc<Completions>)>,
    /// The waker registered for this commit, if any.
    registered: Option<Waker>,
}

impl Commit {
    /// The result if it is known already, without waiting.
    pub fn try_result(&mut self) -> Option<Result<(), CommitError>> {
        match &self.ticket {
            None => Some(Err(CommitError::Closed)),
            Some((ticket, completions)) => completions.result(*ticket),
        }
    }

    /// Waits on this thread, outside any runtime (tools, tests).
    fn wait(mut self) -> Result<(), CommitError> {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(result) = Pin::new(&mut self).poll(&mut cx) {
                return result;
            }
            std::thread::park();
        }
    }
}

impl Drop for Commit {
    fn drop(&mut self) {
        // A commit given up before its completion (its publisher was released by its
        // subscribers' acknowledgements) must not get its task woken for nothing.
        if let (Some(_), Some((ticket, completions))) = (&self.registered, &self.ticket) {
            completions.unregister(*ticket);
        }
    }
}

impl Future for Commit {
    type Output = Result<(), CommitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some((ticket, completions)) = &self.ticket else {
            return Poll::Ready(Err(CommitError::Closed));
        };
        if let Some(result) = completions.result(*ticket) {
            return Poll::Ready(result);
        }
        // A task polls with the same waker each time: registered once.
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let (ticket, completions) = (*ticket, completions.clone());
        completions.register(ticket, cx.waker());
        self.registered = Some(cx.waker().clone());
        // Completed between the first look and the registration?
        match completions.result(ticket) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

/// How requests are completed: by number. Every request sent gets the next number
/// (its ticket), in the order the writer takes them; after each batch the writer
/// advances `done` past the batch's last request and wakes the commits waiting on the
/// requests it completed. No allocation per request.
#[derive(Debug, Default)]
struct Completions {
    /// The highest ticket completed.
    done: AtomicU64,
    /// The first ticket of the batch that failed (0: none); every later one fails too.
    failed_from: AtomicU64,
    /// The failure's message.
    error: std::sync::OnceLock<String>,
    /// Set when the writer has stopped: what it has not completed never will be.
    closed: std::sync::atomic::AtomicBool,
    /// The commits waiting, by ticket.
    waiters: Mutex<Vec<(u64, Waker)>>,
}

impl Completions {
    /// The result of request `ticket`, if it is known.
    fn result(&self, ticket: u64) -> Option<Result<(), CommitError>> {
        if ticket <= self.done.load(Ordering::Acquire) {
            let failed_from = self.failed_from.load(Ordering::Acquire);
            return Some(match failed_from != 0 && ticket >= failed_from {
                true => Err(CommitError::Store(
                    self.error.get().cloned().unwrap_or_default(),
                )),
                false => Ok(()),
            });
        }
        self.closed
            .load(Ordering::Acquire)
            .then_some(Err(CommitError::Closed))
    }

    fn register(&self, ticket: u64, waker: &Waker) {
        self.waiters
            .lock()
            .expect("waiters lock poisoned")
            .push((ticket, waker.clone()));
    }

    fn unregister(&self, ticket: u64) {
        if ticket <= self.done.load(Ordering::Acquire) {
            return; // Woken and removed already, or about to be.
        }
        let mut waiters = self.waiters.lock().expect("waiters lock poisoned");
        if let Some(i) = waiters.iter().position(|(t, _)| *t == ticket) {
            waiters.swap_remove(i);
        }
    }

    /// Completes the requests up to `done` (the writer), waking their commits;
    /// `woken` is the writer's scratch list.
    fn complete(&self, done: u64, woken: &mut Vec<Waker>) {
        self.done.store(done, Ordering::Release);
        self.wake(|ticket| ticket <= done, woken);
    }

    /// Marks requests from `from` on as failed with `error` (before completing them).
    fn fail_from(&self, from: u64, error: String) {
        let _ = self.error.set(error);
        let _ = self
            .failed_from
            .compare_exchange(0, from, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The writer has stopped: wakes every commit still waiting.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake(|_| true, &mut Vec::new());
    }

    fn wake(&self, due: impl Fn(u64) -> bool, woken: &mut Vec<Waker>) {
        {
            let mut waiters = self.waiters.lock().expect("waiters lock poisoned");
            let mut i = 0;
            while i < waiters.len() {
                match due(waiters[i].0) {
                    true => woken.push(waiters.swap_remove(i).1),
                    false => i += 1,
                }
            }
        }
        for waker in woken.drain(..) {
            waker.wake();
        }
    }
}

/// Makes the [`Commit`] of a numbered request, without keeping the store open.
#[derive(Debug, Clone)]
pub(crate) struct Tickets(Arc<Completions>);

impl Tickets {
    /// The completion of request number `ticket` (0: none, complete at once).
    pub(crate) fn commit(&self, ticket: u64) -> Commit {
        Commit {
            ticket: Some((ticket, self.0.clone())),
            registered: None,
        }
    }
}

/// The ops of one request: a delivery's push and its body travel inline, with no
/// list to allocate (and for the writer to free) per message.
#[derive(Debug)]
pub enum Ops {
    /// One op.
    One(Op),
    /// Two ops, in order.
    Two(Op, Op),
    /// Any number, in order.
    List(Vec<Op>),
}

impl Ops {
    fn len(&self) -> usize {
        match self {
            Ops::One(_) => 1,
            Ops::Two(..) => 2,
            Ops::List(ops) => ops.len(),
        }
    }

    /// Calls `f` with each op, in order.
    fn for_each(self, mut f: impl FnMut(Op)) {
        match self {
            Ops::One(op) => f(op),
            Ops::Two(a, b) => {
                f(a);
                f(b);
            }
            Ops::List(ops) => ops.into_iter().for_each(f),
        }
    }
}

impl From<Vec<Op>> for Ops {
    fn from(ops: Vec<Op>) -> Self {
        Ops::List(ops)
    }
}

/// What the writer knows of the store's contents: enough to count body references and
/// to delete a session's entries. Built by `restore`.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) refs: FastMap<MsgId, u32>,
    pub(crate) outgoing: FastMap<Arc<str>, BTreeMap<u64, OutgoingRecord>>,
    pub(crate) incoming: FastMap<Arc<str>, FastSet<u16>>,
    pub(crate) retained: FastMap<String, MsgId>,
}

/// A key in a [`Pending`] batch: an outgoing entry by its session and number (its bytes
/// are made only if it is written), any other by its table and bytes.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    Outgoing(Arc<str>, u64),
    Bytes(Table, Vec<u8>),
}

/// One batch's changes by key. A later change of a key replaces an earlier one, and a
/// key both created and deleted within the batch — a message acknowledged by its
/// subscriber before the batch was written, the usual case under load — is not written
/// at all, nor encoded: the writer then spends its time on what must outlive a crash.
#[derive(Debug, Default)]
struct Pending {
    changes: FastMap<Key, PendingChange>,
}

/// A key's change in a [`Pending`] batch: the new value (`None`: delete), and whether
/// the key is new in this batch. An outgoing entry's value is left empty: it is encoded
/// from the index once the batch is applied.
type PendingChange = (Option<Vec<u8>>, bool);

impl Pending {
    /// Puts `value`; `fresh`: the key is not in the store (it is new in this batch).
    fn put(&mut self, key: Key, value: Vec<u8>, fresh: bool) {
        use std::collections::hash_map::Entry;
        match self.changes.entry(key) {
            // Keeps whether the key is new in this batch.
            Entry::Occupied(mut e) => e.get_mut().0 = Some(value),
            Entry::Vacant(e) => {
                e.insert((Some(value), fresh));
            }
        }
    }

    fn put_bytes(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.put(Key::Bytes(table, key), value, false);
    }

    fn delete(&mut self, key: Key) {
        use std::collections::hash_map::Entry;
        match self.changes.entry(key) {
            Entry::Occupied(e) if e.get().1 => {
                e.remove();
            }
            Entry::Occupied(mut e) => e.get_mut().0 = None,
            Entry::Vacant(e) => {
                e.insert((None, false));
            }
        }
    }

    /// The batch, in key order, encoding the outgoing entries from `index`; leaves
    /// this empty (its capacity kept for the next batch). An entry whose body is `gone`
    /// has ended: it is deleted, or not written at all if it is new.
    fn take_batch(&mut self, index: &Index, gone: &FastSet<MsgId>) -> Batch {
        let mut batch: Batch = self
            .changes
            .drain()
            .filter_map(|(key, (value, fresh))| match key {
                Key::Outgoing(client_id, seq) => {
                    let record = value.and_then(|_| index.outgoing.get(&client_id)?.get(&seq));
                    let value = match record {
                        Some(record) if gone.contains(&record.message) => None,
                        Some(record) => Some(format::encode_outgoing(record)),
                        None => None,
                    };
                    if value.is_none() && fresh {
                        return None;
                    }
                    Some(Change {
                        table: Table::Outgoing,
                        key: format::outgoing_key(&client_id, seq),
                        value,
                    })
                }
                Key::Bytes(table, key) => Some(Change { table, key, value }),
            })
            .collect();
        batch.sort_unstable_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
        batch
    }
}

/// A body handed to the writer, encoded or not yet.
#[derive(Debug)]
enum Body {
    Stored(StoredMessage),
    Source(MessageSource),
}

/// Per batch: bodies put, and bodies whose count may have reached zero.
#[derive(Debug, Default)]
struct BatchBodies {
    new: FastMap<MsgId, Body>,
    released: FastSet<MsgId>,
    /// New bodies whose message was gone when the batch was written (see
    /// [`MessageSource`]): neither they nor the entries referencing them are written.
    gone: FastSet<MsgId>,
}

impl Index {
    pub(crate) fn add_ref(&mut self, id: MsgId) {
        *self.refs.entry(id).or_default() += 1;
    }

    fn release(&mut self, id: MsgId, bodies: &mut BatchBodies) {
        if let Some(n) = self.refs.get_mut(&id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                bodies.released.insert(id);
            }
        }
    }

    fn apply(&mut self, op: Op, batch: &mut Pending, bodies: &mut BatchBodies) {
        match op {
            Op::PutMessage(id, message) => {
                bodies.new.insert(id, Body::Stored(message));
            }
            // A body already referenced is stored already, or comes in this batch: a
            // held-back entry sent later brings its body again (`crate::durable`).
            Op::PutMessageFrom(id, _) if self.refs.contains_key(&id) => {}
            Op::PutMessageFrom(id, source) => {
                bodies.new.insert(id, Body::Source(source));
            }
            Op::PutSession(record) => batch.put_bytes(
                Table::Sessions,
                format::session_key(&record.client_id),
                format::encode_session(&record),
            ),
            Op::DeleteSession(client_id) => {
                batch.delete(Key::Bytes(Table::Sessions, format::session_key(&client_id)));
                for (seq, record) in self.outgoing.remove(&client_id).unwrap_or_default() {
                    self.release(record.message, bodies);
                    batch.delete(Key::Outgoing(client_id.clone(), seq));
                }
                for id in self.incoming.remove(&client_id).unwrap_or_default() {
                    batch.delete(Key::Bytes(
                        Table::Incoming,
                        format::incoming_key(&client_id, id),
                    ));
                }
            }
            Op::PushOutgoing {
                client_id,
                seq,
                record,
            } => {
                self.add_ref(record.message);
                let old = self
                    .outgoing
                    .entry(client_id.clone())
                    .or_default()
                    .insert(seq, record);
                let fresh = old.is_none();
                if let Some(old) = old {
                    self.release(old.message, bodies);
                }
                // Encoded from the index at the end of the batch, if still there.
                batch.put(Key::Outgoing(client_id, seq), Vec::new(), fresh);
            }
            Op::SetOutgoingState {
                client_id,
                seq,
                state,
            } => {
                let record = self
                    .outgoing
                    .get_mut(&client_id)
                    .and_then(|entries| entries.get_mut(&seq));
                if let Some(record) = record {
                    record.state = state;
                    batch.put(Key::Outgoing(client_id, seq), Vec::new(), false);
                }
            }
            Op::RemoveOutgoing { client_id, seq } => {
                let removed = self
                    .outgoing
                    .get_mut(&client_id)
                    .and_then(|entries| entries.remove(&seq));
                if let Some(record) = removed {
                    self.release(record.message, bodies);
                    batch.delete(Key::Outgoing(client_id, seq));
                }
            }
            Op::AddIncoming {
                client_id,
                packet_id,
            } => {
                let key = format::incoming_key(&client_id, packet_id);
                let fresh = self
                    .incoming
                    .entry(client_id)
                    .or_default()
                    .insert(packet_id);
                batch.put(
                    Key::Bytes(Table::Incoming, key),
                    format::encode_incoming(),
                    fresh,
                );
            }
            Op::RemoveIncoming {
                client_id,
                packet_id,
            } => {
                if let Some(ids) = self.incoming.get_mut(&client_id) {
                    ids.remove(&packet_id);
                }
                batch.delete(Key::Bytes(
                    Table::Incoming,
                    format::incoming_key(&client_id, packet_id),
                ));
            }
            Op::SetRetained { topic, record } => {
                self.add_ref(record.message);
                let value = format::encode_retained(&record);
                let key = topic.as_bytes().to_vec();
                if let Some(old) = self.retained.insert(topic, record.message) {
                    self.release(old, bodies);
                }
                batch.put_bytes(Table::Retained, key, value);
            }
            Op::DeleteRetained(topic) => {
                if let Some(old) = self.retained.remove(&topic) {
                    self.release(old, bodies);
                    batch.delete(Key::Bytes(Table::Retained, topic.into_bytes()));
                }
            }
        }
    }

    /// Writes the new bodies that are referenced, deletes those no longer referenced;
    /// leaves in `bodies` only the ids of those gone.
    fn finish(&mut self, batch: &mut Pending, bodies: &mut BatchBodies) {
        for id in bodies.released.drain() {
            if self.refs.get(&id) == Some(&0) {
                self.refs.remove(&id);
                if !bodies.new.contains_key(&id) {
                    batch.delete(Key::Bytes(Table::Messages, format::message_key(id)));
                }
            }
        }
        for (id, body) in bodies.new.drain() {
            if self.refs.get(&id).is_some_and(|&n| n > 0) {
                let value = match body {
                    Body::Stored(message) => format::encode_message(&message),
                    Body::Source(source) => match source.to_stored() {
                        Some(message) => format::encode_message(&message),
                        None => {
                            bodies.gone.insert(id);
                            continue;
                        }
                    },
                };
                batch.put_bytes(Table::Messages, format::message_key(id), value);
            }
        }
    }
}

/// The broker's handle on the store: durable commits with group commit, body reads,
/// message ids. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Persistence {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    /// A std mutex around the sender: held only to send.
    sender: Mutex<Sender>,
    completions: Arc<Completions>,
    writer: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    counters: Arc<Counters>,
    /// Bodies handed to the writer and not yet written ([`Persistence::hold`]).
    unwritten: Arc<Mutex<HashMap<MsgId, StoredMessage>>>,
    /// What the writer also runs ([`Persistence::set_ticker`]).
    ticker: Mutex<Option<Box<dyn Ticker>>>,
}

/// Work the writer thread does besides its requests: sending the store entries that
/// the broker held back once they have waited long enough (`crate::durable`).
pub(crate) trait Ticker: Send {
    /// Called before each batch, and every [`NAP`] while the writer waits; sends what
    /// is due through `persistence`. Returns whether something is still held: the
    /// writer then keeps napping instead of sleeping until the next request.
    fn tick(&mut self, persistence: &Persistence, now: Instant) -> bool;
}

impl std::fmt::Debug for dyn Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticker")
    }
}

/// The writer's channel, and the number of the last request sent on it.
#[derive(Debug)]
struct Sender {
    channel: Option<mpsc::Sender<Ops>>,
    issued: u64,
}

impl Sender {
    /// Sends `ops`; returns their ticket, or `None` if the writer has stopped.
    fn send(&mut self, ops: Ops) -> Option<u64> {
        self.channel.as_ref()?.send(ops).ok()?;
        self.issued += 1;
        Some(self.issued)
    }
}

/// Tells the commits still waiting when the writer stops, however it stops.
struct CloseOnExit(Arc<Completions>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Persistence {
    /// Starts the writer over `store`, as `restored` left it (see [`super::restore`]).
    pub fn start(store: Arc<dyn Store>, restored: &mut super::Restored) -> Persistence {
        let index = std::mem::take(&mut restored.index);
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            store,
            sender: Mutex::new(Sender {
                channel: Some(sender),
                issued: 0,
            }),
            completions: Arc::new(Completions::default()),
            writer: Mutex::new(None),
            next_id: AtomicU64::new(restored.next_message_id),
            counters: Arc::new(Counters::default()),
            unwritten: Arc::default(),
            ticker: Mutex::new(None),
        });
        let writer = {
            let this = Arc::downgrade(&shared);
            let store = shared.store.clone();
            let counters = shared.counters.clone();
            let unwritten = shared.unwritten.clone();
            let completions = shared.completions.clone();
            std::thread::Builder::new()
                .name("midge-store".into())
                .spawn(move || {
                    let close = CloseOnExit(completions);
                    lower_priority();
                    let writer = Writer {
                        store: &*store,
                        counters: &counters,
                        unwritten: &unwritten,
                        completions: &close.0,
                        persistence: this,
                    };
                    writer.run(index, &receiver);
                })
                .ok()
        };
        match writer {
            Some(writer) => *shared.writer.lock().expect("writer lock poisoned") = Some(writer),
            None => {
                shared.sender.lock().expect("sender lock poisoned").channel = None;
                shared.completions.close();
            }
        }
        Persistence { shared }
    }

    /// Has the writer call `ticker` before each batch, and every [`NAP`] while it
    /// waits with something held.
    pub(crate) fn set_ticker(&self, ticker: Box<dyn Ticker>) {
        *self.shared.ticker.lock().expect("ticker lock poisoned") = Some(ticker);
    }

    /// A new message id, never used in this store.
    pub fn next_message_id(&self) -> MsgId {
        MsgId(self.shared.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `ops` to the writer; the future completes once they are durable. The ops
    /// of one call are applied together and in order; calls are applied in the order
    /// they were made.
    pub fn commit(&self, ops: impl Into<Ops>) -> Commit {
        let ticket = self.send_counted(ops.into());
        Commit {
            ticket: ticket.map(|t| (t, self.shared.completions.clone())),
            registered: None,
        }
    }

    /// Sends `ops` to the writer, in order with the commits, for nobody to wait on.
    /// Failures are logged by the writer.
    pub fn send(&self, ops: impl Into<Ops>) {
        self.send_counted(ops.into());
    }

    /// Sends `ops` to the writer; returns the request's number, for
    /// [`Tickets::commit`] (`u64::MAX`, which fails as closed, if the writer
    /// has stopped).
    pub(crate) fn send_numbered(&self, ops: impl Into<Ops>) -> u64 {
        self.send_counted(ops.into()).unwrap_or(u64::MAX)
    }

    /// Where the completions of numbered requests are told (see
    /// [`Persistence::send_numbered`]).
    pub(crate) fn tickets(&self) -> Tickets {
        Tickets(self.shared.completions.clone())
    }

    /// Sends `ops`, counted in the backlog; their ticket, `None` if the writer stopped.
    fn send_counted(&self, ops: Ops) -> Option<u64> {
        let backlog = self.enqueue();
        let ticket = self
            .shared
            .sender
            .lock()
            .expect("sender lock poisoned")
            .send(ops);
        if ticket.is_none() {
            backlog.fetch_sub(1, Ordering::Relaxed);
        }
        ticket
    }

    /// Keeps `message` readable through [`Persistence::message`] until the writer has
    /// written it: call it before committing a `PutMessage` that a reader may look
    /// for before the commit is durable (a retained message).
    pub fn hold(&self, id: MsgId, message: StoredMessage) {
        self.shared
            .unwritten
            .lock()
            .expect("unwritten lock poisoned")
            .insert(id, message);
    }

    /// [`Persistence::commit`] for threads outside the runtime (tools, tests).
    pub fn commit_blocking(&self, ops: impl Into<Ops>) -> Result<(), CommitError> {
        self.commit(ops).wait()
    }

    /// Reads a message body (a retained message a subscription needs).
    pub fn message(&self, id: MsgId) -> Result<Option<StoredMessage>, StoreError> {
        let held = self
            .shared
            .unwritten
            .lock()
            .expect("unwritten lock poisoned")
            .get(&id)
            .cloned();
        if held.is_some() {
            return Ok(held);
        }
        let Some(value) = self
            .shared
            .store
            .get(Table::Messages, &format::message_key(id))?
        else {
            return Ok(None);
        };
        format::decode_message(&value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.shared.store.describe().into(),
                reason: format!("message {}: {e}", id.0),
            })
    }

    /// Counts a request about to be sent, before it is sent: the writer may take it at
    /// once, and it counts what it takes down. Returns the counter, for a send that
    /// failed to be taken back.
    fn enqueue(&self) -> &AtomicUsize {
        let backlog = &self.shared.counters.backlog;
        backlog.fetch_add(1, Ordering::Relaxed);
        backlog
    }

    /// Whether the writer is behind by more than [`BACKLOG_HIGH`] requests.
    pub fn is_backlogged(&self) -> bool {
        self.shared.counters.backlog.load(Ordering::Relaxed) > BACKLOG_HIGH
    }

    /// Completes once the writer's backlog is at most [`BACKLOG_LOW`] requests.
    pub async fn drained(&self) {
        let counters = &self.shared.counters;
        loop {
            let drained = counters.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so that a drain in between is not missed.
            drained.as_mut().enable();
            if counters.backlog.load(Ordering::Relaxed) <= BACKLOG_LOW {
                return;
            }
            drained.await;
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> PersistenceStats {
        let c = &self.shared.counters;
        PersistenceStats {
            requests: c.requests.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            changes: c.changes.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the requests already sent, and waits for it.
    pub fn close(&self) {
        self.shared
            .sender
            .lock()
            .expect("sender lock poisoned")
            .channel
            .take();
        if let Some(writer) = self
            .shared
            .writer
            .lock()
            .expect("writer lock poisoned")
            .take()
        {
            let _ = writer.join();
        }
    }
}

/// How long the writer naps between looks at its queue while requests keep coming,
/// instead of sleeping in `recv`: a sender wakes a thread asleep in `recv` with a system
/// call on each request, which on a busy core costs the connections more than the
/// writer's naps; a commit waits at most this much longer, beside a millisecond fsync.
const NAP: Duration = Duration::from_micros(200);

/// Naps in a row with nothing to take after which the writer sleeps in `recv` (an idle
/// broker then has an idle writer).
const NAPS_BEFORE_SLEEP: u32 = 50;

/// The writer thread's shared state.
struct Writer<'a> {
    store: &'a dyn Store,
    counters: &'a Counters,
    unwritten: &'a Mutex<HashMap<MsgId, StoredMessage>>,
    completions: &'a Completions,
    /// The broker's handle, for the ticker (weak: the writer stops when the broker
    /// drops its last handle).
    persistence: std::sync::Weak<Shared>,
}

/// The writer thread's clock.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

impl Writer<'_> {
    /// The next request: taken at once if one waits; else after naps while requests
    /// keep coming or the ticker holds something; else by sleeping until one comes.
    /// `None`: the broker closed the store.
    fn next_request(&self, receiver: &mpsc::Receiver<Ops>) -> Option<Ops> {
        loop {
            for _ in 0..NAPS_BEFORE_SLEEP {
                match receiver.try_recv() {
                    Ok(request) => return Some(request),
                    Err(mpsc::TryRecvError::Disconnected) => return None,
                    Err(mpsc::TryRecvError::Empty) => {
                        self.tick();
                        std::thread::sleep(NAP);
                    }
                }
            }
            if !self.tick() {
                return receiver.recv().ok();
            }
        }
    }

    /// Runs the ticker, if there is one; returns whether it still holds something.
    fn tick(&self) -> bool {
        let Some(shared) = self.persistence.upgrade() else {
            return false;
        };
        let persistence = Persistence { shared };
        let mut ticker = persistence
            .shared
            .ticker
            .lock()
            .expect("ticker lock poisoned");
        match ticker.as_mut() {
            Some(ticker) => ticker.tick(&persistence, now()),
            None => false,
        }
    }

    /// Takes requests until the broker closes the store.
    fn run(&self, mut index: Index, receiver: &mpsc::Receiver<Ops>) {
        let counters = self.counters;
        // Kept from one batch to the next, with their capacity.
        let mut pending = Pending::default();
        let mut bodies = BatchBodies::default();
        let mut woken = Vec::new();
        let mut completed = 0;
        let mut failed = false;
        while let Some(first) = self.next_request(receiver) {
            // What the ticker sends now joins this batch.
            self.tick();
            let (mut taken, mut ops) = (0, 0);
            let mut next = Some(first);
            while let Some(request) = next {
                taken += 1;
                ops += request.len();
                // After a failure the ops are dropped: they all fail.
                if !failed {
                    request.for_each(|op| index.apply(op, &mut pending, &mut bodies));
                }
                next = match taken < MAX_REQUESTS_PER_BATCH {
                    true => receiver.try_recv().ok(),
                    false => None,
                };
            }
            let after = counters.backlog.fetch_sub(taken, Ordering::Relaxed) - taken;
            if after <= BACKLOG_LOW {
                // Cheap with nobody waiting; waking at every batch below the mark leaves
                // no waiter behind, whatever the order of its check and this batch.
                counters.drained.notify_waiters();
            }
            counters.ops.fetch_add(ops as u64, Ordering::Relaxed);
            if !failed {
                if let Err(e) = self.write(&mut index, &mut pending, &mut bodies) {
                    tracing::error!(
                        error = %e,
                        "persistence store write failed: no more QoS 1/2 messages can be acknowledged"
                    );
                    self.completions.fail_from(completed + 1, e.to_string());
                    failed = true;
                }
            }
            completed += taken as u64;
            counters.requests.fetch_add(taken as u64, Ordering::Relaxed);
            self.completions.complete(completed, &mut woken);
        }
    }

    /// Writes one batch: what is left of its ops once those that cancel out are gone.
    fn write(
        &self,
        index: &mut Index,
        pending: &mut Pending,
        bodies: &mut BatchBodies,
    ) -> Result<(), StoreError> {
        // Only a retained body can be held (`Persistence::hold`): most batches have none
        // to release.
        let held = !self
            .unwritten
            .lock()
            .expect("unwritten lock poisoned")
            .is_empty();
        let put: Vec<MsgId> = match held {
            true => bodies.new.keys().copied().collect(),
            false => Vec::new(),
        };
        index.finish(pending, bodies);
        let batch = pending.take_batch(index, &bodies.gone);
        bodies.gone.clear();
        self.counters
            .changes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        // A batch whose changes cancelled out needs no write, nor an fsync.
        if !batch.is_empty() {
            self.store.write(&batch)?;
        }
        if !put.is_empty() {
            let mut unwritten = self.unwritten.lock().expect("unwritten lock poisoned");
            for id in put {
                unwritten.remove(&id);
            }
        }
        Ok(())
    }
}
