//! The tokio driver: one task that owns the socket and the [`ClientState`], and moves
//! bytes: read → decode → state → encode → one batched write. It reconnects with
//! exponential backoff when the connection drops; the state then resumes the session and
//! resends what was in flight ([MQTT-4.4.0-1]).
//!
//! Every protocol decision is the state's (`state/`); this file decides only when to
//! read, write, sleep and reconnect. It is the one place that reads the clock
//! ([`now`]). Buffers live in the struct, not in locals, so that every branch of its
//! `select!` is cancel-safe (STYLE.md rule 10).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use midge_codec::{Decoder, Disconnect, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Close, Event, Request, Responder};
use crate::error::ClientError;
use crate::options::{ConnectOptions, Direction, random_u64};
use crate::state::{ClientState, DeliveryAck, Output};
use crate::transport::{self, Connection, WriteHalf};

/// Stop taking requests while this many encoded bytes wait for the socket.
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Room made in the read buffer before each read, so that reads are not tiny.
const READ_RESERVE: usize = 16 * 1024;

/// Requests taken from the channel per wake-up, so that many publications share one
/// write.
const REQUEST_BATCH: usize = 64;

/// The largest MQTT Remaining Length, 268,435,455 bytes (a fixed header adds up to 5).
const MAX_PACKET: usize = 268_435_455;

/// Longest wait for the last bytes (a DISCONNECT) of a closing connection.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The one place the client reads the clock (STYLE.md rule 2). Tokio's clock, so that
/// tests with a paused runtime see virtual time.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// CONNACK refusals that another attempt will not cure: reconnecting stops.
fn is_permanent(error: &ClientError) -> bool {
    error.is_invalid()
        || error.is_auth()
        || (error.is_refused()
            && matches!(
                error.reason_code(),
                Some(
                    ReasonCode::UnsupportedProtocolVersion
                        | ReasonCode::ClientIdentifierNotValid
                        | ReasonCode::BadUserNameOrPassword
                        | ReasonCode::NotAuthorized
                        | ReasonCode::Banned
                        | ReasonCode::BadAuthenticationMethod
                )
            ))
}

/// The connection task.
#[derive(Debug)]
pub(crate) struct EventLoop {
    /// Address, timeouts, reconnect policy.
    options: ConnectOptions,
    /// The protocol state; tokens are the requests' responders.
    state: ClientState<Responder>,
    /// Requests from the handles.
    requests: mpsc::Receiver<Request>,
    /// Disconnect requests; closed when every handle is gone.
    close: mpsc::Receiver<Close>,
    /// Whoever waits for the client to be closed.
    close_waiters: Vec<oneshot::Sender<()>>,
    /// Events for the application.
    events: mpsc::Sender<Event>,
    /// Events the channel had no room for, with what acknowledges each message once it
    /// is delivered: QoS 1/2 messages wait here unacknowledged, so the server's
    /// in-flight window (our Receive Maximum) bounds them; QoS 0 messages are dropped
    /// once `event_capacity` wait.
    undelivered: VecDeque<(Event, Option<DeliveryAck>)>,
    /// QoS 0 messages and connection events dropped because the application was behind,
    /// since the last report.
    dropped: u64,
    /// Whether the application dropped its [`crate::Events`].
    events_closed: bool,
    /// Bytes read and not yet decoded.
    rbuf: BytesMut,
    /// Encoded packets not yet written.
    wbuf: BytesMut,
    /// Decoder of the current connection.
    decoder: Decoder,
    /// Whether the current transport buffers writes until flushed (TLS, WebSocket).
    buffered: bool,
}

impl EventLoop {
    pub(crate) fn new(
        options: ConnectOptions,
        requests: mpsc::Receiver<Request>,
        close: mpsc::Receiver<Close>,
        events: mpsc::Sender<Event>,
    ) -> Self {
        EventLoop {
            state: ClientState::new(&options),
            decoder: Decoder::client(options.version),
            options,
            requests,
            close,
            close_waiters: Vec::new(),
            events,
            undelivered: VecDeque::new(),
            events_closed: false,
            dropped: 0,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::with_capacity(8 * 1024),
            buffered: false,
        }
    }

