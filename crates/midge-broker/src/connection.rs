//! One client connection: the tokio shell around a [`Session`].
//!
//! read bytes → decode → session → actions → encode → one write per wake-up. The
//! protocol decisions are the session's; this file only moves bytes, owns the socket,
//! the timers and the session's slot, and cleans up when the connection ends (will,
//! session expiry, take-over).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use midge_codec::{
    ConnAck, Connect, DecodeError, Decoder, Disconnect, Packet, ProtocolVersion, PublishProperties,
    ReasonCode, TopicFilter,
};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::Shared;
use crate::auth::Access;
use crate::listener::{Accepted, CertUsername, Peer, Transport};
use crate::mailbox::FLOW_BYTES;
use crate::message::Message;
use crate::registry::{Offline, PendingWill, SessionEntry, SlotHold};
use crate::router::AckGate;
use crate::security::{ClientAuthorizer, Security};
use crate::session::{Action, Change, Session};
use crate::store::{CommitError, Op, Ops, OutgoingState};

/// Deliveries taken from the mailbox per wake-up, so one busy session cannot make its
/// write buffer grow without bound.
const DRAIN_BATCH: usize = 256;

/// Bytes of encoded packets after which a wake-up takes no more deliveries: large
/// messages are written a few at a time rather than `DRAIN_BATCH` of them at once.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Longest wait for the last bytes of a closing connection (a refusing CONNACK, the
/// server's DISCONNECT): a client that does not read cannot hold its task.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The one place the broker reads the clock (STYLE.md rule 2).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Why the connection loop ended.
#[derive(Debug)]
struct Ending {
    /// Reason for the log line.
    why: String,
    /// DISCONNECT reason to send to a 5.0 client, when the server closes.
    send: Option<ReasonCode>,
    /// Whether to publish the will.
    publish_will: bool,
}

/// Reads and checks the CONNECT of an accepted connection (any transport), and opens
/// its session: the open connection, for [`serve`], or `None` if it closed or was
/// refused. Its state lives only until the connection is open: call it boxed, so that
/// an open connection's task does not keep room for it.
pub(crate) async fn start(
    accepted: Accepted,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Box<Conn>> {
    let Accepted {
        mut stream,
        peer,
        security,
        cert_username,
    } = accepted;
    let mut decoder =
        Decoder::server().with_max_packet_size(shared.config.max_packet_size as usize);
    let mut rbuf = BytesMut::new();
    let connect = tokio::select! {
        connect = tokio::time::timeout(
            shared.config.connect_timeout(),
            read_connect(&mut stream, &mut decoder, &mut rbuf),
        ) => connect,
        // A socket that has not sent CONNECT does not hold up a shutdown.
        _ = shutdown.changed() => {
            tracing::debug!(%peer, "closed before CONNECT: shutting down");
            return None;
        }
    };
    let connect = match connect {
        Err(_) => {
            tracing::info!(%peer, "closed: no CONNECT within the connect timeout");
            return None;
        }
        Ok(Err(ReadError::Io(e))) => {
            tracing::debug!(%peer, error = %e, "closed before CONNECT");
            return None;
        }
        Ok(Err(ReadError::Decode(e))) => {
            tracing::info!(%peer, error = %e, "closed: bad CONNECT");
            if let Some(refusal) = unsupported_version_connack(&e) {
                let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, stream.write_all(refusal)).await;
            }
            return None;
        }
        Ok(Ok(connect)) => connect,
    };
    let assigned = connect.client_id.is_empty().then(assign_client_id);
    let client_id = assigned.as_deref().unwrap_or(&connect.client_id);
    let username = match &cert_username {
        CertUsername::NotUsed => connect.username.as_deref(),
        CertUsername::Name(name) => Some(name.as_str()),
        CertUsername::Missing => None,
    };
    let authorizer = security.authorizer(client_id, username, peer.ip());
    let checked = match check_connect(&connect, &shared) {
        Ok(()) => authorize_connect(&connect, &security, &cert_username, &authorizer).await,
        Err(reason) => Err(reason),
    };
    if let Err(reason) = checked {
        tracing::info!(%peer, client_id = %connect.client_id, %reason, "connection refused");
        let ack = ConnAck {
            reason_code: reason,
            ..ConnAck::default()
        };
        let mut wbuf = BytesMut::new();
        if Packet::ConnAck(Box::new(ack))
            .encode(connect.protocol, &mut wbuf)
            .is_ok()
        {
            let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, stream.write_all(&wbuf)).await;
        }
        return None;
    }
    let client = Client {
        assigned,
        authorizer,
    };
    // What was read so far is decoded: an open connection starts with an empty read
    // buffer, not one that shares the CONNECT packet's storage.
    let rbuf = match rbuf.is_empty() {
        true => BytesMut::new(),
        false => rbuf,
    };
    open(
        connect, client, peer, shared, &shutdown, decoder, rbuf, stream,
    )
    .await
}

/// Who the client is, once its CONNECT is accepted.
#[derive(Debug)]
struct Client {
    /// The client id the broker assigned, if the client sent none ([MQTT-3.1.3-6]).
    assigned: Option<String>,
    /// Its access decisions (client id and username against the live ACL).
    authorizer: Arc<ClientAuthorizer>,
}

/// Authentication and the will's authorization; `Err` is the CONNACK reason: 0x86 / 4
/// for bad credentials, 0x87 / 5 for an anonymous client where none is allowed, or for
/// a will the client may not publish (as Mosquitto's `connect__on_authorised` refuses
/// it). It runs before any session is touched; a refusal closes the connection after
/// the CONNACK ([MQTT-3.1.4-2], [MQTT-3.2.2-7] of 5.0).
///
/// On a listener that takes the user name from the client certificate, the verified
/// certificate is the credential: the CONNECT's user name and password are not looked
/// at, and a client without a certificate (or without a Common Name) gets 0x86 / 4, as
/// Mosquitto answers it.
async fn authorize_connect(
    connect: &Connect,
    security: &Security,
    cert_username: &CertUsername,
    authorizer: &ClientAuthorizer,
) -> Result<(), ReasonCode> {
    match cert_username {
        CertUsername::NotUsed => {
            security
                .authenticate(connect.username.as_deref(), connect.password.as_deref())
                .await?;
        }
        CertUsername::Name(_) => {}
        CertUsername::Missing => return Err(ReasonCode::BadUserNameOrPassword),
    }
    match &connect.will {
        Some(will) if !authorizer.check(Access::Write, &will.topic) => {
            Err(ReasonCode::NotAuthorized)
        }
        _ => Ok(()),
    }
}

/// The CONNACK that refuses a CONNECT whose protocol the broker does not speak
/// ([MQTT-3.1.2-2]): return code 1 in the 3.1.1 form for levels below 5 and for an
/// unknown protocol name, reason code 0x84 in the 5.0 form for levels above 5 (a client
/// newer than 5.0 reads the 5.0 form).
fn unsupported_version_connack(error: &DecodeError) -> Option<&'static [u8]> {
    match error {
        DecodeError::UnsupportedProtocolLevel(level) if *level > 5 => {
            Some(&[0x20, 0x03, 0x00, 0x84, 0x00])
        }
        DecodeError::UnsupportedProtocolLevel(_) | DecodeError::InvalidProtocolName(_) => {
            Some(&[0x20, 0x02, 0x00, 0x01])
        }
        _ => None,
    }
}

#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Decode(DecodeError),
}

