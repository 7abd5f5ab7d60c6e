//! Parking: an idle plain-TCP connection gives up its task and its tokio I/O
//! registration, and keeps only its state and its socket, watched by one shared poll.
//!
//! An open connection is a task that polls its socket, mailbox, kick and timer
//! (`connection::Conn`). Tokio keeps, for each, a task cell (about 256 bytes) and an I/O
//! registration (256 bytes): half an idle connection's memory. Most connections of a
//! big broker are idle most of the time (sensors that publish now and then, subscribers
//! that wait), so after a while without work a connection is parked instead:
//!
//! - **When.** [`Parking`] counts epochs, one per tick (`Config::park_idle_ms`). A
//!   connection that finds nothing to do asks to be woken at the next tick; woken by a
//!   tick with nothing done since the epoch before last (so at least one whole tick
//!   idle), it parks. A connection with anything under way (bytes to write or decode,
//!   commits, a pause) does not park; nor do TLS, WebSocket and Unix socket connections.
//! - **Young connections park sooner.** For its first two ticks a new connection counts
//!   its idleness in quick epochs, [`QUICK`] to a tick, and parks at the first quick tick
//!   that finds it with nothing done since the one before: a client that connects,
//!   subscribes and waits parks within a 32nd of a tick of its last packet, not one to
//!   two ticks. Many clients that connect at once (a gateway restarting) then do not all
//!   hold a task and its buffers at once: the room of those parked goes to the next
//!   ones. A connection revived in its first two ticks is still young (it keeps the quick
//!   epoch it was born in). A client that pauses between packets pays a revival
//!   (~10 µs) per pause in its first two ticks, and none after.
//! - **Parked.** Its task ends. Its socket leaves tokio for the shared `mio::Poll`, with
//!   the connection's place as token; what it keeps (`connection::Parked`: its session
//!   and what it needs to take up its task again, without buffers, timer or the state
//!   of work under way) waits in a slab at that place. Its mailbox keeps the place
//!   instead of the task's waker, and its kick (take-over, shutdown) keeps no waker: a
//!   delivery or a kick then has the parker revive the connection of that session at
//!   that place ([`Reviver`]); its keep-alive deadline goes into a heap.
//! - **Revived** by the socket becoming readable (a packet, or the client closing), a
//!   delivery to its mailbox, its kick, or its deadline: one thread, the parker
//!   ([`run`]), waits on the poll, takes the connection out of the slab, gives its socket
//!   back to tokio and spawns a task that serves it exactly as before. (A thread rather
//!   than a task: tokio registers another poll only through `unsafe` code.)
//!
//! Nothing is lost on the way: the waker goes into the mailbox under the mailbox's lock,
//! and only if it is empty; a socket with bytes already waiting is reported by the poll
//! as soon as it is registered; and the slab is locked from the first step of parking to
//! the last, so a revival that comes meanwhile finds the connection there.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::connection::{self, Conn, Parked};

/// Events taken from the poll at once.
const EVENTS: usize = 256;

/// Quick epochs to a tick (see the module's doc).
pub(crate) const QUICK: u32 = 32;

/// The poll token of [`Inner::waker`]; parked connections' tokens are their places in
/// the slab.
const WAKER: mio::Token = mio::Token(usize::MAX);

/// The broker's parked connections, and the way in for a connection that parks.
#[derive(Debug)]
pub(crate) struct Parking {
    inner: Arc<Inner>,
}

struct Inner {
    /// Registers the sockets of parked connections with the shared poll.
    registry: mio::Registry,
    /// Wakes the parker: for `woken`, a new earliest deadline, or the close.
    waker: mio::Waker,
    state: Mutex<State>,
    /// Parked connections to revive, by place and session: their mailbox got a delivery,
    /// or their kick fired ([`Reviver`]).
    woken: Mutex<Vec<(u32, u64)>>,
    /// Deadlines count milliseconds from here.
    start: Instant,
    /// Ticks since the start (see the module's doc).
    ticks: Epochs,
    /// Quick ticks since the start, [`QUICK`] to a tick (young connections).
    quick: Epochs,
    /// Zero: nothing ever parks.
    tick: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Parked connections, each with its socket, at the place their poll token names.
    /// (A slab: a word or two per connection, where a map by key took five.)
    parked: slab::Slab<Box<Spot>>,
    /// The generation of the next connection that parks.
    next_generation: u32,
    /// Parked connections' deadlines (keep alive), earliest first. A connection revived
    /// before its deadline leaves its entry behind; the entry then finds nothing (or
    /// another generation). With more left behind than parked, the heap is made anew.
    deadlines: BinaryHeap<Reverse<Deadline>>,
    /// Set at shutdown: everything parked is revived, and nothing parks again.
    closed: bool,
}