    /// Runs the client: the first connection (reported on `ready`), then serving and
    /// reconnecting until the client is closed.
    pub(crate) async fn run(mut self, ready: oneshot::Sender<Result<(), ClientError>>) {
        let mut stream = match self.establish().await {
            Ok(stream) => {
                let _ = ready.send(Ok(()));
                stream
            }
            Err(e) => {
                self.state.close(e.clone());
                let _ = ready.send(Err(e));
                return;
            }
        };
        loop {
            let error = match self.serve(stream).await {
                Ok(()) => break,
                Err(e) => e,
            };
            tracing::info!(client_id = %self.state.client_id(), server = %self.options.server,
                error = %error, "connection lost");
            self.state.handle_connection_lost(now());
            self.push_event(Event::Disconnected(error.clone()), None);
            match self.reconnect(error).await {
                Some(s) => stream = s,
                None => break,
            }
        }
        self.finish().await;
    }

    /// Reconnects with backoff; `None` when the client closed or the policy gave up.
    async fn reconnect(&mut self, mut error: ClientError) -> Option<Connection> {
        let mut attempt = 0;
        loop {
            let Some(delay) = self.options.reconnect.backoff(attempt, random_u64()) else {
                let lost = ClientError::connection_lost(format!("not reconnecting: {error}"));
                self.state.close(lost);
                return None;
            };
            attempt += 1;
            if !self.wait(delay).await {
                return None;
            }
            match self.establish().await {
                Ok(stream) => return Some(stream),
                Err(e) if is_permanent(&e) => {
                    tracing::warn!(server = %self.options.server, error = %e, "reconnect refused; giving up");
                    self.state.close(e.clone());
                    self.push_event(Event::Disconnected(e), None);
                    return None;
                }
                Err(e) => {
                    tracing::debug!(server = %self.options.server, error = %e, attempt, "reconnect failed");
                    error = e;
                }
            }
        }
    }