async fn read_connect(
    rd: &mut Transport,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
) -> Result<Box<Connect>, ReadError> {
    loop {
        match decoder.decode(rbuf).map_err(ReadError::Decode)? {
            Some(Packet::Connect(connect)) => return Ok(connect),
            Some(other) => {
                return Err(ReadError::Decode(DecodeError::ExpectedConnect(
                    other.packet_type(),
                )));
            }
            None => {}
        }
        let n = std::future::poll_fn(|cx| poll_read_input(rd, rbuf, cx))
            .await
            .map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// The checks made before a session is touched; `Err` is the CONNACK reason.
fn check_connect(connect: &Connect, shared: &Shared) -> Result<(), ReasonCode> {
    let config = &shared.config;
    let max_keepalive = shared.session_config.max_keepalive; // 0: no limit
    let v5 = connect.protocol.is_v5();
    if connect.client_id.is_empty()
        && !v5
        && (!connect.clean_start || connect.protocol == ProtocolVersion::V31)
    {
        // [MQTT-3.1.3-8] (3.1.1): an empty client id needs clean session.
        return Err(ReasonCode::ClientIdentifierNotValid);
    }
    if connect.protocol == ProtocolVersion::V31 && connect.client_id.len() > 23 {
        // MQTT 3.1 §3.1: "more than 23 characters: return code 2" (as Mosquitto).
        return Err(ReasonCode::ClientIdentifierNotValid);
    }
    if !v5 && max_keepalive > 0 && (connect.keep_alive == 0 || connect.keep_alive > max_keepalive) {
        // 3.1.1 cannot be told another keep alive: refused, as Mosquitto does.
        return Err(ReasonCode::ClientIdentifierNotValid);
    }
    if connect.properties.authentication_method.is_some() {
        // No extended authenticator exists yet.
        return Err(ReasonCode::BadAuthenticationMethod);
    }
    if let Some(will) = &connect.will {
        if will.retain && !config.retain_available {
            return Err(ReasonCode::RetainNotSupported); // [MQTT-3.2.2-13]
        }
    }
    Ok(())
}

/// The will of `connect` and its delay. Its expiry is not set yet: the Message Expiry
/// Interval of a will counts from its publication (§3.1.3.2.4), see [`publish_will`].
fn will_message(connect: &Connect, client_id: &Arc<str>) -> Option<(Arc<Message>, u32)> {
    let will = connect.will.as_ref()?;
    let p = &will.properties;
    let properties = PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        content_type: p.content_type.clone(),
        ..PublishProperties::default()
    };
    let message = Message {
        encoded: Default::default(),
        store_id: Default::default(),
        topic: will.topic.clone(),
        payload: will.payload.clone(),
        qos: will.qos,
        retain: will.retain,
        expires_at: None,
        properties: properties.into(),
        origin: Some(client_id.clone()),
    };
    Some((Arc::new(message), p.will_delay_interval.unwrap_or(0)))
}

/// Publishes a will now: its Message Expiry Interval starts counting here.
pub(crate) fn publish_will(shared: &Shared, will: Arc<Message>, now: Instant) {
    let mut message = Arc::unwrap_or_clone(will);
    message.expires_at = message
        .properties
        .message_expiry_interval
        .map(|secs| now + Duration::from_secs(u64::from(secs)));
    shared.router.publish(Arc::new(message));
}

/// A fresh client id for a client that sent an empty one ([MQTT-3.1.3-6]): a counter
/// mixed with a per-process random key, so ids differ across restarts.
fn assign_client_id() -> String {
    use std::hash::BuildHasher;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let key = KEY.get_or_init(Default::default).hash_one(0u8);
    format!("midge-{:08x}-{n}", key as u32)
}

/// Takes the session's slot (from a live connection if need be) and sets the session
/// up for the accepted CONNECT: the open connection, its CONNACK encoded.
#[allow(clippy::too_many_arguments)]
async fn open(
    connect: Box<Connect>,
    client: Client,
    peer: Peer,
    shared: Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    mut decoder: Decoder,
    rbuf: BytesMut,
    stream: Transport,
) -> Option<Box<Conn>> {
    let assigned = client.assigned;
    let client_id: &str = assigned.as_deref().unwrap_or(&connect.client_id);
    let (entry, generation) = shared.registry.connect(client_id);
    entry.cancel_timers();
    // [MQTT-3.1.4-3]: take the session over from a live connection.
    entry.kick(ReasonCode::SessionTakenOver);
    let slot = entry.hold_slot().await;
    if entry.generation.load(Ordering::SeqCst) != generation {
        // A newer connection with this client id came while this one waited for the
        // slot: that one gets the session; this one closes without CONNACK.
        tracing::info!(%peer, client_id = %entry.client_id, "superseded before CONNACK");
        return None;
    }
    entry.own_kick(generation);
    // A shutdown kicks every connection that has its kick in place (see
    // `Registry::kick_all`); this one may have put it in place after.
    let shutting_down = *shutdown.borrow();

    let t0 = now();
    // A will still waiting from the last connection: a clean start ends the old session,
    // which publishes it ([MQTT-3.1.2-8]); resuming the session cancels it
    // ([MQTT-3.1.3-9]).
    let offline = slot.get().take().map(|offline| *offline);
    let (will, session) = match offline {
        Some(Offline { session, will, .. }) => (will, Some(session)),
        None => (None, None),
    };
    if let Some(will) = will {
        if connect.clean_start {
            publish_will(&shared, will.message, t0);
        }
    }
    let resumed = match session {
        Some(old) if !connect.clean_start => Some(old),
        Some(mut old) => {
            end_session(&shared, &entry, &mut old, t0);
            None
        }
        None => None,
    };
    let session_present = resumed.is_some();
    let mut session = resumed.unwrap_or_else(|| {
        Session::new(entry.client_id.clone(), shared.session_config.clone(), t0)
    });
    session.set_authorizer(Some(client.authorizer));
    let mut out = Vec::new();
    session.connect(&connect, session_present, assigned.as_deref(), t0, &mut out);
    if connect.protocol != ProtocolVersion::V5 {
        if let Some(expiry) = shared.config.persistent_client_expiration {
            if session.session_expiry() == u32::MAX {
                session.set_session_expiry(expiry);
            }
        }
    }
    // The CONNACK and what the session resends; written first by the connection loop.
    let mut outbox = Outbox::default();
    if let Some(durable) = shared.durable.as_deref() {
        // With persistence on, the session's record is durable before the CONNACK
        // says it is present: Session Present stays true after a crash.
        let persistent = session.session_expiry() > 0;
        session.set_durable(persistent);
        if persistent {
            entry.set_persistent(Some(1));
            let record = durable.session_record(&session, None, None);
            outbox.hold(AckGate::commit(
                durable.commit(Ops::One(Op::PutSession(Box::new(record)))),
            ));
        } else if entry.is_persistent() {
            entry.set_persistent(None);
            let gone = Op::DeleteSession(entry.client_id.clone());
            outbox.hold(AckGate::commit(durable.commit(Ops::One(gone))));
        }
    }
    let mut ending = None;
    let _ = apply(
        &shared,
        &entry,
        &mut session,
        &mut out,
        t0,
        &mut outbox,
        &mut ending,
        None,
    );
    // What queued while the session was offline is drained on the connection's first
    // poll.
    entry.set_online(true);
    decoder.set_version(connect.protocol);
    let will = will_message(&connect, &entry.client_id);
    tracing::info!(
        %peer, client_id = %entry.client_id, version = %connect.protocol,
        clean_start = connect.clean_start, keep_alive = connect.keep_alive,
        session_present, "client connected"
    );
    // Nothing of the CONNECT packet, nor the actions' buffer, is needed from here on:
    // an idle connection keeps as little as it can.
    drop(connect);
    drop(out);
    if shutting_down {
        ending.get_or_insert_with(|| Ending::kicked(ReasonCode::ServerShuttingDown, ""));
    }
    let born = shared.parking.epochs(true).now();
    let core = Core {
        shared,
        entry,
        slot,
        generation,
        born,
        session,
        peer,
        will,
        lease: None,
    };
    Some(Parked { core, decoder }.open(stream, rbuf, outbox, ending))
}

/// Serves an open connection until it ends, then closes it; or until it parks (see
/// `crate::parking`), after which the parker serves it again in a new task.
pub(crate) async fn serve(conn: Box<Conn>) {
    if let Some((conn, ending)) = Running(Some(conn)).await {
        // Boxed: an open connection's task keeps no room for its closing.
        Box::pin(close(conn, ending)).await;
    }
}

/// Says goodbye: the server's DISCONNECT if it closes the connection (5.0), then the
/// will and the session's fate.
async fn close(mut conn: Box<Conn>, ending: Ending) {
    let c = &mut *conn;
    c.io.out
        .send_unsent(c.core.shared.durable.as_deref(), &c.core.entry);
    if let (Some(reason), true) = (ending.send, c.core.session.version().is_v5()) {
        let mut wbuf = BytesMut::new();
        let _ = Packet::Disconnect(Disconnect::new(reason)).encode(ProtocolVersion::V5, &mut wbuf);
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, c.io.stream.write_all(&wbuf)).await;
    }
    let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, c.io.stream.shutdown()).await;
    tracing::info!(peer = %c.core.peer, client_id = %c.core.entry.client_id, reason = %ending.why, "client disconnected");
    let Core {
        shared,
        entry,
        slot,
        generation,
        session,
        will,
        lease,
        ..
    } = conn.core;
    let will = will.filter(|_| ending.publish_will);
    finish(&shared, &entry, slot, session, generation, will);
    // Only now: a shutdown waits for every lease, and then for nothing else.
    drop(lease);
}