impl State {
    /// Makes the deadline heap anew from the parked connections', without the entries
    /// that connections revived since have left behind.
    fn drop_stale_deadlines(&mut self, inner: &Inner) {
        self.deadlines = self
            .parked
            .iter()
            .filter_map(|(index, spot)| {
                let at = inner.millis(spot.parked.deadline()?);
                let key = Key {
                    index: index as u32,
                    generation: spot.generation,
                };
                Some(Reverse(Deadline { at, key }))
            })
            .collect();
    }

    /// Takes out the connection that `cause` names, if it is still parked.
    fn take(&mut self, cause: Cause) -> Option<Box<Spot>> {
        let index = match cause {
            Cause::Place(index) => index,
            Cause::Deadline(key) => key.index,
            Cause::Session { place, .. } => place,
        } as usize;
        let spot = self.parked.get(index)?;
        let named = match cause {
            Cause::Place(_) => true,
            Cause::Deadline(key) => spot.generation == key.generation,
            Cause::Session { entry, .. } => spot.parked.entry_id() == entry,
        };
        named.then(|| self.parked.remove(index))
    }
}

/// Why the parker takes a connection out.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// Whichever connection is parked at this place: an event of the socket registered
    /// there, or the shutdown.
    Place(u32),
    /// The deadline of the connection of this key (an earlier one at the same place
    /// may have left its deadline behind).
    Deadline(Key),
    /// A delivery or a kick for the session `entry`, whose connection parked at `place`
    /// (see [`Reviver`]); the place may hold another session's connection by now.
    Session { place: u32, entry: u64 },
}

/// A parked connection and its socket.
struct Spot {
    parked: Parked,
    socket: mio::net::TcpStream,
    /// Tells this connection from earlier ones at the same place, whose deadlines may
    /// still come.
    generation: u32,
}

/// Names a parked connection: its place in the slab, and its generation there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    index: u32,
    generation: u32,
}

/// A parked connection's keep-alive deadline, in milliseconds since [`Inner::start`]
/// (sixteen bytes an entry, where an `Instant` alone takes as many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline {
    at: u64,
    key: Key,
}

impl Parking {
    /// The parking of a broker, and its parker: a thread that serves the parked
    /// connections on the current runtime until [`Parking::close`]. With a zero `tick`,
    /// connections never park.
    pub(crate) fn start(tick: Duration) -> std::io::Result<Self> {
        let poll = mio::Poll::new()?;
        let inner = Arc::new(Inner {
            registry: poll.registry().try_clone()?,
            waker: mio::Waker::new(poll.registry(), WAKER)?,
            state: Mutex::default(),
            woken: Mutex::default(),
            start: connection::now(),
            ticks: Epochs::default(),
            quick: Epochs::default(),
            tick,
        });
        if tick.is_zero() {
            inner.lock().closed = true;
        } else {
            let runtime = tokio::runtime::Handle::current();
            let parker = inner.clone();
            std::thread::Builder::new()
                .name("midge-parker".into())
                .spawn(move || run(&parker, poll, &runtime))?;
        }
        Ok(Parking { inner })
    }