    /// Opens a connection and completes the CONNECT/CONNACK exchange within the connect
    /// timeout.
    async fn establish(&mut self) -> Result<Connection, ClientError> {
        let timeout = self.options.connect_timeout;
        let result = match tokio::time::timeout(timeout, self.handshake()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::timeout(format!(
                "no CONNACK from {} within {timeout:?}",
                self.options.server
            ))),
        };
        if result.is_err() {
            self.state.handle_connection_lost(now());
        }
        self.drain_state();
        result
    }

    /// Opens the transport: a socket (TCP, through the SOCKS5 proxy if one is set, or
    /// Unix), then TLS and the WebSocket handshake as the options say.
    async fn open(&self) -> Result<Connection, ClientError> {
        let options = &self.options;
        let host = transport::host_of(&options.server);
        let tls = match &options.tls {
            Some(tls) => Some(transport::TlsSetup::new(tls, host)?),
            None => None,
        };
        let mut stream = match &options.unix_socket {
            Some(path) => open_unix(path).await?,
            None => Connection::Tcp(self.open_socket().await?),
        };
        if let Some(tls) = tls {
            stream = transport::tls_connect(stream, tls).await?;
        }
        if let Some(path) = &options.websocket_path {
            // A frame may pack several packets (a server's batched write), so the limit
            // is the largest packet MQTT allows, not our Maximum Packet Size, which the
            // decoder enforces.
            stream = transport::ws_connect(
                stream,
                options.tls.is_some(),
                &options.server,
                path,
                MAX_PACKET + 5,
            )
            .await?;
        }
        Ok(stream)
    }

    /// A TCP connection to the server, through the SOCKS5 proxy if one is set.
    async fn open_socket(&self) -> Result<TcpStream, ClientError> {
        let Some(proxy) = &self.options.proxy else {
            return self.open_tcp(&self.options.server).await;
        };
        let mut stream = self.open_tcp(&proxy.server).await?;
        crate::socks::handshake(&mut stream, proxy, &self.options.server)
            .await
            .map_err(ClientError::proxy)?;
        Ok(stream)
    }

    /// Opens a TCP connection to `server` (`host:port`).
    async fn open_tcp(&self, server: &str) -> Result<TcpStream, ClientError> {
        let addrs: Vec<_> = tokio::net::lookup_host(server)
            .await
            .map_err(|e| ClientError::lookup(server, e))?
            .collect();
        let bind = match &self.options.bind_address {
            Some(host) => {
                let mut found = tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| ClientError::lookup(host, e))?;
                Some(found.next().ok_or_else(|| {
                    ClientError::lookup(host, std::io::ErrorKind::NotFound.into())
                })?)
            }
            None => None,
        };
        let mut last = None;
        for addr in addrs {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(ClientError::io)?;
            let connected = match bind {
                Some(local) => match socket.bind(local) {
                    Ok(()) => socket.connect(addr).await,
                    Err(e) => Err(e),
                },
                None => socket.connect(addr).await,
            };
            match connected {
                Ok(stream) => {
                    stream
                        .set_nodelay(self.options.tcp_nodelay)
                        .map_err(ClientError::io)?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => ClientError::io(e),
            None => ClientError::lookup(server, std::io::ErrorKind::NotFound.into()),
        })
    }

    /// Connects and exchanges CONNECT, any AUTH challenges, and the CONNACK.
    async fn handshake(&mut self) -> Result<Connection, ClientError> {
        let mut stream = self.open().await?;
        self.buffered = stream.buffers_writes();
        let mut decoder = Decoder::client(self.options.version);
        if let Some(max) = self.options.properties.maximum_packet_size {
            decoder.set_max_packet_size(max as usize);
        }
        self.decoder = decoder;
        self.rbuf.clear();
        self.wbuf.clear();
        self.state.connect(now())?;
        loop {
            self.encode_transmit();
            if !self.wbuf.is_empty() {
                stream
                    .write_all(&self.wbuf)
                    .await
                    .map_err(ClientError::io)?;
                stream.flush().await.map_err(ClientError::io)?;
                self.wbuf.clear();
            }
            // Packets are taken one at a time up to the CONNACK; what follows it stays
            // in `rbuf` for `serve`.
            let packet = loop {
                if let Some(packet) = self
                    .decoder
                    .decode(&mut self.rbuf)
                    .map_err(ClientError::decode)?
                {
                    break packet;
                }
                if stream
                    .read_buf(&mut self.rbuf)
                    .await
                    .map_err(ClientError::io)?
                    == 0
                {
                    return Err(ClientError::io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            };
            self.observe(Direction::Received, &packet);
            if let Err(e) = self.state.handle_packet(packet, now()) {
                // What the state queued (a DISCONNECT with the reason) goes out first.
                self.encode_transmit();
                let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
                    stream.write_all(&self.wbuf).await?;
                    stream.flush().await
                })
                .await;
                self.wbuf.clear();
                return Err(e);
            }
            if self.state.is_connected() {
                tracing::info!(client_id = %self.state.client_id(), server = %self.options.server,
                    version = %self.options.version, "connected");
                return Ok(stream);
            }
        }
    }

    /// Shows `packet` to the application's observer, if any.
    fn observe(&self, direction: Direction, packet: &midge_codec::Packet) {
        if let Some(observer) = &self.options.observer {
            observer.packet(direction, self.state.client_id(), packet);
        }
    }

    /// Serves one connection until it is lost (`Err`) or the client is closed (`Ok`).
    async fn serve(&mut self, stream: Connection) -> Result<(), ClientError> {
        let (mut rd, mut wr) = stream.split();
        // Whether bytes written may still wait in the transport's buffer (TLS,
        // WebSocket): the write branch then flushes them.
        let mut unflushed = false;
        // With an observer, packets are taken one at a time and the application runs
        // between them, so that a packet log and what the application prints interleave
        // as the packets came (as in libmosquitto, whose callbacks run per packet).
        let paced = self.options.observer.is_some();
        loop {
            if paced {
                if let Ok(close) = self.close.try_recv() {
                    self.handle_close(Some(close));
                }
            }
            let handled = if self.state.is_closed() {
                self.drain_state();
                false
            } else {
                match self.step(paced) {
                    Ok(handled) => handled,
                    Err(e) => {
                        self.final_flush(&mut wr).await;
                        return Err(e);
                    }
                }
            };
            if self.state.is_closed() {
                self.final_flush(&mut wr).await;
                return Ok(());
            }
            if paced && handled {
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self
                .state
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let accepting = self.state.can_accept() && self.wbuf.len() < WRITE_HIGH_WATER;
            self.rbuf.reserve(READ_RESERVE);
            let wake = tokio::select! {
                read = rd.read_buf(&mut self.rbuf) => Wake::Read(read),
                written = write_some(&mut wr, &mut self.wbuf, &mut unflushed, self.buffered),
                    if !self.wbuf.is_empty() || unflushed => Wake::Written(written),
                request = self.requests.recv(), if accepting => Wake::Request(request),
                close = self.close.recv() => Wake::Close(close),
                () = sleep_until(deadline), if deadline.is_some() => Wake::Timer,
                permit = self.events.reserve(), if !self.undelivered.is_empty() => {
                    Wake::Delivered(send_one(permit.ok(), &mut self.undelivered))
                }
            };
            match wake {
                Wake::Read(Ok(0)) => {
                    return Err(ClientError::connection_lost(
                        "the server closed the connection",
                    ));
                }
                Wake::Written(Ok(0)) => {
                    return Err(ClientError::io(std::io::ErrorKind::WriteZero.into()));
                }
                Wake::Read(Ok(_)) | Wake::Written(Ok(_)) => {}
                Wake::Read(Err(e)) | Wake::Written(Err(e)) => return Err(ClientError::io(e)),
                Wake::Timer => self.state.handle_timeout(now())?,
                other => self.handle_wake(other),
            }
        }
    }

    /// Decodes and handles what was read (only one packet if `one`), then collects the
    /// state's output. `Ok(true)` if a packet was handled; `Err`: the connection must
    /// end.
    fn step(&mut self, one: bool) -> Result<bool, ClientError> {
        let mut result = Ok(false);
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(packet)) => {
                    self.observe(Direction::Received, &packet);
                    if let Err(e) = self.state.handle_packet(packet, now()) {
                        result = Err(e);
                        break;
                    }
                    result = Ok(true);
                    if one {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let e = ClientError::decode(e);
                    self.state.handle_decode_error(&e);
                    result = Err(e);
                    break;
                }
            }
        }
        self.drain_state();
        result
    }

    /// Moves the state's output on: events to the application, results to the waiting
    /// requests, packets into the write buffer.
    fn drain_state(&mut self) {
        while let Some(output) = self.state.poll_output() {
            match output {
                Output::Connected(ack) => self.push_event(Event::Connected(ack), None),
                Output::Message { publish, ack } => self.push_event(Event::Message(publish), ack),
                Output::Completed(responder, result) => {
                    // The requester may have stopped waiting; that is fine.
                    let _ = responder.send(result);
                }
            }
        }
        self.encode_transmit();
    }

    fn encode_transmit(&mut self) {
        let now = now();
        let version = self.options.version;
        while let Some(packet) = self.state.poll_transmit(now) {
            self.observe(Direction::Sent, &packet);
            if let Err(e) = packet.encode(version, &mut self.wbuf) {
                // The state checks sizes before queueing; this is a bug, not an input.
                tracing::error!(packet = %packet.packet_type(), error = %e, "cannot encode; dropped");
            }
        }
    }

    /// Hands `event` to the application, or queues it; a delivered message is
    /// acknowledged. When `event_capacity` events already wait, what needs no
    /// acknowledgement (a QoS 0 message, a connection change) is dropped: QoS 1 and 2
    /// messages are bounded by the server's in-flight window instead.
    fn push_event(&mut self, event: Event, ack: Option<DeliveryAck>) {
        if self.events_closed {
            // Nobody listens: the message is done with.
            return self.delivered(ack);
        }
        if !self.undelivered.is_empty() {
            if ack.is_none() && self.undelivered.len() >= self.options.event_capacity {
                if self.dropped == 0 {
                    tracing::warn!(client_id = %self.state.client_id(),
                        "the application is behind: dropping QoS 0 messages and connection events");
                }
                self.dropped += 1;
                return;
            }
            self.undelivered.push_back((event, ack));
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => self.delivered(ack),
            Err(mpsc::error::TrySendError::Full(event)) => self.undelivered.push_back((event, ack)),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.events_closed = true;
                self.delivered(ack);
            }
        }
    }

    fn delivered(&mut self, ack: Option<DeliveryAck>) {
        if let Some(ack) = ack {
            self.state.handle_delivered(ack);
        }
    }

    /// Hands over as many waiting events as the channel takes now.
    fn deliver_more(&mut self) {
        while let Some((event, ack)) = self.undelivered.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => self.delivered(ack),
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.undelivered.push_front((event, ack));
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.delivered(ack);
                    self.events_closed();
                    break;
                }
            }
        }
        if self.undelivered.is_empty() && self.dropped > 0 {
            tracing::warn!(client_id = %self.state.client_id(), dropped = self.dropped,
                "the application caught up; QoS 0 messages or connection events were dropped");
            self.dropped = 0;
        }
        self.drain_state();
    }

    /// The application dropped its `Events`: what waits is done with.
    fn events_closed(&mut self) {
        self.events_closed = true;
        for (_, ack) in std::mem::take(&mut self.undelivered) {
            self.delivered(ack);
        }
    }

    /// Handles a wake-up that needs no socket.
    fn handle_wake(&mut self, wake: Wake) {
        match wake {
            Wake::Request(request) => {
                let more = request.is_some();
                self.handle_request(request);
                // Take what else is waiting, up to a batch, for one write.
                for _ in 1..REQUEST_BATCH {
                    if !more || !self.state.can_accept() {
                        break;
                    }
                    match self.requests.try_recv() {
                        Ok(request) => self.handle_request(Some(request)),
                        Err(_) => break,
                    }
                }
            }
            Wake::Close(close) => self.handle_close(close),
            Wake::Delivered(Ok(ack)) => {
                self.delivered(ack);
                self.deliver_more();
            }
            Wake::Delivered(Err(())) => self.events_closed(),
            Wake::Read(_) | Wake::Written(_) | Wake::Timer => {}
        }
    }

    fn handle_request(&mut self, request: Option<Request>) {
        match request {
            Some(Request::Publish(publish, r)) => self.state.publish(publish, r),
            Some(Request::Subscribe(filters, properties, r)) => {
                self.state.subscribe(filters, properties, r)
            }
            Some(Request::Unsubscribe(filters, properties, r)) => {
                self.state.unsubscribe(filters, properties, r)
            }
            Some(Request::Reauthenticate(r)) => self.state.reauthenticate(r),
            // Unreachable while a handle holds the close channel, which is also watched.
            None => {}
        }
    }

    fn handle_close(&mut self, close: Option<Close>) {
        let disconnect = match close {
            Some(Close { disconnect, done }) => {
                self.close_waiters.push(done);
                disconnect
            }
            // Every handle is gone.
            None => Disconnect::default(),
        };
        tracing::info!(client_id = %self.state.client_id(), "disconnecting");
        self.state.disconnect(disconnect);
    }

    /// Waits out a reconnect delay while still taking requests (they queue in the state)
    /// and delivering events. `false` if the client was closed meanwhile.
    async fn wait(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::Instant::from_std(now() + delay);
        loop {
            self.drain_state();
            if self.state.is_closed() {
                return false;
            }
            let wake = tokio::select! {
                () = tokio::time::sleep_until(deadline) => return true,
                request = self.requests.recv(), if self.state.can_accept() => Wake::Request(request),
                close = self.close.recv() => Wake::Close(close),
                permit = self.events.reserve(), if !self.undelivered.is_empty() => {
                    Wake::Delivered(send_one(permit.ok(), &mut self.undelivered))
                }
            };
            self.handle_wake(wake);
        }
    }

    /// Writes what is left (a DISCONNECT) for a short while, then closes the socket.
    async fn final_flush(&mut self, wr: &mut WriteHalf) {
        self.drain_state();
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
            wr.write_all(&self.wbuf).await?;
            wr.flush().await
        })
        .await;
        self.wbuf.clear();
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, wr.shutdown()).await;
    }

    /// The client is closed: fails what is left, hands over the last events, and answers
    /// whoever waits for the close.
    async fn finish(mut self) {
        self.drain_state();
        // Whoever asks to close now is answered at once.
        self.close.close();
        while let Ok(close) = self.close.try_recv() {
            let _ = close.done.send(());
        }
        // Requests that were never taken fail.
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            let (Request::Publish(_, r)
            | Request::Subscribe(_, _, r)
            | Request::Unsubscribe(_, _, r)
            | Request::Reauthenticate(r)) = request;
            let _ = r.send(Err(ClientError::closed()));
        }
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        if !self.events_closed {
            for (event, _) in self.undelivered.drain(..) {
                if self.events.send(event).await.is_err() {
                    break;
                }
            }
        }
        tracing::debug!(client_id = %self.state.client_id(), "client closed");
    }
}

