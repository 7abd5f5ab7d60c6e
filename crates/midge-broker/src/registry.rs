//! The sessions of the broker, by client identifier.
//!
//! A [`SessionEntry`] is the shared, long-lived part of a session: its mailbox (which
//! publishers push into), the slot holding its [`Session`] state while no connection
//! owns it, and the means to ask the connection that owns it to close (session
//! take-over, [MQTT-3.1.4-3]). The registry is touched only on connect and disconnect,
//! never on the per-message path.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use midge_codec::{QoS, ReasonCode};
use tokio::sync::{Notify, Semaphore};
use tokio::task::AbortHandle;

use crate::mailbox::{Mailbox, MailboxCommon, MailboxLimits, Pushed, Wakeup};
use crate::message::{Delivery, Message};
use crate::parking::Reviver;
use crate::session::Session;

/// A will message waiting for its delay to pass, its session to end, or a new
/// connection (which cancels it, [MQTT-3.1.3-9], unless it starts a clean session: the
/// old session ends then, and the will goes out).
#[derive(Debug)]
pub struct PendingWill {
    /// The message to publish.
    pub message: Arc<Message>,
}

/// What a session keeps while no connection owns it, in its entry's slot (boxed: an
/// entry whose connection is live keeps one word for it).
#[derive(Debug)]
pub struct Offline {
    /// The session state.
    pub session: Session,
    /// The will of the last connection, while it waits (see [`PendingWill`]).
    pub will: Option<PendingWill>,
    /// When the session expires (`None`: never).
    pub expires_at: Option<std::time::Instant>,
}

/// The session's slot, held ([`SessionEntry::hold_slot`]); given back when dropped.
#[derive(Debug)]
pub struct SlotHold(Arc<SessionEntry>);

impl SlotHold {
    /// The slot's state: what the session keeps while no connection owns it; `None`
    /// before its first connection and while a connection owns it. (A std mutex's
    /// guard: not to be held across an await.)
    pub fn get(&self) -> std::sync::MutexGuard<'_, Option<Box<Offline>>> {
        self.0.slot.lock().expect("slot lock poisoned")
    }
}

impl Drop for SlotHold {
    fn drop(&mut self) {
        self.0.slot_owner.add_permits(1);
    }
}

/// How the connection that owns a session is asked to close: a take-over or a shutdown;
/// and the timers of the session while no connection owns it (under the same lock: each
/// is touched a few times a connection, and a lock of its own would take a word more in
/// every entry).
#[derive(Debug, Default)]
struct Kick {
    /// The generation of the connection that a kick closes; 0: none (not yet connected,
    /// or kicked already).
    owner: u32,
    /// The last kick: the generation it closes, and why.
    sent: Option<(u32, ReasonCode)>,
    /// The owner's task, woken by a kick. `None` while it is parked: a kick then
    /// revives it through the parker, at the place its mailbox keeps (`Mailbox::park`).
    waker: Option<std::task::Waker>,
    /// Timers of a disconnected session (expiry, will delay), cancelled on reconnect.
    /// (Boxed, made on the first: a connected session has none, and an empty `Vec` is
    /// three words in every entry.)
    #[allow(clippy::box_collection)]
    timers: Option<Box<Vec<AbortHandle>>>,
}

impl Kick {
    /// No connection to kick, and no kick sent.
    fn clear(&mut self, owner: u32) {
        (self.owner, self.sent, self.waker) = (owner, None, None);
    }
}

/// The shared part of one session.
#[derive(Debug)]
pub struct SessionEntry {
    /// Unique id of this entry (router key).
    pub id: u64,
    /// The client identifier.
    pub client_id: Arc<str>,
    /// Deliveries routed to the session. A std mutex: held only to push or pop, never
    /// across an await.
    pub mailbox: Mutex<Mailbox>,
    /// Who holds the session's slot: one permit, held by the owning connection for its
    /// whole life ([`SessionEntry::hold_slot`]); a taking-over connection waits for it
    /// until the old one has finished. (A semaphore and a std mutex in the entry, not an
    /// `Arc<tokio::sync::Mutex>` of its own: one allocation, 32 bytes, less a session.)
    slot_owner: Semaphore,
    /// The session state while no connection owns it ([`SlotHold::get`]). Touched only
    /// by the slot's holder, never across an await.
    slot: Mutex<Option<Box<Offline>>>,
    /// Asks the owning connection to close (see [`SessionEntry::kick`]); the timers.
    kick: Mutex<Kick>,
    /// Incremented by each new connection; a timer acts only if it still matches.
    /// Never 0 (a kick's "none"); it wraps after 2^32 connections of one client id.
    pub generation: AtomicU32,
    /// Whether a connection owns the session now; read without the mailbox lock when
    /// a shared subscription picks a member (online members first).
    online: AtomicBool,
}

