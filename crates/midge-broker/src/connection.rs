//! One client connection: the tokio shell around a [`Session`].
//!
//! read bytes → decode → session → actions → encode → one write per wake-up. The
//! protocol decisions are the session's; this file only moves bytes, owns the socket,
//! the timers and the session's slot, and cleans up when the connection ends (will,
//! session expiry, take-over).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use midge_codec::{
    ConnAck, Connect, DecodeError, Decoder, Disconnect, Packet, ProtocolVersion, PublishProperties,
    ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch};

use crate::Shared;
use crate::message::Message;
use crate::registry::{SessionEntry, SessionSlot};
use crate::session::{Action, Session};

/// Deliveries taken from the mailbox per wake-up, so one busy session cannot make its
/// write buffer grow without bound.
const DRAIN_BATCH: usize = 256;

/// The one place the broker reads the clock (STYLE.md rule 2).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
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

/// Serves one accepted socket until it closes.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder =
        Decoder::server().with_max_packet_size(shared.config.max_packet_size as usize);
    let mut rbuf = BytesMut::with_capacity(1024);
    let connect = tokio::time::timeout(
        shared.config.connect_timeout(),
        read_connect(&mut rd, &mut decoder, &mut rbuf),
    )
    .await;
    let connect = match connect {
        Err(_) => return tracing::info!(%peer, "closed: no CONNECT within the connect timeout"),
        Ok(Err(ReadError::Io(e))) => {
            return tracing::debug!(%peer, error = %e, "closed before CONNECT");
        }
        Ok(Err(ReadError::Decode(e))) => {
            tracing::info!(%peer, error = %e, "closed: bad CONNECT");
            if e.reason_code() == ReasonCode::UnsupportedProtocolVersion {
                // [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1 form, which any version can read).
                let _ = wr.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
            }
            return;
        }
        Ok(Ok(connect)) => connect,
    };
    if let Err(reason) = check_connect(&connect, &shared) {
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
            let _ = wr.write_all(&wbuf).await;
        }
        return;
    }
    serve(connect, peer, shared, shutdown, decoder, rbuf, rd, wr).await;
}

#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Decode(DecodeError),
}