/// What woke the connection task.
#[derive(Debug)]
enum Wake {
    Read(std::io::Result<usize>),
    Written(std::io::Result<usize>),
    Request(Option<Request>),
    Close(Option<Close>),
    Timer,
    /// An event went to the application, with what acknowledges it; `Err`: the
    /// application dropped its `Events`.
    Delivered(Result<Option<DeliveryAck>, ()>),
}

/// Sends the first waiting event through `permit`, returning its acknowledgement;
/// `Err` if the channel is closed.
fn send_one(
    permit: Option<mpsc::Permit<'_, Event>>,
    waiting: &mut VecDeque<(Event, Option<DeliveryAck>)>,
) -> Result<Option<DeliveryAck>, ()> {
    let permit = permit.ok_or(())?;
    Ok(waiting.pop_front().and_then(|(event, ack)| {
        permit.send(event);
        ack
    }))
}

/// Writes some of `wbuf`, or, when it is empty, flushes what a buffering transport
/// holds. Cancel-safe: `unflushed` changes only once a write or flush completed.
async fn write_some(
    wr: &mut WriteHalf,
    wbuf: &mut BytesMut,
    unflushed: &mut bool,
    buffered: bool,
) -> std::io::Result<usize> {
    if wbuf.is_empty() {
        wr.flush().await?;
        *unflushed = false;
        // Not 0, which would read as "the socket takes no more".
        return Ok(1);
    }
    let written = wr.write_buf(wbuf).await?;
    *unflushed = buffered;
    Ok(written)
}

/// A Unix domain socket connection.
#[cfg(unix)]
async fn open_unix(path: &std::path::Path) -> Result<Connection, ClientError> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(ClientError::io)?;
    Ok(Connection::Boxed(Box::new(stream)))
}

#[cfg(not(unix))]
async fn open_unix(path: &std::path::Path) -> Result<Connection, ClientError> {
    Err(ClientError::invalid(format!(
        "Unix domain sockets are not available here: {}",
        path.display()
    )))
}

/// Sleeps until `deadline`; never resolves without one (its branch is disabled then).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