impl SessionEntry {
    /// Pushes a delivery into the mailbox and wakes the connection if the mailbox was
    /// empty. A mailbox with deliveries already has its wake-up pending: the connection
    /// drains it to the end, or wakes itself for the rest (`connection::drain_mailbox`),
    /// or waits for room in the session, after which it drains again.
    ///
    /// With `routing` (persistence on), a QoS 1/2 delivery to a session kept in the store
    /// gets a sequence number and a store entry ([`crate::durable::Routing::push`]).
    pub(crate) fn push(
        self: &Arc<Self>,
        delivery: crate::message::Delivery,
        routing: Option<&mut crate::durable::Routing<'_>>,
    ) -> Pushed {
        self.pushing(|mailbox| {
            let pushed = match routing {
                Some(routing) => routing.push(self, mailbox, delivery),
                None => mailbox.push(delivery),
            };
            (pushed, pushed != Pushed::Dropped)
        })
    }

    /// Runs `push` on the locked mailbox; once it is unlocked, wakes the connection if
    /// `push` says it queued anything (a waiting connection registered when it found
    /// the mailbox empty).
    fn pushing<R>(&self, push: impl FnOnce(&mut Mailbox) -> (R, bool)) -> R {
        let (result, wakeup) = {
            let mut mailbox = self.mailbox.lock().expect("mailbox lock poisoned");
            let (result, queued) = push(&mut mailbox);
            let wakeup = match queued {
                true => mailbox.take_wakeup(),
                false => Wakeup::Nobody,
            };
            (result, wakeup)
        };
        wakeup.wake(self.id);
        result
    }

    /// Pushes a delivery of each message of `run` in order, under one lock of the
    /// mailbox, and wakes the connection as [`SessionEntry::push`] does. `options`
    /// gives a message's QoS and RETAIN flag for this session (`None`: not for it);
    /// `id` is the subscription identifier. Returns how many were queued, and whether
    /// the mailbox is congested (see [`Pushed::Congested`]). Persistence off only: no
    /// delivery gets a store entry.
    pub(crate) fn push_run(
        self: &Arc<Self>,
        run: &[Arc<Message>],
        mut options: impl FnMut(&Message) -> Option<(QoS, bool)>,
        id: Option<u32>,
    ) -> (usize, bool) {
        self.pushing(|mailbox| {
            let (mut queued, mut congested) = (0, false);
            for message in run {
                let Some((qos, retain)) = options(message) else {
                    continue;
                };
                let make = || Delivery::through(message.clone(), qos, retain, id);
                match mailbox.push_with(qos, message.payload.len(), make) {
                    Pushed::Queued => queued += 1,
                    Pushed::Congested => {
                        queued += 1;
                        congested = true;
                    }
                    Pushed::Dropped => {}
                }
            }
            ((queued, congested), queued > 0)
        })
    }

    /// Marks the session as served by a live connection, or not: the mailbox then
    /// queues or drops offline QoS 0 messages, and shared subscriptions prefer online
    /// members.
    pub fn set_online(&self, online: bool) {
        let mut mailbox = self.mailbox.lock().expect("mailbox lock poisoned");
        mailbox.set_online(online);
        self.online.store(online, Ordering::Release);
    }

    /// Keeps the session's QoS 1/2 deliveries in the persistence store from now on,
    /// numbered from `next_seq`; `None`: no longer.
    pub fn set_persistent(&self, next_seq: Option<u64>) {
        let mut mailbox = self.mailbox.lock().expect("mailbox lock poisoned");
        mailbox.set_persistent(next_seq);
    }