    /// At shutdown: revives every parked connection (each then closes as any open
    /// connection does), and parks nothing from now on. The parker then ends.
    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        let _ = self.inner.waker.wake();
    }

    /// The epochs a connection counts its idleness in: quick ones while it is `young`.
    pub(crate) fn epochs(&self, young: bool) -> &Epochs {
        match young {
            true => &self.inner.quick,
            false => &self.inner.ticks,
        }
    }

    /// What revives this parking's connections for their sessions (see [`Reviver`]).
    pub(crate) fn reviver(&self) -> Reviver {
        Reviver(Arc::downgrade(&self.inner))
    }

    /// Whether connections park at all.
    pub(crate) fn enabled(&self) -> bool {
        !self.inner.tick.is_zero()
    }

    /// How many connections are parked now.
    pub(crate) fn parked(&self) -> usize {
        self.inner.lock().parked.len()
    }

    /// Parks `conn`, whose task then ends. Gives it back if it has work after all (a
    /// delivery, a kick), if the broker is shutting down, or if its socket could not
    /// move: its task then goes on.
    pub(crate) fn park(&self, mut conn: Box<Conn>) -> Result<(), Box<Conn>> {
        let mut state = self.inner.lock();
        if state.closed {
            return Err(conn);
        }
        // (The last place's token would be the waker's.)
        let Some(index) = u32::try_from(state.parked.vacant_key())
            .ok()
            .filter(|&index| index != u32::MAX)
        else {
            return Err(conn);
        };
        let key = Key {
            index,
            generation: state.next_generation,
        };
        if !conn.quiet_parked(index) {
            return Err(conn);
        }
        let Some(stream) = conn.take_socket() else {
            return Err(conn);
        };
        let std = match stream.into_std() {
            Ok(std) => std,
            Err(e) => {
                // Not expected; the connection then ends as on a read error.
                tracing::warn!(error = %e, "cannot park a connection's socket");
                return Err(conn);
            }
        };
        let mut socket = mio::net::TcpStream::from_std(std);
        if let Err(e) = self.inner.registry.register(
            &mut socket,
            mio::Token(index as usize),
            mio::Interest::READABLE,
        ) {
            tracing::warn!(error = %e, "cannot park a connection's socket");
            if let Ok(stream) = tokio::net::TcpStream::from_std(socket.into()) {
                conn.give_socket(stream);
            }
            return Err(conn);
        }
        let parked = conn.into_parked();
        if let Some(deadline) = parked.deadline() {
            let at = self.inner.millis(deadline);
            let earliest = state
                .deadlines
                .peek()
                .is_none_or(|Reverse(first)| at < first.at);
            state.deadlines.push(Reverse(Deadline { at, key }));
            if earliest {
                let _ = self.inner.waker.wake();
            }
        }
        tracing::trace!(client_id = %parked.client_id(), index, "connection parked");
        state.next_generation = state.next_generation.wrapping_add(1);
        state.parked.insert(Box::new(Spot {
            parked,
            socket,
            generation: key.generation,
        }));
        // Mostly entries of connections revived since: only the parked ones' stay.
        if state.deadlines.len() > 2 * state.parked.len() + 1024 {
            state.drop_stale_deadlines(&self.inner);
        }
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("parking lock poisoned")
    }

    /// `at` in milliseconds since the start, rounded up (a deadline).
    fn millis(&self, at: Instant) -> u64 {
        self.millis_passed(at).saturating_add(1)
    }

    /// `now` in milliseconds since the start, rounded down.
    fn millis_passed(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `millis` after the start.
    fn instant(&self, millis: u64) -> Instant {
        self.start + Duration::from_millis(millis)
    }

    /// Takes the connections that `causes` name and that are still parked out of the
    /// slab (see [`State::take`]), and spawns a task for each on `runtime` (whose context
    /// the caller has entered).
    fn revive(&self, causes: &mut Vec<Cause>, runtime: &tokio::runtime::Handle) {
        if causes.is_empty() {
            return;
        }
        let revived: Vec<_> = {
            let mut state = self.lock();
            causes
                .drain(..)
                .filter_map(|cause| state.take(cause))
                .collect()
        };
        for spot in revived {
            let Spot {
                parked, mut socket, ..
            } = *spot;
            let _ = self.registry.deregister(&mut socket);
            let stream = tokio::net::TcpStream::from_std(socket.into())
                .inspect_err(|e| {
                    // Not expected: the connection then ends as on a read error.
                    tracing::warn!(error = %e, "cannot revive a parked connection's socket");
                })
                .ok();
            tracing::trace!(client_id = %parked.client_id(), "connection revived");
            runtime.spawn(connection::serve(parked.revive(stream)));
        }
    }
}