async fn read_connect(
    rd: &mut OwnedReadHalf,
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
        let n = rd.read_buf(rbuf).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// The checks made before a session is touched; `Err` is the CONNACK reason.
fn check_connect(connect: &Connect, shared: &Shared) -> Result<(), ReasonCode> {
    let config = &shared.config;
    let v5 = connect.protocol.is_v5();
    if connect.client_id.is_empty()
        && !v5
        && (!connect.clean_start || connect.protocol == ProtocolVersion::V31)
    {
        // [MQTT-3.1.3-8] (3.1.1): an empty client id needs clean session.
        return Err(ReasonCode::ClientIdentifierNotValid);
    }
    if !v5
        && config.max_keepalive < 65535
        && (connect.keep_alive == 0 || connect.keep_alive > config.max_keepalive)
    {
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
    if !config.allow_anonymous && connect.username.is_none() {
        return Err(ReasonCode::NotAuthorized);
    }
    Ok(())
}

fn will_message(
    connect: &Connect,
    client_id: &Arc<str>,
    now: Instant,
) -> Option<(Arc<Message>, u32)> {
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
        topic: will.topic.clone(),
        payload: will.payload.clone(),
        qos: will.qos,
        retain: will.retain,
        expires_at: p
            .message_expiry_interval
            .map(|s| now + Duration::from_secs(u64::from(s))),
        properties,
        origin: Some(client_id.clone()),
    };
    Some((Arc::new(message), p.will_delay_interval.unwrap_or(0)))
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

#[allow(clippy::too_many_arguments)]
async fn serve(
    connect: Box<Connect>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    mut decoder: Decoder,
    mut rbuf: BytesMut,
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
) {
    let assigned = connect.client_id.is_empty().then(assign_client_id);
    let client_id: &str = assigned.as_deref().unwrap_or(&connect.client_id);
    let (entry, generation) = shared
        .registry
        .connect(client_id, shared.config.mailbox_limits());
    entry.cancel_timers();
    // [MQTT-3.1.4-3]: take the session over from a live connection.
    if let Some(kick) = entry.kick.lock().expect("kick lock poisoned").take() {
        let _ = kick.send(ReasonCode::SessionTakenOver);
    }
    let mut slot = entry.slot.lock().await;
    let (kick_tx, mut kick_rx) = oneshot::channel();
    *entry.kick.lock().expect("kick lock poisoned") = Some(kick_tx);

    let t0 = now();
    let resumed = match slot.session.take() {
        Some(old) if !connect.clean_start => Some(old),
        Some(mut old) => {
            end_session(&shared, &entry, &mut old);
            None
        }
        None => None,
    };
    let session_present = resumed.is_some();
    let mut session = resumed.unwrap_or_else(|| {
        Session::new(entry.client_id.clone(), shared.session_config.clone(), t0)
    });
    let mut session = {
        let mut out = Vec::new();
        session.connect(&connect, session_present, assigned.as_deref(), t0, &mut out);
        if connect.protocol != ProtocolVersion::V5 {
            if let Some(expiry) = shared.config.persistent_client_expiration {
                if session.session_expiry() == u32::MAX {
                    session.set_session_expiry(expiry);
                }
            }
        }
        let mut wbuf = BytesMut::new();
        let mut ending = None;
        apply(
            &shared,
            &entry,
            &mut session,
            out,
            t0,
            &mut wbuf,
            &mut ending,
        );
        entry
            .mailbox
            .lock()
            .expect("mailbox lock poisoned")
            .set_online(true);
        if wr.write_all(&wbuf).await.is_err() {
            finish(&shared, &entry, slot, session, generation, None, false);
            return;
        }
        session
    };
    decoder.set_version(connect.protocol);
    let will = will_message(&connect, &entry.client_id, t0);
    tracing::info!(
        %peer, client_id = %entry.client_id, version = %connect.protocol,
        clean_start = connect.clean_start, keep_alive = connect.keep_alive,
        session_present, "client connected"
    );

    let ending = connection_loop(
        &shared,
        &entry,
        &mut session,
        &mut decoder,
        &mut rbuf,
        &mut rd,
        &mut wr,
        &mut shutdown,
        &mut kick_rx,
    )
    .await;
    if let (Some(reason), true) = (ending.send, session.version().is_v5()) {
        let mut wbuf = BytesMut::new();
        let _ = Packet::Disconnect(Disconnect::new(reason)).encode(ProtocolVersion::V5, &mut wbuf);
        let _ = wr.write_all(&wbuf).await;
    }
    let _ = wr.shutdown().await;
    tracing::info!(%peer, client_id = %entry.client_id, reason = %ending.why, "client disconnected");
    let will = will.filter(|_| ending.publish_will);
    finish(&shared, &entry, slot, session, generation, will, true);
}

#[allow(clippy::too_many_arguments)]
async fn connection_loop(
    shared: &Shared,
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    shutdown: &mut watch::Receiver<bool>,
    kick: &mut oneshot::Receiver<ReasonCode>,
) -> Ending {
    let mut wbuf = BytesMut::with_capacity(1024);
    let mut ending: Option<Ending> = None;
    let far = Duration::from_secs(86_400 * 365);
    let keepalive = tokio::time::sleep_until(deadline_or(session.poll_deadline(), far));
    tokio::pin!(keepalive);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                return Ending { why: "server shutting down".into(), send: Some(ReasonCode::ServerShuttingDown), publish_will: true };
            }
            reason = &mut *kick => {
                let reason = reason.unwrap_or(ReasonCode::SessionTakenOver);
                return Ending { why: "session taken over".into(), send: Some(reason), publish_will: true };
            }
            read = rd.read_buf(rbuf) => {
                let t = now();
                match read {
                    Ok(0) => return Ending { why: "connection closed by client".into(), send: None, publish_will: true },
                    Err(e) => return Ending { why: format!("read error: {e}"), send: None, publish_will: true },
                    Ok(_) => loop {
                        match decoder.decode(rbuf) {
                            Ok(Some(packet)) => {
                                session.handle_packet(packet, t, &mut out);
                                if out.iter().any(|a| matches!(a, Action::Close { .. })) {
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                apply(shared, entry, session, std::mem::take(&mut out), t, &mut wbuf, &mut ending);
                                let _ = wr.write_all(&wbuf).await;
                                return Ending { why: format!("protocol violation: {e}"), send: Some(e.reason_code()), publish_will: true };
                            }
                        }
                    },
                }
            }
            _ = entry.notify.notified(), if session.has_room() => {}
            _ = &mut keepalive => {
                let t = now();
                session.handle_timeout(t, &mut out);
                keepalive.as_mut().reset(deadline_or(session.poll_deadline(), far));
            }
        }
        let t = now();
        apply(shared, entry, session, out, t, &mut wbuf, &mut ending);
        drain_mailbox(entry, session, t, shared, &mut wbuf, &mut ending);
        if !wbuf.is_empty() {
            if let Err(e) = wr.write_all(&wbuf).await {
                return Ending {
                    why: format!("write error: {e}"),
                    send: None,
                    publish_will: true,
                };
            }
            wbuf.clear();
        }
        if let Some(ending) = ending {
            return ending;
        }
    }
}