    /// Whether the session is kept in the persistence store.
    pub fn is_persistent(&self) -> bool {
        self.mailbox
            .lock()
            .expect("mailbox lock poisoned")
            .is_persistent()
    }

    /// Whether a connection owns the session now.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Asks the connection that owns the session, if one does, to close with `reason`
    /// (a take-over: [MQTT-3.1.4-3]; a shutdown). Each connection is kicked once.
    pub fn kick(&self, reason: ReasonCode) {
        let waker = {
            let mut kick = self.kick.lock().expect("kick lock poisoned");
            if kick.owner == 0 {
                return;
            }
            kick.sent = Some((std::mem::take(&mut kick.owner), reason));
            kick.waker.take()
        };
        match waker {
            Some(waker) => waker.wake(),
            // Parked (or not polled yet): its place is in the mailbox, set before the kick's
            // waker went (`Conn::quiet_parked`); none if a delivery revived it already, or
            // if it has never parked (it sees the kick at its first poll).
            None => {
                let wakeup = self.mailbox.lock().expect("mailbox lock poisoned").parked();
                wakeup.wake(self.id);
            }
        }
    }

    /// Makes the connection of `generation` the one that a kick closes. The connection
    /// before it is gone: it held the session's slot until it ended.
    pub(crate) fn own_kick(&self, generation: u32) {
        self.kick
            .lock()
            .expect("kick lock poisoned")
            .clear(generation);
    }

    /// The connection of `generation` has ended: nothing is kicked until the next one
    /// owns the session.
    pub(crate) fn disown_kick(&self, generation: u32) {
        let mut kick = self.kick.lock().expect("kick lock poisoned");
        if kick.owner == generation || kick.sent.is_some_and(|(kicked, _)| kicked == generation) {
            kick.clear(0);
        }
    }

    /// The reason the connection of `generation` was kicked with, if it was; otherwise
    /// `waker` is woken by the kick.
    pub(crate) fn poll_kick(
        &self,
        generation: u32,
        waker: &std::task::Waker,
    ) -> Option<ReasonCode> {
        let mut kick = self.kick.lock().expect("kick lock poisoned");
        match kick.sent {
            Some((kicked, reason)) if kicked == generation => Some(reason),
            _ => {
                if !kick
                    .waker
                    .as_ref()
                    .is_some_and(|known| known.will_wake(waker))
                {
                    kick.waker = Some(waker.clone());
                }
                None
            }
        }
    }

    /// For the connection of `generation`, which parks: the reason it was kicked with,
    /// if it was; otherwise a kick revives it (see `Mailbox::park`).
    pub(crate) fn park_kick(&self, generation: u32) -> Option<ReasonCode> {
        let mut kick = self.kick.lock().expect("kick lock poisoned");
        match kick.sent {
            Some((kicked, reason)) if kicked == generation => Some(reason),
            _ => {
                kick.waker = None;
                None
            }
        }
    }

    /// Waits until no one else holds the session's slot, and holds it until the returned
    /// [`SlotHold`] drops.
    pub async fn hold_slot(self: &Arc<Self>) -> SlotHold {
        self.slot_owner
            .acquire()
            .await
            .expect("the slot's semaphore is never closed")
            .forget();
        SlotHold(self.clone())
    }

    /// Keeps `timer`, one of the disconnected session's timers, for
    /// [`SessionEntry::cancel_timers`].
    pub fn add_timer(&self, timer: AbortHandle) {
        self.kick
            .lock()
            .expect("kick lock poisoned")
            .timers
            .get_or_insert_with(Box::default)
            .push(timer);
    }

    /// Cancels the timers of a disconnected session.
    pub fn cancel_timers(&self) {
        let timers = self.kick.lock().expect("kick lock poisoned").timers.take();
        for timer in timers.into_iter().flat_map(|timers| *timers) {
            timer.abort();
        }
    }
}

/// All sessions, by client id.
#[derive(Debug)]
pub struct Registry {
    /// A std mutex: touched on connect and disconnect only, never held across an await.
    sessions: Mutex<HashSet<ByClientId>>,
    next_id: AtomicU64,
    /// The mailboxes' limits, and the count of the messages they dropped.
    mailboxes: Arc<MailboxCommon>,
    /// Wake the publishers waiting for congested mailboxes to drain (see [`room`]).
    rooms: Arc<[Notify]>,
}