/// A count of epochs, and the connections to wake when the next one starts (see the
/// module's doc).
#[derive(Debug, Default)]
pub(crate) struct Epochs {
    count: AtomicU32,
    waiting: Mutex<Vec<Waker>>,
}

impl Epochs {
    /// The current epoch.
    pub(crate) fn now(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Has `waker` woken when the next epoch starts.
    pub(crate) fn wake_at_next(&self, waker: &Waker) {
        self.waiting
            .lock()
            .expect("parking lock poisoned")
            .push(waker.clone());
    }

    /// Starts the next epoch and wakes the connections that asked for it.
    fn next(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let waiting = std::mem::take(&mut *self.waiting.lock().expect("parking lock poisoned"));
        for waker in waiting {
            waker.wake();
        }
    }
}

/// Revives parked connections for their sessions: a delivery into the empty mailbox of
/// a parked connection, or its kick (`Mailbox::park`, `SessionEntry::park_kick`). The
/// mailbox keeps the connection's place, not a waker of its own: one allocation less
/// for every parked connection. Weak: the mailboxes that share it do not keep the
/// parking alive; the default one revives nothing (nothing parks).
#[derive(Debug, Clone, Default)]
pub(crate) struct Reviver(Weak<Inner>);

impl Reviver {
    /// Has the parker revive the connection of the session `entry` parked at `place`,
    /// if it is still there.
    pub(crate) fn revive(&self, place: u32, entry: u64) {
        if let Some(inner) = self.0.upgrade() {
            inner
                .woken
                .lock()
                .expect("parking lock poisoned")
                .push((place, entry));
            let _ = inner.waker.wake();
        }
    }
}

/// Drops whatever is still parked when the parker ends, even if it ends by a panic: a
/// parked connection holds the broker's state, which holds the parking.
struct Clear<'a>(&'a Inner);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        let parked = {
            let mut state = self.0.lock();
            state.closed = true;
            std::mem::take(&mut state.parked)
        };
        drop(parked);
    }
}

/// The parker's thread: revives parked connections when their socket is readable,
/// their waker fires or their deadline comes, and ticks the epochs. Once closed, it
/// revives everything and ends.
fn run(inner: &Inner, mut poll: mio::Poll, runtime: &tokio::runtime::Handle) {
    let _clear = Clear(inner);
    // For tokio's sockets and clock.
    let _context = runtime.enter();
    let mut events = mio::Events::with_capacity(EVENTS);
    let mut causes: Vec<Cause> = Vec::new();
    let quick = inner.tick / QUICK;
    let mut next_tick = connection::now() + inner.tick;
    let mut next_quick = connection::now() + quick;
    loop {
        let now = connection::now();
        if now >= next_quick {
            inner.quick.next();
            next_quick = now + quick;
        }
        if now >= next_tick {
            inner.ticks.next();
            next_tick = now + inner.tick;
        }
        let wait = {
            let mut state = inner.lock();
            if state.closed {
                causes.extend(
                    state
                        .parked
                        .iter()
                        .map(|(index, _)| Cause::Place(index as u32)),
                );
                drop(state);
                inner.revive(&mut causes, runtime);
                return;
            }
            let now_millis = inner.millis_passed(now);
            while let Some(Reverse(Deadline { at, key })) = state.deadlines.peek().copied() {
                if at > now_millis {
                    break;
                }
                state.deadlines.pop();
                causes.push(Cause::Deadline(key));
            }
            let next_tick = next_tick.min(next_quick);
            let next = state.deadlines.peek().map_or(next_tick, |Reverse(first)| {
                inner.instant(first.at).min(next_tick)
            });
            next.saturating_duration_since(now)
        };
        inner.revive(&mut causes, runtime);
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!(error = %e, "polling the parked connections failed: reviving them all");
                inner.lock().closed = true;
            }
            continue;
        }
        causes.extend(
            events
                .iter()
                .map(|event| event.token())
                .filter(|token| *token != WAKER)
                .filter_map(|token| Some(Cause::Place(u32::try_from(token.0).ok()?))),
        );
        causes.extend(
            inner
                .woken
                .lock()
                .expect("parking lock poisoned")
                .drain(..)
                .map(|(place, entry)| Cause::Session { place, entry }),
        );
        inner.revive(&mut causes, runtime);
    }
}