fn deadline_or(deadline: Option<Instant>, far: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline.unwrap_or_else(|| now() + far))
}

/// Moves deliveries from the mailbox into the session while it has room.
fn drain_mailbox(
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    t: Instant,
    shared: &Shared,
    wbuf: &mut BytesMut,
    ending: &mut Option<Ending>,
) {
    let mut out = Vec::new();
    let mut taken = 0;
    {
        let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
        while taken < DRAIN_BATCH && session.has_room() {
            let Some(delivery) = mailbox.pop() else { break };
            session.handle_delivery(delivery, t, &mut out);
            taken += 1;
        }
        if !mailbox.is_empty() && session.has_room() {
            // More to do: wake this loop again rather than wait for a publisher.
            entry.notify.notify_one();
        }
    }
    apply(shared, entry, session, out, t, wbuf, ending);
}

/// Carries out the session's actions in order.
fn apply(
    shared: &Shared,
    entry: &Arc<SessionEntry>,
    session: &mut Session,
    actions: Vec<Action>,
    t: Instant,
    wbuf: &mut BytesMut,
    ending: &mut Option<Ending>,
) {
    let mut retained = Vec::new();
    for action in actions {
        match action {
            Action::Send(packet) => {
                if let Err(e) = packet.encode(session.version(), wbuf) {
                    tracing::warn!(client_id = %entry.client_id, error = %e, "cannot encode packet");
                }
            }
            Action::Publish(message) => {
                shared.router.publish(message);
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
            Action::Unsubscribe(filter) => {
                shared.router.unsubscribe(entry, &filter);
            }
            Action::Close {
                reason,
                publish_will,
            } => {
                ending.get_or_insert(Ending {
                    why: match reason {
                        Some(r) => format!("closed by server: {r}"),
                        None => "client sent DISCONNECT".into(),
                    },
                    send: reason,
                    publish_will,
                });
            }
        }
    }
    if !retained.is_empty() {
        let mut out = Vec::new();
        for delivery in retained {
            session.handle_delivery(delivery, t, &mut out);
        }
        apply(shared, entry, session, out, t, wbuf, ending);
    }
}

/// Removes a session's subscriptions and queued messages: the session has ended.
fn end_session(shared: &Shared, entry: &SessionEntry, session: &mut Session) {
    for filter in session.take_subscriptions() {
        shared.router.unsubscribe(entry, &filter);
    }
    entry.mailbox.lock().expect("mailbox lock poisoned").clear();
}

/// After the connection: publish or schedule the will, keep or end the session.
fn finish(
    shared: &Arc<Shared>,
    entry: &Arc<SessionEntry>,
    mut slot: tokio::sync::MutexGuard<'_, SessionSlot>,
    mut session: Session,
    generation: u64,
    will: Option<(Arc<Message>, u32)>,
    connected: bool,
) {
    entry
        .mailbox
        .lock()
        .expect("mailbox lock poisoned")
        .set_online(false);
    let taken_over = entry.generation.load(Ordering::SeqCst) != generation;
    let expiry = session.session_expiry();
    if let Some((message, delay)) = will {
        if delay == 0 || expiry == 0 {
            shared.router.publish(message);
        } else if !taken_over {
            // [MQTT-3.1.2-8]: at the earlier of the will delay and the session's end.
            let wait = Duration::from_secs(u64::from(delay.min(expiry)));
            let (shared, entry2) = (shared.clone(), entry.clone());
            let task = tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if entry2.generation.load(Ordering::SeqCst) == generation {
                    shared.router.publish(message);
                }
            });
            entry
                .timers
                .lock()
                .expect("timers lock poisoned")
                .push(task.abort_handle());
        }
    }
    if expiry == 0 {
        end_session(shared, entry, &mut session);
        if !taken_over {
            shared.registry.remove_if_current(entry, generation);
        }
        return;
    }
    slot.session = Some(session);
    drop(slot);
    if connected && !taken_over && expiry != u32::MAX {
        let (shared, entry2) = (shared.clone(), entry.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(expiry))).await;
            let mut slot = entry2.slot.lock().await;
            // [MQTT-4.1.0-2]: the session expired.
            if shared.registry.remove_if_current(&entry2, generation) {
                if let Some(mut session) = slot.session.take() {
                    end_session(&shared, &entry2, &mut session);
                }
                tracing::info!(client_id = %entry2.client_id, "session expired");
            }
        });
        entry
            .timers
            .lock()
            .expect("timers lock poisoned")
            .push(task.abort_handle());
    }
}