/// An open connection: everything it keeps, in one allocation, and the hand-written
/// future that serves it ([`Running`]). An idle connection is this, its session, and
/// its socket: no future of its own waits on anything, so nothing else is kept.
pub(crate) struct Conn {
    core: Core,
    io: Io,
    /// Set once another connection has taken the session over, or the server is shutting
    /// down: the reason (see [`Conn::poll_kick`]).
    kicked: Option<ReasonCode>,
    /// The keep-alive deadline, or while a write is blocked, the stall deadline (see
    /// [`Conn::poll_flush`]); none without a keep alive.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether `timer` holds the stall deadline.
    stalled: bool,
    /// Whether the read buffer holds packets left undecoded because a round's budget
    /// ran out (see [`DELIVERY_BUDGET`]): they are handled after a yield, before more is
    /// read.
    more_input: bool,
    /// Set while this publisher waits for congested mailboxes (see `crate::mailbox`):
    /// no input is read or decoded meanwhile; everything else goes on.
    paused: Option<Waiting<(Pause, bool)>>,
    /// Set while the store's writer is far behind (see [`store_drained`]).
    drained: Option<Waiting<()>>,
    /// Set once the connection is to close.
    ending: Option<Ending>,
    /// The parking epoch of the connection's last work (see `crate::parking`).
    active: u32,
    /// The epoch at whose end the connection last asked to be woken.
    ticked: u32,
    /// Whether the connection is young (see [`Core::born`]): `active` and `ticked` then
    /// count quick epochs (see `crate::parking`).
    young: bool,
    /// Set when a poll ends because the connection is to park.
    park: bool,
}

/// What a connection keeps whether it runs or is parked (see `crate::parking`): its
/// session and what it needs to take up its task again.
#[derive(Debug)]
struct Core {
    shared: Arc<Shared>,
    entry: Arc<SessionEntry>,
    /// The session's slot, held while the connection lives: a taking-over connection
    /// waits for it ([MQTT-3.1.4-3]).
    slot: SlotHold,
    /// This connection's generation of the entry (see `SessionEntry::generation`).
    generation: u32,
    /// The quick epoch the connection opened in: it is young for [`YOUTH`] quick epochs
    /// from then, parked and revived or not (see `crate::parking`).
    born: u32,
    session: Session,
    peer: Peer,
    /// The will, and its delay.
    will: Option<(Arc<Message>, u32)>,
    /// What the listener keeps for as long as the connection lives (see
    /// [`Conn::set_lease`]).
    lease: Option<Lease>,
}

/// What a parked connection keeps of its `Conn`: its `Core` and its decoder's state,
/// without the socket (kept beside it), the buffers, the timer and the state of work
/// under way, which it has none of.
#[derive(Debug)]
pub(crate) struct Parked {
    core: Core,
    decoder: Decoder,
}

impl Parked {
    /// The open connection again, on `stream`. Its timer is made anew; the epochs count
    /// its idleness from now (see `crate::parking`).
    fn open(
        self,
        stream: Transport,
        rbuf: BytesMut,
        out: Outbox,
        ending: Option<Ending>,
    ) -> Box<Conn> {
        let Parked { core, decoder } = self;
        let timer = core
            .session
            .poll_deadline()
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline_or(Some(deadline)))));
        let parking = &core.shared.parking;
        let young = parking.enabled() && parking.epochs(true).now().wrapping_sub(core.born) < YOUTH;
        let active = parking.epochs(young).now();
        // With parking off the epoch never moves: `ticked` equal to it asks for no tick.
        let ticked = match parking.enabled() {
            true => active.wrapping_sub(1),
            false => active,
        };
        Box::new(Conn {
            core,
            io: Io {
                stream,
                decoder,
                rbuf,
                out,
            },
            kicked: None,
            timer,
            stalled: false,
            paused: None,
            more_input: false,
            drained: None,
            ending,
            active,
            ticked,
            young,
            park: false,
        })
    }

    /// A revived connection, on its socket (`None`: the socket could not be given back
    /// to tokio; the connection then ends as on a read error).
    pub(crate) fn revive(self, stream: Option<tokio::net::TcpStream>) -> Box<Conn> {
        let stream = stream.map_or(Transport::Parked(Default::default()), Transport::Tcp);
        self.open(stream, BytesMut::new(), Outbox::default(), None)
    }

    /// The id of the connection's session entry.
    pub(crate) fn entry_id(&self) -> u64 {
        self.core.entry.id
    }

    /// The client id, for log lines.
    pub(crate) fn client_id(&self) -> &str {
        &self.core.entry.client_id
    }

    /// When the parked connection must be revived whatever happens (keep alive).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.core.session.poll_deadline()
    }
}

/// Held by a connection until it has closed, parked or not: its part of its listener's
/// [`Leases`](crate::listener::Leases) (the accept loop waits for every lease at
/// shutdown), and its connection permit (`max_connections`), given back when the lease
/// drops. One word: every parked connection keeps one.
#[derive(Debug)]
pub(crate) struct Lease(Arc<crate::listener::Leases>);

impl Lease {
    /// A lease of `leases`, for a connection that holds one of their permits, if they
    /// have any (the permit is forgotten: the lease gives it back).
    pub(crate) fn new(leases: Arc<crate::listener::Leases>) -> Lease {
        Lease(leases)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(permits) = &self.0.permits {
            permits.add_permits(1);
        }
    }
}

/// A wait that only some connections have, now and then: boxed, made when it begins.
type Waiting<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("client_id", &self.core.entry.client_id)
            .field("peer", &self.core.peer)
            .finish_non_exhaustive()
    }
}

/// The connection's I/O state.
#[derive(Debug)]
struct Io {
    /// The socket, or the transport's stack of layers over it.
    stream: Transport,
    decoder: Decoder,
    /// Bytes read and not yet decoded.
    rbuf: BytesMut,
    /// Packets encoded and not yet written: one write per wake-up.
    out: Outbox,
}

impl Ending {
    /// The client went away, or the connection broke: no DISCONNECT, the will goes out.
    fn lost(why: String) -> Ending {
        Ending {
            why,
            send: None,
            publish_will: true,
        }
    }

    /// The connection was asked to close: a take-over or a shutdown. `when` says what
    /// it was doing.
    fn kicked(reason: ReasonCode, when: &str) -> Ending {
        let why = match reason {
            ReasonCode::ServerShuttingDown => "server shutting down",
            _ => "session taken over",
        };
        Ending {
            why: format!("{why}{when}"),
            // A packet may have been cut in the middle by a blocked write.
            send: when.is_empty().then_some(reason),
            publish_will: true,
        }
    }
}

/// The future of an open connection: polls its socket, its mailbox, its timer and its
/// commits by hand, so that waiting costs no memory and no setting up per wake-up. Ends
/// with the connection and the reason it ends, or with `None` once the connection has
/// parked (its task then ends, and the parker serves it in a new one).
struct Running(Option<Box<Conn>>);