/// How many [`Registry::rooms`] there are.
const ROOMS: usize = 64;

/// What wakes the publishers waiting for the congested mailbox of session `id` to drain
/// (see [`crate::mailbox`]): one of [`ROOMS`], shared by the sessions whose id falls on
/// it, rather than one in each session's entry. A publisher woken for another session's
/// mailbox finds its own still congested and waits again.
pub(crate) fn room(rooms: &[Notify], id: u64) -> &Notify {
    &rooms[(id % rooms.len() as u64) as usize]
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(MailboxLimits::default())
    }
}

/// A session's entry in the registry's set, found by its client id (the entry's own:
/// a set of one word per slot, where a map by a separate key took three).
#[derive(Debug)]
struct ByClientId(Arc<SessionEntry>);

impl Borrow<str> for ByClientId {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

impl PartialEq for ByClientId {
    fn eq(&self, other: &Self) -> bool {
        self.0.client_id == other.0.client_id
    }
}

impl Eq for ByClientId {}

impl Hash for ByClientId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the `str` it borrows as.
        self.0.client_id.hash(state);
    }
}

impl Registry {
    /// No session yet; their mailboxes will have `limits`. Nothing parks.
    pub fn new(limits: MailboxLimits) -> Self {
        Registry::parking(limits, Reviver::default())
    }

    /// No session yet; their mailboxes will have `limits`, and their parked connections
    /// are revived by `reviver`.
    pub(crate) fn parking(limits: MailboxLimits, reviver: Reviver) -> Self {
        Registry {
            sessions: Mutex::default(),
            next_id: AtomicU64::new(0),
            mailboxes: MailboxCommon::parking(limits, reviver),
            rooms: (0..ROOMS).map(|_| Notify::new()).collect(),
        }
    }

    /// The rooms of [`room`].
    pub(crate) fn rooms(&self) -> &Arc<[Notify]> {
        &self.rooms
    }

    /// The entry for `client_id`, created if there is none, for a new connection: its
    /// generation is bumped (under the registry lock, so that a session-expiry timer
    /// racing with this connection sees it) and returned.
    pub fn connect(&self, client_id: &str) -> (Arc<SessionEntry>, u32) {
        let mut sessions = self.sessions.lock().expect("registry lock poisoned");
        if let Some(ByClientId(entry)) = sessions.get(client_id) {
            let mut generation = 0;
            while generation == 0 {
                generation = entry
                    .generation
                    .fetch_add(1, Ordering::SeqCst)
                    .wrapping_add(1);
            }
            return (entry.clone(), generation);
        }
        let entry = Arc::new(SessionEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            client_id: Arc::from(client_id),
            mailbox: Mutex::new(Mailbox::with(self.mailboxes.clone())),
            slot_owner: Semaphore::new(1),
            slot: Mutex::default(),
            kick: Mutex::default(),
            generation: AtomicU32::new(1),
            online: AtomicBool::new(false),
        });
        sessions.insert(ByClientId(entry.clone()));
        (entry, 1)
    }

    /// Removes `entry` if it is still registered and no connection came after the one of
    /// `generation`. Returns whether it was removed.
    pub fn remove_if_current(&self, entry: &Arc<SessionEntry>, generation: u32) -> bool {
        let mut sessions = self.sessions.lock().expect("registry lock poisoned");
        let current = sessions
            .get(&*entry.client_id)
            .is_some_and(|e| Arc::ptr_eq(&e.0, entry))
            && entry.generation.load(Ordering::SeqCst) == generation;
        if current {
            sessions.remove(&*entry.client_id);
        }
        current
    }

    /// Asks every connection to close with `reason` (a shutdown).
    pub fn kick_all(&self, reason: ReasonCode) {
        let sessions = self.sessions.lock().expect("registry lock poisoned");
        for ByClientId(entry) in sessions.iter() {
            entry.kick(reason);
        }
    }

    /// Number of sessions, connected or not.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("registry lock poisoned").len()
    }

    /// True when there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped by the mailboxes since the start (full queues, QoS 0 for
    /// offline clients).
    pub fn dropped(&self) -> u64 {
        self.mailboxes.dropped.load(Ordering::Relaxed)
    }
}