impl Future for Running {
    type Output = Option<(Box<Conn>, Ending)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let conn = self.0.as_mut().expect("polled after it ended");
        match conn.poll_run(cx) {
            Poll::Ready(ending) => Poll::Ready(Some((self.0.take().expect("still there"), ending))),
            Poll::Pending if conn.park => {
                conn.park = false;
                let conn = self.0.take().expect("still there");
                let shared = conn.core.shared.clone();
                match shared.parking.park(conn) {
                    Ok(()) => Poll::Ready(None),
                    Err(mut conn) => {
                        // It has work after all, or cannot park now: another round, and
                        // no new try before two more ticks.
                        conn.active = conn.core.shared.parking.epochs(conn.young).now();
                        self.0 = Some(conn);
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A deadline so far away that it never comes.
const FAR: Duration = Duration::from_secs(86_400 * 365);

impl Conn {
    /// Keeps `lease` until the connection has closed, parked or not.
    pub(crate) fn set_lease(&mut self, lease: Lease) {
        self.core.lease = Some(lease);
    }

    /// Whether nothing is under way but waiting for input, a delivery, a kick or the
    /// timer: the connection may park, as far as it is concerned.
    fn may_park(&self) -> bool {
        matches!(self.io.stream, Transport::Tcp(_))
            && self.io.rbuf.is_empty()
            && self.io.out.wbuf.is_empty()
            && self.io.out.held.is_none()
            && self.io.out.unsent.is_empty()
            && self.paused.is_none()
            && self.drained.is_none()
            && !self.more_input
            && !self.stalled
            && self.kicked.is_none()
            && self.ending.is_none()
    }

    /// For parking at `place` in the parker's slab: has the next delivery and the kick
    /// revive the connection through the parker, unless either has come already (then
    /// false: the connection has work). The mailbox first: a kick that comes between the
    /// two wakes the task's waker, which is gone, but is seen by
    /// [`SessionEntry::park_kick`]; one after finds the mailbox's place.
    pub(crate) fn quiet_parked(&mut self, place: u32) -> bool {
        if self.kicked.is_some() {
            return false;
        }
        {
            let mut mailbox = self
                .core
                .entry
                .mailbox
                .lock()
                .expect("mailbox lock poisoned");
            if !mailbox.is_empty() {
                return false;
            }
            mailbox.park(place);
            // Parking: the room kept for deliveries goes back until they come again.
            mailbox.shrink();
        }
        // (Should it not park after all, its next poll waits on the mailbox again.)
        self.kicked = self.core.entry.park_kick(self.core.generation);
        self.kicked.is_none()
    }

    /// For parking: the plain TCP socket, taken out (`None`: another transport).
    pub(crate) fn take_socket(&mut self) -> Option<tokio::net::TcpStream> {
        match std::mem::replace(&mut self.io.stream, Transport::Parked(Default::default())) {
            Transport::Tcp(stream) => Some(stream),
            other => {
                self.io.stream = other;
                None
            }
        }
    }

    /// The socket back, when parking fails after [`Conn::take_socket`].
    pub(crate) fn give_socket(&mut self, stream: tokio::net::TcpStream) {
        self.io.stream = Transport::Tcp(stream);
    }

    /// For parking, once the socket is away: what the connection keeps. Its buffers
    /// (empty: see [`Conn::may_park`]), timer and task go.
    pub(crate) fn into_parked(self: Box<Self>) -> Parked {
        let Conn { mut core, io, .. } = *self;
        core.session.shrink();
        Parked {
            core,
            decoder: io.decoder,
        }
    }

    /// At the end of a poll that found nothing to do: whether the connection is to park
    /// (see `crate::parking`); otherwise it may ask to be woken at the next tick. Cheap
    /// when the connection worked, as it does on every poll when busy. (With parking
    /// off, the epoch never moves and `ticked` starts equal to it: nothing happens.)
    fn idle(&mut self, worked: bool, cx: &Context<'_>) -> bool {
        let parking = &self.core.shared.parking;
        if self.young && parking.epochs(true).now().wrapping_sub(self.core.born) >= YOUTH {
            // Grown up: whole ticks from now on.
            self.young = false;
            let epoch = parking.epochs(false).now();
            (self.active, self.ticked) = (epoch, epoch.wrapping_sub(1));
        }
        let epochs = parking.epochs(self.young);
        let epoch = epochs.now();
        // Idle since the epoch before last (at least one whole epoch); young: since the
        // last one (its quick epochs are short enough as they are).
        let idle_for = if self.young { 1 } else { 2 };
        if worked {
            self.active = epoch;
        } else if epoch.wrapping_sub(self.active) >= idle_for && self.may_park() {
            return true;
        }
        if self.ticked != epoch && self.may_park() {
            self.ticked = epoch;
            epochs.wake_at_next(cx.waker());
        }
        false
    }

    /// The reason of a take-over or a shutdown, once it has come; until then the kick
    /// wakes `cx`'s task (`SessionEntry::kick`).
    fn poll_kick(&mut self, cx: &mut Context<'_>) -> Option<ReasonCode> {
        if self.kicked.is_none() {
            self.kicked = self.core.entry.poll_kick(self.core.generation, cx.waker());
        }
        self.kicked
    }

    /// Writes what is encoded. Gives up when the server shuts down or the session is
    /// taken over meanwhile: a client that never reads must not keep its session from
    /// being taken over, nor the server from stopping. The ending then sends no
    /// DISCONNECT, since a packet may have been cut in the middle.
    ///
    /// While blocked, the client's packets cannot be read, so its keep alive is judged
    /// by the writes instead: if no byte can be written for one and a half keep-alive
    /// periods, the client has stopped reading and the connection is closed as on a
    /// keep-alive timeout ([MQTT-3.1.2-22]). Partial writes keep that clock honest for a
    /// client that reads slowly.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Ending>> {
        let wbuf = &mut self.io.out.wbuf;
        while !wbuf.is_empty() {
            match Pin::new(&mut self.io.stream).poll_write(cx, wbuf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(Ending::lost("write error: connection closed".into())));
                }
                Poll::Ready(Ok(n)) => {
                    wbuf.advance(n);
                    // Progress: the stall clock starts again if the write blocks again.
                    self.stalled = false;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(Ending::lost(format!("write error: {e}"))));
                }
                Poll::Pending if !tokio::task::coop::has_budget_remaining() => {
                    // Not blocked: the task has used its turn (tokio's cooperative
                    // budget), and runs again soon. The stall clock does not start.
                    return Poll::Pending;
                }
                Poll::Pending => {
                    if let Some(reason) = self.poll_kick(cx) {
                        return Poll::Ready(Err(Ending::kicked(
                            reason,
                            " (while blocked writing)",
                        )));
                    }
                    if let Some(timer) = &mut self.timer {
                        if !self.stalled {
                            self.stalled = true;
                            let limit = self.core.session.keep_alive() * 3 / 2;
                            timer
                                .as_mut()
                                .reset(tokio::time::Instant::from_std(now() + limit));
                        }
                        if timer.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Err(Ending::lost(
                                "keep alive timeout: the client stopped reading".into(),
                            )));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
        wbuf.clear();
        // A buffer grown by a burst of messages is given back; an idle connection keeps
        // only a small one.
        if wbuf.capacity() > 4096 {
            *wbuf = BytesMut::new();
        }
        if self.stalled {
            // The timer goes back to the keep-alive deadline.
            self.stalled = false;
            if let Some(timer) = &mut self.timer {
                timer
                    .as_mut()
                    .reset(deadline_or(self.core.session.poll_deadline()));
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Serves the connection: each round writes what is encoded, then looks at every
    /// source of work (take-over, commits, the store's backlog, input, a pause's end,
    /// the timer), handles what is ready, and drains the mailbox. Waits when a round
    /// finds nothing to do; every source it looked at then wakes it.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Ending> {
        // A take-over or a shutdown is looked at once per poll, not once per round: its
        // sender wakes this task, and the rounds of one poll are bounded by tokio's
        // cooperative budget. What is encoded is written before the connection closes.
        if self.ending.is_none() {
            if let Some(reason) = self.poll_kick(cx) {
                self.ending = Some(Ending::kicked(reason, ""));
            }
        }
        let mut worked = false;
        loop {
            if let Err(ending) = std::task::ready!(self.poll_flush(cx)) {
                return Poll::Ready(ending);
            }
            if let Some(ending) = self.ending.take() {
                return Poll::Ready(ending);
            }
            let mut progress = false;
            let mut input = false;
            let mut timed_out = false;
            let mut yield_now = false;
            if self.io.out.held.is_some() {
                match self.io.out.poll_released(cx) {
                    Poll::Ready(Err(e)) => {
                        tracing::error!(client_id = %self.core.entry.client_id, error = %e, "persistence failed: closing the connection without acknowledging");
                        return Poll::Ready(Ending {
                            why: format!("persistence failed: {e}"),
                            send: Some(ReasonCode::UnspecifiedError),
                            publish_will: true,
                        });
                    }
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Pending => {}
                }
            }
            // A store writer far behind the publishers makes every connection stop
            // reading until it has caught up: its queue, and the broker's memory, stay
            // bounded.
            let backlogged = self
                .core
                .shared
                .durable
                .as_ref()
                .is_some_and(|d| d.is_backlogged());
            if backlogged {
                let shared = &self.core.shared;
                let drained = self.drained.get_or_insert_with(|| {
                    let shared = shared.clone();
                    Box::pin(async move { store_drained(&shared).await })
                });
                if drained.as_mut().poll(cx).is_ready() {
                    self.drained = None;
                    progress = true;
                }
            } else {
                self.drained = None;
            }
            if self.paused.is_none() && self.io.out.held_commits() < MAX_HELD && !backlogged {
                if self.more_input {
                    // Packets left by the last round's budget, before more is read.
                    self.more_input = false;
                    input = true;
                } else {
                    match poll_read_input(&mut self.io.stream, &mut self.io.rbuf, cx) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Ending::lost("connection closed by client".into()));
                        }
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Ending::lost(format!("read error: {e}")));
                        }
                        Poll::Ready(Ok(_)) => input = true,
                        Poll::Pending => {}
                    }
                }
            }
            if let Some(waiting) = &mut self.paused {
                if let Poll::Ready((pause, relieved)) = waiting.as_mut().poll(cx) {
                    if !relieved {
                        shed(&self.core.entry, &pause);
                    }
                    self.paused = None;
                    // What was read before the pause is decoded now.
                    input = true;
                }
            }
            if let Some(timer) = &mut self.timer {
                if timer.as_mut().poll(cx).is_ready() {
                    timer
                        .as_mut()
                        .reset(deadline_or(self.core.session.poll_deadline()));
                    timed_out = true;
                    progress = true;
                }
            }
            let t = now();
            let (shared, entry, session, io) = (
                &*self.core.shared,
                &self.core.entry,
                &mut self.core.session,
                &mut self.io,
            );
            if timed_out {
                let mut out = Vec::new();
                session.handle_timeout(t, &mut out);
                let _ = apply(
                    shared,
                    entry,
                    session,
                    &mut out,
                    t,
                    &mut io.out,
                    &mut self.ending,
                    None,
                );
            }
            if input {
                progress = true;
                let (pause, more) = handle_input(shared, entry, session, io, t, &mut self.ending);
                self.paused = pause.map(|pause| Box::pin(relieve(pause)) as Waiting<_>);
                self.more_input = more;
                yield_now = more;
                if io.rbuf.is_empty() && io.rbuf.capacity() > 4096 {
                    // Everything read was decoded, after a large read: give the room back.
                    // (Reads copy what came in, so the buffer of a connection that gets
                    // small packets stays small; releasing it after every read would cost
                    // an allocation per read.)
                    io.rbuf = BytesMut::new();
                }
            }
            // Nothing more is sent once the connection is closing ([MQTT-3.14.4-1]).
            if self.ending.is_none()
                && drain_mailbox(
                    entry,
                    session,
                    t,
                    shared,
                    &mut io.out,
                    &mut self.ending,
                    cx.waker(),
                )
            {
                progress = true;
            }
            io.out.send_unsent(shared.durable.as_deref(), entry);
            if yield_now && self.ending.is_none() {
                // The budget ran out: what is encoded is written, then the other
                // connections on this thread get their turn (those this input was
                // routed to drain their mailboxes while they are still in cache).
                if let Err(ending) = std::task::ready!(self.poll_flush(cx)) {
                    return Poll::Ready(ending);
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progress && io.out.wbuf.is_empty() && self.ending.is_none() {
                self.park = self.idle(worked, cx);
                return Poll::Pending;
            }
            worked = true;
        }
    }
}

/// How long a connection is young, in quick epochs: two ticks (see `crate::parking`).
const YOUTH: u32 = 2 * crate::parking::QUICK;

/// Most groups of packets waiting for commits before the connection stops reading
/// (a client that publishes faster than the store writes).
const MAX_HELD: usize = 1024;

/// Encoded packets: those ready to write, and those that wait for persistence commits
/// (with persistence on, a PUBACK waits until its message is durable). A commit holds
/// back every packet encoded after it, so that acknowledgements keep their order
/// ([MQTT-4.6.0-2] to [MQTT-4.6.0-4]); commits complete in the order they were made.
#[derive(Debug, Default)]
struct Outbox {
    /// Ready: one write per wake-up.
    wbuf: BytesMut,
    /// The packets that wait for commits, while there are any (persistence on): boxed,
    /// and dropped once every commit is durable, so that a connection keeps no room for
    /// them in between.
    held: Option<Box<Held>>,
    /// Store changes that no packet waits for (finished flows), sent together at the
    /// end of the wake-up or before the next commit.
    unsent: Vec<Op>,
}

/// Packets held behind commits.
#[derive(Debug, Default)]
struct Held {
    /// The packets encoded after the oldest commit still held, in order: one buffer for
    /// all of them (no allocation per commit).
    buf: BytesMut,
    /// Each commit, with where its packets start: a position counted from the first
    /// byte ever held, of which `buf[0]` is `from`. Never empty.
    commits: VecDeque<(AckGate, usize)>,
    from: usize,
}

impl Outbox {
    /// Where the next packet goes.
    fn buf(&mut self) -> &mut BytesMut {
        match &mut self.held {
            None => &mut self.wbuf,
            Some(held) => &mut held.buf,
        }
    }

    /// How many commits hold packets back.
    fn held_commits(&self) -> usize {
        self.held.as_ref().map_or(0, |held| held.commits.len())
    }

    /// Sends the changes nobody waits for. A removal whose entry `entry`'s mailbox
    /// still holds back is not sent: the entry is dropped, and the writer never sees
    /// either (see `crate::durable::Deferrals`).
    fn send_unsent(&mut self, durable: Option<&crate::durable::Durable>, entry: &SessionEntry) {
        let Some(durable) = durable.filter(|_| !self.unsent.is_empty()) else {
            return;
        };
        let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
        if mailbox.holds_entries() {
            self.unsent.retain(|op| match op {
                Op::RemoveOutgoing { seq, .. } => !mailbox.release_held(*seq),
                _ => true,
            });
        }
        drop(mailbox);
        let ops = match self.unsent.len() {
            0 => return,
            1 => Ops::One(self.unsent.pop().expect("one op")),
            _ => Ops::List(std::mem::take(&mut self.unsent)),
        };
        durable.send(ops);
    }

    /// The packets encoded from now on wait for `gate`.
    fn hold(&mut self, gate: AckGate) {
        let held = self.held.get_or_insert_with(Box::default);
        held.commits.push_back((gate, held.from + held.buf.len()));
    }

    /// Waits for the oldest commit, then moves the packets it held, and those of the
    /// next commits already durable, to the ready buffer. Never completes with nothing
    /// held: the commits stay held until they complete.
    fn poll_released(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CommitError>> {
        let Some(held) = self.held.as_deref_mut() else {
            return Poll::Pending;
        };
        let (commit, _) = held.commits.front_mut().expect("held only with commits");
        let mut result = std::task::ready!(Pin::new(commit).poll(cx));
        loop {
            if let Err(e) = result {
                return Poll::Ready(Err(e));
            }
            held.commits.pop_front().expect("the front was there");
            let end = match held.commits.front() {
                Some((_, start)) => start - held.from,
                None => held.buf.len(),
            };
            self.wbuf.extend_from_slice(&held.buf[..end]);
            held.buf.advance(end);
            held.from += end;
            match held
                .commits
                .front_mut()
                .map(|(commit, _)| commit.try_result())
            {
                Some(Some(next)) => result = next,
                Some(None) => return Poll::Ready(Ok(())),
                None => {
                    self.held = None;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// Completes once the store's writer has caught up; never without persistence.
async fn store_drained(shared: &Shared) {
    match shared.durable.as_deref() {
        Some(durable) => durable.drained().await,
        None => std::future::pending().await,
    }
}

/// Size of the per-thread buffer that connections read into (`read_input`).
const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// The buffer every connection on this thread reads into, before the bytes read are
    /// copied into the connection's own read buffer.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Reads what the client sent and appends it to `rbuf`; ready with how many bytes (0:
/// the client closed). The read goes through a per-thread scratch buffer and only the
/// bytes read are copied into `rbuf`, so that a connection waiting for input holds no
/// read buffer of its own: that is most of an idle connection's memory.
fn poll_read_input(
    rd: &mut Transport,
    rbuf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    let mut read_into = |scratch: &mut [u8]| {
        let mut buf = tokio::io::ReadBuf::new(scratch);
        match Pin::new(&mut *rd).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                rbuf.extend_from_slice(buf.filled());
                Poll::Ready(Ok(buf.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => read_into(&mut scratch[..]),
        // Not reachable (nothing reads on this thread while a read is polled), but
        // harmless: a small buffer of its own.
        Err(_) => read_into(&mut [0; 4096]),
    })
}

/// Longest wait of a publisher for a congested mailbox; after it, the mailbox sheds
/// instead (see `crate::mailbox`).
const CONGESTION_WAIT: Duration = Duration::from_millis(100);

/// A publisher waiting for congested mailboxes to drain.
#[derive(Debug)]
struct Pause {
    congested: Vec<Arc<SessionEntry>>,
    until: tokio::time::Instant,
    /// The registry's rooms (see `registry::room`).
    rooms: Arc<[tokio::sync::Notify]>,
}

/// Most deliveries that the packets handled in one round may queue; what is left waits
/// for the connection's next turn (see [`handle_input`]). A publisher with many
/// subscribers would otherwise queue a whole read's worth of messages (hundreds) to each
/// of them before any drains its mailbox: megabytes of deliveries, written and read back
/// from beyond the core's cache. With the budget, the subscribers drain while what they
/// read is still cached: a 1→64 fan-out went from 5.3–6.2M to 6.5–7.5M deliveries per
/// second. A publisher with one subscriber never reaches it (a read holds ~800 small
/// messages).
const DELIVERY_BUDGET: usize = 8192;

/// Decodes and handles the packets read, one at a time, until the input runs out, the
/// connection is closing, or a PUBLISH finds a congested mailbox: then the rest stays
/// in the read buffer and the returned pause begins. Stops once the messages published
/// have queued [`DELIVERY_BUDGET`] deliveries: true when packets are left for the next
/// turn.
fn handle_input(
    shared: &Shared,
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    io: &mut Io,
    t: Instant,
    ending: &mut Option<Ending>,
) -> (Option<Pause>, bool) {
    let mut out = Vec::new();
    let mut run = Run::new(shared);
    let mut delivered = 0;
    let mut congested = Vec::new();
    let mut more = false;
    while ending.is_none() && congested.is_empty() {
        if delivered >= DELIVERY_BUDGET {
            more = !io.rbuf.is_empty();
            break;
        }
        match io.decoder.decode(&mut io.rbuf) {
            Ok(Some(packet)) => {
                session.handle_packet(packet, t, &mut out);
                let applied = apply(
                    shared,
                    entry,
                    session,
                    &mut out,
                    t,
                    &mut io.out,
                    ending,
                    Some(&mut run),
                );
                delivered += applied.queued;
                congested = applied.congested;
                // A session publishing to itself drains its own mailbox.
                congested.retain(|e| !Arc::ptr_eq(e, entry));
            }
            Ok(None) => break,
            Err(e) => {
                // What came before the bad packet was carried out; now the connection
                // closes ([MQTT-4.13.1-1]).
                *ending = Some(Ending {
                    why: format!("protocol violation: {e}"),
                    send: Some(e.reason_code()),
                    publish_will: true,
                });
            }
        }
    }
    // What is still in the run is routed before anything is written.
    run.route(shared, &mut congested);
    congested.retain(|e| !Arc::ptr_eq(e, entry));
    if congested.is_empty() {
        return (None, more);
    }
    let pause = Pause {
        congested,
        until: tokio::time::Instant::from_std(t) + CONGESTION_WAIT,
        rooms: shared.registry.rooms().clone(),
    };
    (Some(pause), false)
}

/// Most messages in a [`Run`].
const RUN_MAX: usize = 16;

/// Messages a publisher published one after another to the same topic, not yet routed:
/// routed together ([`Router::publish_run`](crate::router::Router::publish_run)), with
/// the topic matched once and each subscriber's mailbox locked once for all of them.
/// With persistence off only, and never for a retained message.
///
/// A run is routed before anything else the publisher asked is carried out, and before
/// the round's packets are written: the PUBACK of a message still goes out after it was
/// routed. A run is short, so that a publisher goes past a congested mailbox's limits by
/// little before it waits (a congested mailbox takes up to twice its limits; see
/// `crate::mailbox`): at most [`RUN_MAX`] messages, and at most a sixteenth of the
/// mailboxes' limits in messages and in bytes.
struct Run {
    messages: SmallVec<[Arc<Message>; RUN_MAX]>,
    /// Payload bytes in the run.
    bytes: usize,
    /// Most messages, and most payload bytes.
    max: usize,
    max_bytes: usize,
}

impl Run {
    fn new(shared: &Shared) -> Run {
        let limits = shared.config.mailbox_limits();
        let max = match limits.max_messages {
            0 => RUN_MAX,
            n => (n / 16).clamp(1, RUN_MAX),
        };
        // With persistence on, each message is routed alone (its acknowledgement waits
        // for its own commit).
        let max = if shared.durable.is_some() { 0 } else { max };
        let bytes_limit = match limits.max_bytes {
            0 => FLOW_BYTES,
            n => n.min(FLOW_BYTES),
        };
        Run {
            messages: SmallVec::new(),
            bytes: 0,
            max,
            max_bytes: bytes_limit / 16,
        }
    }

    /// Whether `message` can join the run.
    fn takes(&self, message: &Message) -> bool {
        let size = message.payload.len();
        match self.messages.first() {
            _ if message.retain || self.messages.len() >= self.max => false,
            // A message larger than the bytes allowed makes a run of one.
            None => true,
            Some(first) => first.topic == message.topic && self.bytes + size <= self.max_bytes,
        }
    }

    fn add(&mut self, message: Arc<Message>) {
        self.bytes += message.payload.len();
        self.messages.push(message);
    }

    /// Routes the run, and empties it; returns the deliveries queued, and adds to
    /// `congested` the congested sessions the publisher waits for.
    fn route(&mut self, shared: &Shared, congested: &mut Vec<Arc<SessionEntry>>) -> usize {
        if self.messages.is_empty() {
            return 0;
        }
        let before = congested.len();
        let queued = match shared.router.publish_run(&self.messages, congested) {
            Some((queued, sessions)) => {
                wait_only_if_all_congested(congested, before, sessions);
                queued
            }
            // One by one, as if there were no run.
            None => self
                .messages
                .drain(..)
                .map(|message| {
                    let before = congested.len();
                    let (to, _) = shared.router.publish_noting(message, congested);
                    wait_only_if_all_congested(congested, before, to);
                    to
                })
                .sum(),
        };
        self.messages.clear();
        self.bytes = 0;
        queued
    }
}

/// The publisher waits only if every session a message went to (`to`, those congested
/// added to `congested` after `before`) is congested: waiting must not hold back a
/// subscriber that keeps up.
fn wait_only_if_all_congested(congested: &mut Vec<Arc<SessionEntry>>, before: usize, to: usize) {
    if congested.len() - before < to {
        congested.truncate(before);
    }
}

/// Waits until every mailbox the pause waits for has drained to half its limits or
/// its client has gone (true), or until the pause ends (false); hands the pause back.
async fn relieve(pause: Pause) -> (Pause, bool) {
    let relieved = wait_relieved(&pause).await;
    (pause, relieved)
}

async fn wait_relieved(pause: &Pause) -> bool {
    for entry in &pause.congested {
        loop {
            let room = crate::registry::room(&pause.rooms, entry.id).notified();
            tokio::pin!(room);
            // Registered before the check, so that a drain in between is not missed.
            room.as_mut().enable();
            let relieved = entry
                .mailbox
                .lock()
                .expect("mailbox lock poisoned")
                .is_relieved();
            if relieved || !entry.is_online() {
                break;
            }
            tokio::select! {
                _ = room => {}
                _ = tokio::time::sleep_until(pause.until) => return false,
            }
        }
    }
    true
}

/// The pause ran out: the mailboxes still congested shed from now on.
fn shed(publisher: &SessionEntry, pause: &Pause) {
    for entry in &pause.congested {
        let (started, queued) = {
            let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
            (mailbox.shed(), mailbox.len())
        };
        if started {
            tracing::warn!(
                client_id = %entry.client_id, queued, publisher = %publisher.client_id,
                "client is not keeping up: its queue is full, messages for it are dropped until it drains"
            );
        }
    }
}

/// The timer's instant for `deadline`; far away for none.
fn deadline_or(deadline: Option<Instant>) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline.unwrap_or_else(|| now() + FAR))
}

/// Moves deliveries from the mailbox into the session while it has room. Returns
/// whether it took any, or stopped with more to take; otherwise `waker` is woken by
/// the next delivery.
fn drain_mailbox(
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    t: Instant,
    shared: &Shared,
    outbox: &mut Outbox,
    ending: &mut Option<Ending>,
    waker: &std::task::Waker,
) -> bool {
    // The thread's list, taken and put back (a drain drains no other mailbox; were one
    // to, it would only find an empty list and allocate its own).
    let mut out = DRAINED.take();
    let mut taken = 0;
    let mut more = false;
    // Payload bytes taken, beside what is already waiting to be written.
    let mut bytes = outbox.buf().len();
    {
        let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
        let relieved = mailbox.is_relieved();
        while taken < DRAIN_BATCH && bytes < WRITE_BATCH_BYTES && session.has_room() {
            let Some(delivery) = mailbox.pop() else { break };
            bytes += delivery.message.payload.len();
            session.handle_delivery(delivery, t, &mut out);
            taken += 1;
        }
        if !relieved && mailbox.is_relieved() {
            // Publishers waiting for this mailbox go on.
            crate::registry::room(shared.registry.rooms(), entry.id).notify_waiters();
        }
        if mailbox.is_empty() {
            mailbox.wait(waker);
        } else if session.has_room() {
            // More to take, after this batch is written.
            more = true;
        }
    }
    let _ = apply(shared, entry, session, &mut out, t, outbox, ending, None);
    DRAINED.set(out);
    taken > 0 || more
}

thread_local! {
    /// The actions of the deliveries that one drain takes, reused from drain to drain:
    /// a drain allocates nothing (growing a fresh list to a batch of 128-byte actions
    /// was six allocations and copies).
    static DRAINED: std::cell::Cell<Vec<Action>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Carries out (and takes out) the session's actions in order. With `run` (the input
/// of a round), the messages published join it, and are routed when it ends.
#[allow(clippy::too_many_arguments)]
fn apply(
    shared: &Shared,
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    actions: &mut Vec<Action>,
    t: Instant,
    outbox: &mut Outbox,
    ending: &mut Option<Ending>,
    mut run: Option<&mut Run>,
) -> Applied {
    let mut congested = Vec::new();
    let mut queued = 0;
    let mut retained = Vec::new();
    for action in actions.drain(..) {
        if let Some(run) = run.as_deref_mut() {
            match action {
                // Packets sent go out after everything routed here anyway; a message
                // published is seen to below.
                Action::Send(_) | Action::SendShared { .. } | Action::Publish(_) => {}
                // Everything else comes after the messages published before it.
                _ => queued += run.route(shared, &mut congested),
            }
        }
        match action {
            Action::Send(packet) => {
                if let Err(e) = packet.encode(session.version(), outbox.buf()) {
                    cannot_write(entry, &e);
                }
            }
            Action::SendShared {
                message,
                form,
                packet_id,
            } => match message.encoded_now(form) {
                Some(encoded) => encoded.write(packet_id, outbox.buf()),
                None => {
                    if !message.write_publish(form, packet_id, outbox.buf()) {
                        cannot_write(entry, &"the PUBLISH does not fit");
                    }
                }
            },
            Action::Persist(change) => persist(shared, entry, session, change, outbox),
            Action::Publish(message) => {
                if let Some(run) = run.as_deref_mut() {
                    if !run.takes(&message) {
                        // Another topic, or a full run: the run goes first.
                        queued += run.route(shared, &mut congested);
                    }
                    if run.takes(&message) {
                        run.add(message);
                        continue;
                    }
                }
                let before = congested.len();
                let acknowledged = message.qos != midge_codec::QoS::AtMostOnce;
                let (to, commit) = shared.router.publish_noting(message, &mut congested);
                queued += to;
                if let (Some(commit), true) = (commit, acknowledged) {
                    // The PUBACK or PUBREC that follows waits until the message is durable, or
                    // acknowledged by every persistent session it is stored for.
                    outbox.hold(commit);
                }
                wait_only_if_all_congested(&mut congested, before, to);
            }
            Action::Subscribe {
                filter,
                options,
                id,
                existed,
            } => {
                retained.extend(
                    shared
                        .router
                        .subscribe(entry, &filter, options, id, existed, t),
                );
            }
            Action::Unsubscribe(filter) => unsubscribe(shared, entry, session, &filter, t),
            Action::Close {
                reason,
                publish_will,
            } => closing(ending, reason, publish_will),
        }
    }
    if !retained.is_empty() {
        let mut out = Vec::new();
        for delivery in retained {
            session.handle_delivery(delivery, t, &mut out);
        }
        let applied = apply(shared, entry, session, &mut out, t, outbox, ending, None);
        congested.extend(applied.congested);
        queued += applied.queued;
    }
    Applied { congested, queued }
}

/// [`Action::Unsubscribe`], out of line (as [`closing`] and [`cannot_write`]): rare, it
/// stays out of the way of the per-message path in [`apply`].
#[cold]
#[inline(never)]
fn unsubscribe(
    shared: &Shared,
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    filter: &TopicFilter,
    t: Instant,
) {
    shared.router.unsubscribe(entry, filter);
    if filter.is_shared() {
        leave_shared_group(shared, entry, session, filter, t);
    }
}

/// [`Action::Close`]: the connection is to close (see [`unsubscribe`]).
#[cold]
#[inline(never)]
fn closing(ending: &mut Option<Ending>, reason: Option<ReasonCode>, publish_will: bool) {
    ending.get_or_insert(Ending {
        why: match reason {
            Some(r) => format!("closed by server: {r}"),
            None => "client sent DISCONNECT".into(),
        },
        send: reason,
        publish_will,
    });
}

/// A packet that could not be written (it does not fit the client's maximum size, which
/// the session checks before: not expected).
#[cold]
#[inline(never)]
fn cannot_write(entry: &SessionEntry, error: &dyn std::fmt::Display) {
    tracing::warn!(client_id = %entry.client_id, %error, "cannot write a packet");
}

/// What [`apply`] did that its caller acts on.
#[derive(Debug)]
#[must_use]
struct Applied {
    /// The sessions whose mailboxes the messages published made congested.
    congested: Vec<Arc<SessionEntry>>,
    /// Deliveries the messages published queued.
    queued: usize,
}

/// Writes a session's change to the persistence store; the packets after it wait for
/// it if it [`Change::gates`] them.
fn persist(
    shared: &Shared,
    entry: &SessionEntry,
    session: &Session,
    change: Change,
    outbox: &mut Outbox,
) {
    let Some(durable) = shared.durable.as_deref() else {
        return;
    };
    let client_id = entry.client_id.clone();
    let op = match change {
        Change::IncomingAdded(packet_id) => Op::AddIncoming {
            client_id,
            packet_id,
        },
        Change::IncomingReleased(packet_id) => Op::RemoveIncoming {
            client_id,
            packet_id,
        },
        Change::OutgoingSent { seq, id } => Op::SetOutgoingState {
            client_id,
            seq,
            state: OutgoingState::Sent(id),
        },
        Change::OutgoingReleased { seq, id } => Op::SetOutgoingState {
            client_id,
            seq,
            state: OutgoingState::Released(id),
        },
        Change::OutgoingDone { seq } => Op::RemoveOutgoing { client_id, seq },
        Change::Subscriptions => {
            Op::PutSession(Box::new(durable.session_record(session, None, None)))
        }
    };
    if change.gates() {
        // In order: what was left unsent goes first.
        outbox.send_unsent(Some(durable), entry);
        outbox.hold(AckGate::commit(durable.commit(Ops::One(op))));
    } else {
        outbox.unsent.push(op);
    }
}

/// Tells the store that the deliveries handed to other members of their shared
/// subscription groups left this session.
fn forget_handed_over(shared: &Shared, entry: &SessionEntry, handed: &[Option<u64>]) {
    let Some(durable) = shared.durable.as_deref() else {
        return;
    };
    let ops: Vec<Op> = handed
        .iter()
        .flatten()
        .map(|&seq| Op::RemoveOutgoing {
            client_id: entry.client_id.clone(),
            seq,
        })
        .collect();
    if !ops.is_empty() {
        durable.send(ops);
    }
}

/// Removes a session's subscriptions and queued messages: the session has ended.
/// Messages that came through shared subscriptions and did not reach the client go to
/// other members of their groups (§4.8.2).
fn end_session(shared: &Shared, entry: &SessionEntry, session: &mut Session, t: Instant) {
    for filter in session.take_subscriptions() {
        shared.router.unsubscribe(entry, &filter);
    }
    let mut orphans = session.take_shared_deliveries(None);
    {
        let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
        orphans.extend(mailbox.take_if(|d| d.shared_group().is_some()));
        mailbox.clear();
    }
    for delivery in orphans {
        shared.router.redeliver_shared(delivery, entry.id, t);
    }
    if let Some(durable) = shared.durable.as_deref() {
        if entry.is_persistent() {
            entry.set_persistent(None);
            durable.send(Ops::One(Op::DeleteSession(entry.client_id.clone())));
        }
    }
}

/// The client left the shared subscription `group`: what it was sent through it and has
/// not received yet goes to another member.
fn leave_shared_group(
    shared: &Shared,
    entry: &SessionEntry,
    session: &mut Session,
    group: &TopicFilter,
    t: Instant,
) {
    let mut orphans = session.take_shared_deliveries(Some(group));
    orphans.extend(
        entry
            .mailbox
            .lock()
            .expect("mailbox lock poisoned")
            .take_if(|d| d.shared_group().map(|g| &**g) == Some(group.as_str())),
    );
    let handed: Vec<Option<u64>> = orphans.iter().map(|d| d.seq).collect();
    for delivery in orphans {
        shared.router.redeliver_shared(delivery, entry.id, t);
    }
    forget_handed_over(shared, entry, &handed);
}

/// After the connection: publish or schedule the will, keep or end the session.
fn finish(
    shared: &Arc<Shared>,
    entry: &Arc<SessionEntry>,
    slot: SlotHold,
    mut session: Session,
    generation: u32,
    will: Option<(Arc<Message>, u32)>,
) {
    entry.set_online(false);
    // Nothing to kick any more (and the kick lets go of this task's waker). Still holding
    // the slot: the next connection sets its own kick only once it has the slot.
    entry.disown_kick(generation);
    let t = now();
    let taken_over = entry.generation.load(Ordering::SeqCst) != generation;
    let expiry = session.session_expiry();
    // When the will goes out, if it waits.
    let mut will_at = None;
    let mut pending = None;
    if let Some((message, delay)) = will {
        if expiry == 0 || (delay == 0 && !taken_over) {
            // [MQTT-3.1.2-8]: the session ends now, or there is no delay.
            publish_will(shared, message, t);
        } else {
            // It waits for the earlier of its delay and the session's end, or for the
            // next connection, which decides (see `PendingWill`). A taken-over session
            // already has its next connection waiting for the slot.
            let wait = Duration::from_secs(u64::from(delay.min(expiry)));
            will_at = Some((message.clone(), t + wait));
            pending = Some(PendingWill { message });
            if !taken_over {
                schedule_will(shared, entry, generation, wait);
            }
        }
    }
    if expiry == 0 {
        end_session(shared, entry, &mut session, t);
        if !taken_over {
            shared.registry.remove_if_current(entry, generation);
        }
        return;
    }
    let wait = (expiry != u32::MAX).then(|| Duration::from_secs(u64::from(expiry)));
    let expires_at = wait.map(|wait| t + wait);
    if let (Some(durable), true) = (shared.durable.as_deref(), entry.is_persistent()) {
        let will = will_at.as_ref().map(|(m, at)| (&**m, *at));
        let record = durable.session_record(&session, expires_at, will);
        let mut ops = vec![Op::PutSession(Box::new(record))];
        // QoS 1 sends have no state record while connected (one write fewer per
        // message); the ones still unacknowledged get theirs now.
        ops.extend(
            session
                .qos1_sent()
                .into_iter()
                .map(|(seq, id)| Op::SetOutgoingState {
                    client_id: entry.client_id.clone(),
                    seq,
                    state: OutgoingState::Sent(id),
                }),
        );
        durable.send(ops);
    }
    *slot.get() = Some(Box::new(Offline {
        session,
        will: pending,
        expires_at,
    }));
    drop(slot);
    if let (false, Some(wait)) = (taken_over, wait) {
        schedule_expiry(shared, entry, generation, wait);
    }
}

/// Publishes the session's pending will after `wait`, unless a new connection came
/// (it decides then, see [`PendingWill`]).
pub(crate) fn schedule_will(
    shared: &Arc<Shared>,
    entry: &Arc<SessionEntry>,
    generation: u32,
    wait: Duration,
) {
    schedule(shared, entry, wait, move |shared, entry| async move {
        let hold = entry.hold_slot().await;
        let mut slot = hold.get();
        if entry.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let Some(offline) = slot.as_deref_mut() else {
            return;
        };
        let Some(will) = offline.will.take() else {
            return;
        };
        publish_will(&shared, will.message, now());
        // The stored session keeps no will any more.
        if let Some(durable) = shared.durable.as_deref().filter(|_| entry.is_persistent()) {
            let record = durable.session_record(&offline.session, offline.expires_at, None);
            durable.send(Ops::One(Op::PutSession(Box::new(record))));
        }
    });
}

/// Ends the session after `wait` ([MQTT-4.1.0-2]), unless a new connection came.
pub(crate) fn schedule_expiry(
    shared: &Arc<Shared>,
    entry: &Arc<SessionEntry>,
    generation: u32,
    wait: Duration,
) {
    schedule(shared, entry, wait, move |shared, entry| async move {
        let hold = entry.hold_slot().await;
        if shared.registry.remove_if_current(&entry, generation) {
            let offline = hold.get().take();
            if let Some(mut offline) = offline {
                let t = now();
                // The session ends: a will still waiting goes out now ([MQTT-3.1.3-9]).
                if let Some(will) = offline.will.take() {
                    publish_will(&shared, will.message, t);
                }
                end_session(&shared, &entry, &mut offline.session, t);
            }
            tracing::info!(client_id = %entry.client_id, "session expired");
        }
    });
}

/// Runs `then` after `wait`, as one of the disconnected session's timers (cancelled by
/// its next connection). The broker is held weakly: one shut down frees its store at
/// once, and the timer then does nothing.
fn schedule<F, Fut>(shared: &Arc<Shared>, entry: &Arc<SessionEntry>, wait: Duration, then: F)
where
    F: FnOnce(Arc<Shared>, Arc<SessionEntry>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (weak, entry2) = (Arc::downgrade(shared), entry.clone());
    let task = tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if let Some(shared) = weak.upgrade() {
            then(shared, entry2).await;
        }
    });
    entry.add_timer(task.abort_handle());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BufMut;

    use super::*;
    use crate::store::{MemoryStore, Persistence, RestoreMode, restore};

    /// Packets held behind commits reach the ready buffer in the order they were
    /// encoded, each group once its commit (and every earlier one) is durable
    /// ([MQTT-4.6.0-2], [MQTT-4.6.0-3]: acknowledgements in order).
    /// conformance: v311 MQTT-4.6.0-2
    /// conformance: v311 MQTT-4.6.0-3
    #[tokio::test]
    async fn held_packets_are_released_in_order() {
        let store = Arc::new(MemoryStore::new());
        let mut restored = restore(&*store, 0, RestoreMode::Apply).unwrap();
        let p = Persistence::start(store, &mut restored);
        let commit = || AckGate::commit(p.commit(Vec::new()));
        let mut outbox = Outbox::default();
        outbox.buf().put_slice(b"a");
        outbox.hold(commit());
        outbox.buf().put_slice(b"b1");
        outbox.hold(commit());
        outbox.buf().put_slice(b"c2");
        outbox.buf().put_slice(b"c3");
        while outbox.held.is_some() {
            std::future::poll_fn(|cx| outbox.poll_released(cx))
                .await
                .unwrap();
        }
        assert_eq!(&outbox.wbuf[..], b"ab1c2c3");
        // Held again after a release: positions carry on.
        outbox.hold(commit());
        outbox.buf().put_slice(b"d");
        outbox.hold(commit());
        outbox.buf().put_slice(b"e");
        assert_eq!(&outbox.wbuf[..], b"ab1c2c3");
        while outbox.held.is_some() {
            std::future::poll_fn(|cx| outbox.poll_released(cx))
                .await
                .unwrap();
        }
        assert_eq!(&outbox.wbuf[..], b"ab1c2c3de");
        assert!(outbox.held.is_none());
        p.close();
    }
}
