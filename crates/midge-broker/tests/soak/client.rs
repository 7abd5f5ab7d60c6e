//! The soak's client machinery: one connection ([`Conn`]), the driver that serves a
//! [`Role`] over its successive connections ([`drive`], [`serve`]), and the chaos
//! task that cuts them ([`chaos`]).

use super::*;

/// What the clients share with the test.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) addr: SocketAddr,
    /// Protocol failures seen by the clients (the first [`SHOWN`] of them).
    pub(crate) failures: Mutex<Vec<String>>,
    pub(crate) failure_count: AtomicU64,
    /// Payloads of the wills received by the will watcher (`NAME:n`).
    pub(crate) wills: Mutex<HashSet<String>>,
}

impl Ctx {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Ctx {
            addr,
            failures: Mutex::new(Vec::new()),
            failure_count: AtomicU64::new(0),
            wills: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn fail(&self, what: String) {
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        let mut failures = lock(&self.failures);
        if failures.len() < SHOWN {
            failures.push(what);
        }
    }
}

/// Locks a std mutex (held for a few statements, never across an await).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("lock poisoned")
}

/// A small deterministic generator (SplitMix64): no dependency, and a printed seed
/// replays the same choices.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn millis(&mut self, (lo, hi): (u64, u64)) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }

    /// A generator for client `index`, independent of the others.
    pub(crate) fn fork(&self, index: usize) -> Rng {
        let mut rng = Rng(self.0 ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        rng.next();
        rng
    }
}

/// How chaos cuts a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Close the socket (FIN) without DISCONNECT.
    Close,
    /// Reset the socket (RST, zero linger).
    Reset,
    /// Send the first part of a PUBLISH, then close.
    Torn,
    /// Connect again with the same client id while the old connection stays open; close
    /// the old one after the new CONNACK.
    TakeOver,
    /// Go silent — neither read nor write, the socket open — as a client whose network
    /// went away: the broker must close the connection on keep alive and publish its
    /// will ([MQTT-3.1.2-22], [MQTT-3.1.2-8]). Then close and reconnect.
    Hang,
}

/// The cuts, each as likely but a hang, half as likely (it lasts seconds).
pub(crate) const CUTS: [Cut; 5] = [Cut::Close, Cut::Reset, Cut::Torn, Cut::TakeOver, Cut::Hang];
pub(crate) const CUT_WEIGHTS: [usize; 5] = [2, 2, 2, 2, 1];

/// One cut, and how long the client stays away after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chaos {
    pub(crate) cut: Cut,
    /// The client goes on serving its connection this long before the cut (so that
    /// acknowledgements it holds back, or those of what it just published, are lost).
    pub(crate) after: Duration,
    /// Whether it stops reading meanwhile, as a client that hangs before it dies: what
    /// the broker sends then is lost, and resent after the reconnect.
    pub(crate) stall: bool,
    /// How long it stays away after the cut.
    pub(crate) away: Duration,
}

/// Per-client connection figures.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConnStats {
    /// Successful CONNACKs.
    pub(crate) connects: u64,
    /// Cuts applied, by [`CUTS`] index.
    pub(crate) cuts: [u64; 5],
    /// Connections the broker closed, or that failed, without a cut.
    pub(crate) unexpected: u64,
    /// The connection that ended with DISCONNECT: its will must not be published
    /// ([MQTT-3.1.2-10]).
    pub(crate) disconnected: Option<u64>,
}

/// The client side of one session, kept across its connections. [`drive`] owns the
/// socket and calls these; they return the packets to send.
pub(crate) trait Role: Send + 'static {
    /// Whether its connections carry a will (see [`will`]).
    const WILL: bool = true;
    fn name(&self) -> &str;
    fn connect_packet(&self) -> Connect;
    /// Checks the CONNACK; returns what to send first (resends, SUBSCRIBE).
    fn on_connack(&mut self, ack: &ConnAck) -> Result<Vec<Packet>, String>;
    /// Handles a packet from the broker (not DISCONNECT: the driver ends on it).
    fn on_packet(&mut self, packet: Packet, out: &mut Vec<Packet>) -> Result<(), String>;
    /// When [`Role::on_timer`] wants to run next.
    fn next_timer(&self, phase: Phase) -> Option<Instant>;
    fn on_timer(&mut self, phase: Phase, now: Instant, out: &mut Vec<Packet>);
    /// Chaos is about to cut the connection: the last packets to send before.
    fn on_cut(&mut self, _phase: Phase, _out: &mut Vec<Packet>) {}
    /// True when the client leaves for good.
    fn done(&self, phase: Phase) -> bool;
    fn conn_stats(&mut self) -> &mut ConnStats;
}

/// The will of connection `n` (counted from 1) of client `name`: QoS 1 on
/// `soak-will/NAME` (no subscriber's filter matches it but the will watcher's), payload
/// `NAME:n`, so that the watcher tells which connection ended.
pub(crate) fn will(name: &str, n: u64) -> LastWill {
    LastWill {
        topic: TopicName::new(format!("soak-will/{name}")).expect("valid topic"),
        payload: Bytes::from(format!("{name}:{n}")),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties::default(),
    }
}

/// A persistent-session CONNECT: Clean Session 0 (3.1.1), or Clean Start 0 with a
/// Session Expiry Interval (5.0).
pub(crate) fn persistent_connect(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut connect = Connect::new(version, client_id);
    connect.keep_alive = KEEP_ALIVE;
    connect.clean_start = false;
    if version.is_v5() {
        connect.properties.session_expiry_interval = Some(SESSION_EXPIRY);
    }
    connect
}

/// Checks the reason code and Session Present flag of a CONNACK.
pub(crate) fn check_connack(name: &str, ack: &ConnAck, resumed: bool) -> Result<(), String> {
    if ack.reason_code != ReasonCode::Success {
        return Err(format!("{name}: CONNACK {}", ack.reason_code));
    }
    if ack.session_present != resumed {
        return Err(format!(
            "{name}: Session Present {} (expected {resumed})",
            ack.session_present
        ));
    }
    Ok(())
}

/// Acknowledgements held back and sent together, as a client that processes in
/// batches does: the broker then has more in flight when a connection is cut, and
/// resends more. What is held is lost with a cut connection, as unsent bytes are; the
/// session state says what to resend.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// How long an acknowledgement waits; `None`: sent at once.
    pub(crate) delay: Option<Duration>,
    pub(crate) packets: Vec<Packet>,
    pub(crate) until: Option<Instant>,
}

impl Held {
    pub(crate) fn new(delay: Option<Duration>) -> Self {
        Held {
            delay,
            ..Held::default()
        }
    }

    /// Sends `acks` now (into `out`), or holds them.
    pub(crate) fn push(&mut self, acks: &mut Vec<Packet>, out: &mut Vec<Packet>) {
        match self.delay {
            Some(delay) if !acks.is_empty() => {
                self.until.get_or_insert_with(|| now() + delay);
                self.packets.append(acks);
            }
            _ => out.append(acks),
        }
    }

    /// Sends what is held once its time has come.
    pub(crate) fn flush(&mut self, now: Instant, out: &mut Vec<Packet>) {
        if self.until.is_some_and(|t| t <= now) {
            self.until = None;
            out.append(&mut self.packets);
        }
    }

    /// Forgets what is held (the connection it was for is gone).
    pub(crate) fn clear(&mut self) {
        self.packets.clear();
        self.until = None;
    }
}

/// One network connection of a client.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) version: ProtocolVersion,
    pub(crate) decoder: Decoder,
    pub(crate) rbuf: BytesMut,
}

impl Conn {
    /// Connects, sends `connect`, and returns the CONNACK.
    pub(crate) async fn open(
        addr: SocketAddr,
        connect: Connect,
    ) -> Result<(Conn, ConnAck), String> {
        let version = connect.protocol;
        let opening = async {
            let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .set_recv_buffer_size(RECV_BUFFER)
                .map_err(|e| e.to_string())?;
            let stream = socket
                .connect(addr)
                .await
                .map_err(|e| format!("TCP connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut conn = Conn {
                stream,
                version,
                decoder: Decoder::client(version),
                rbuf: BytesMut::with_capacity(4096),
            };
            conn.send(&[Packet::Connect(Box::new(connect))])
                .await
                .map_err(|e| format!("sending CONNECT: {e}"))?;
            match conn.recv().await? {
                Packet::ConnAck(ack) => Ok((conn, *ack)),
                other => Err(format!("expected CONNACK, got {other:?}")),
            }
        };
        tokio::time::timeout(IO_TIMEOUT, opening)
            .await
            .map_err(|_| format!("no CONNACK within {IO_TIMEOUT:?}"))?
    }

    pub(crate) async fn send(&mut self, packets: &[Packet]) -> std::io::Result<()> {
        if packets.is_empty() {
            return Ok(());
        }
        let mut buf = BytesMut::new();
        for packet in packets {
            packet
                .encode(self.version, &mut buf)
                .expect("packet encodes");
        }
        self.stream.write_all(&buf).await
    }

    /// The next packet. Cancel-safe: bytes read stay in `rbuf`.
    pub(crate) async fn recv(&mut self) -> Result<Packet, String> {
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable bytes from the broker: {e}")),
            }
            match self.stream.read_buf(&mut self.rbuf).await {
                Ok(0) => return Err("closed by the broker".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Sends DISCONNECT and closes the connection gracefully: FIN, then what the broker
    /// still sends is read until it closes too (closing a socket with unread bytes would
    /// send a RST, which may overtake the DISCONNECT).
    pub(crate) async fn disconnect(mut self) -> Result<(), String> {
        let bye = Packet::Disconnect(Disconnect::default());
        self.send(&[bye]).await.map_err(|e| e.to_string())?;
        self.stream.shutdown().await.map_err(|e| e.to_string())?;
        let mut sink = [0; 4096];
        let closing = async {
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, closing)
            .await
            .map_err(|_| "the broker did not close the connection".to_string())?
    }

    /// Closes the connection without DISCONNECT, as `cut` says.
    pub(crate) async fn cut(mut self, cut: Cut, rng: &mut Rng) {
        match cut {
            Cut::Close | Cut::TakeOver | Cut::Hang => {}
            Cut::Reset => {
                let _ = self.stream.set_zero_linger();
            }
            Cut::Torn => {
                // A PUBLISH that never completes: the broker must route nothing of it.
                let mut publish = Publish::new(
                    TopicName::new("soak/torn").expect("valid topic"),
                    Bytes::from_static(&[b'x'; 64]),
                );
                publish.qos = QoS::AtLeastOnce;
                publish.packet_id = PacketId::new(u16::MAX);
                let mut buf = BytesMut::new();
                Packet::Publish(publish)
                    .encode(self.version, &mut buf)
                    .expect("packet encodes");
                let keep = 1 + rng.below(buf.len() - 1);
                let _ = self.stream.write_all(&buf[..keep]).await;
            }
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum Ending {
    Cut(Chaos),
    Unexpected(String),
    Done,
}

/// Runs one client until its role is done: connects, serves the connection, and
/// reconnects after each cut, resuming its session.
pub(crate) async fn drive<R: Role>(
    ctx: Arc<Ctx>,
    role: Arc<Mutex<R>>,
    mut cuts: mpsc::Receiver<Chaos>,
    mut phase: watch::Receiver<Phase>,
    mut rng: Rng,
) {
    let name = lock(&role).name().to_owned();
    // The connection a take-over replaces: closed once the new one has its CONNACK.
    let mut replaced: Option<Conn> = None;
    let mut attempt = 0;
    loop {
        if lock(&role).done(*phase.borrow()) {
            return;
        }
        attempt += 1;
        let mut connect = lock(&role).connect_packet();
        if R::WILL {
            connect.will = Some(will(&name, attempt));
        }
        let (mut conn, ack) = match Conn::open(ctx.addr, connect).await {
            Ok(opened) => opened,
            Err(e) => {
                ctx.fail(format!("{name}: {e}"));
                lock(&role).conn_stats().unexpected += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        drop(replaced.take());
        let first = lock(&role).on_connack(&ack);
        let ending = match first {
            Err(e) => {
                ctx.fail(e);
                Ending::Unexpected("bad CONNACK".into())
            }
            Ok(out) => match conn.send(&out).await {
                Err(e) => Ending::Unexpected(format!("write error: {e}")),
                Ok(()) => serve(&ctx, &role, &mut conn, &mut cuts, &mut phase).await,
            },
        };
        match ending {
            Ending::Done => {
                if let Err(e) = conn.disconnect().await {
                    ctx.fail(format!("{name}: DISCONNECT: {e}"));
                }
                lock(&role).conn_stats().disconnected = Some(attempt);
                return;
            }
            Ending::Unexpected(why) => {
                ctx.fail(format!("{name}: connection lost without a cut: {why}"));
                lock(&role).conn_stats().unexpected += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ending::Cut(chaos) => {
                let index = CUTS.iter().position(|&c| c == chaos.cut).expect("a cut");
                lock(&role).conn_stats().cuts[index] += 1;
                let key = format!("{name}:{attempt}");
                replaced = cut(&ctx, conn, chaos, &key, &mut rng).await;
            }
        }
    }
}

/// Carries out `chaos` on connection `key` (`NAME:n`, as its will says); returns the
/// connection if a take-over is to replace it.
async fn cut(ctx: &Ctx, conn: Conn, chaos: Chaos, key: &str, rng: &mut Rng) -> Option<Conn> {
    match chaos.cut {
        Cut::TakeOver => return Some(conn),
        Cut::Hang => {
            // The broker's closing shows as the will of this connection.
            let closed = wait_until(HANG_LIMIT, || lock(&ctx.wills).contains(key)).await;
            if !closed {
                ctx.fail(format!(
                    "{key}: silent for {HANG_LIMIT:?} with keep alive {KEEP_ALIVE} s, and the \
                     broker has not closed the connection (no will)"
                ));
            }
        }
        Cut::Close | Cut::Reset | Cut::Torn => {
            conn.cut(chaos.cut, rng).await;
            tokio::time::sleep(chaos.away).await;
        }
    }
    None
}

/// Serves one connection until it is cut, lost, or the role is done.
pub(crate) async fn serve<R: Role>(
    ctx: &Ctx,
    role: &Mutex<R>,
    conn: &mut Conn,
    cuts: &mut mpsc::Receiver<Chaos>,
    phase: &mut watch::Receiver<Phase>,
) -> Ending {
    enum Event {
        Cut(Option<Chaos>),
        CutNow,
        Phase,
        Packet(Result<Packet, String>),
        Timer,
    }
    let mut cuts_open = true;
    let mut cutting: Option<(tokio::time::Instant, Chaos)> = None;
    let mut last_sent = now();
    loop {
        let current = *phase.borrow();
        let timer = {
            let role = lock(role);
            if role.done(current) {
                return Ending::Done;
            }
            role.next_timer(current)
        };
        let ping_at = last_sent + PING_IDLE;
        let wake = tokio::time::Instant::from_std(timer.map_or(ping_at, |t| t.min(ping_at)));
        let cut_at = cutting.map_or(wake, |(at, _)| at);
        // A client that stalls before its cut stops reading.
        let reading = !cutting.is_some_and(|(_, c)| c.stall);
        let event = tokio::select! {
            biased;
            () = tokio::time::sleep_until(cut_at), if cutting.is_some() => Event::CutNow,
            cut = cuts.recv(), if cuts_open && cutting.is_none() => Event::Cut(cut),
            changed = phase.changed() => {
                if changed.is_err() {
                    return Ending::Done;
                }
                Event::Phase
            }
            packet = conn.recv(), if reading => Event::Packet(packet),
            () = tokio::time::sleep_until(wake) => Event::Timer,
        };
        let mut out = Vec::new();
        match event {
            Event::Cut(Some(chaos)) => {
                lock(role).on_cut(current, &mut out);
                let at = tokio::time::Instant::from_std(now() + chaos.after);
                cutting = Some((at, chaos));
            }
            Event::CutNow => {
                let (_, chaos) = cutting.expect("a cut is due");
                return Ending::Cut(chaos);
            }
            Event::Cut(None) => cuts_open = false,
            Event::Phase => {}
            Event::Packet(Err(e)) => return Ending::Unexpected(e),
            Event::Packet(Ok(Packet::Disconnect(d))) => {
                return Ending::Unexpected(format!("DISCONNECT {}", d.reason_code));
            }
            Event::Packet(Ok(Packet::PingResp)) => {}
            Event::Packet(Ok(packet)) => {
                if let Err(e) = lock(role).on_packet(packet, &mut out) {
                    ctx.fail(e);
                }
            }
            Event::Timer => {
                let t = now();
                if timer.is_some_and(|at| at <= t) {
                    lock(role).on_timer(current, t, &mut out);
                }
                if out.is_empty() && t >= ping_at {
                    out.push(Packet::PingReq);
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = conn.send(&out).await {
                return Ending::Unexpected(format!("write error: {e}"));
            }
            last_sent = now();
        }
    }
}

/// Cuts a random client's connection every [`CHAOS_EVERY`] until `until`; returns the
/// number of cuts sent. In the last [`HANG_LIMIT`] no client hangs or stays away long,
/// so that the drain is short.
pub(crate) async fn chaos(targets: Vec<mpsc::Sender<Chaos>>, until: Instant, mut rng: Rng) -> u64 {
    let mut sent = 0;
    let mut tick = tokio::time::interval(CHAOS_EVERY);
    while now() < until {
        tick.tick().await;
        let ending = until.saturating_duration_since(now()) < HANG_LIMIT;
        let mut pick = rng.below(CUT_WEIGHTS.iter().sum());
        let index = CUT_WEIGHTS
            .iter()
            .position(|&w| {
                let hit = pick < w;
                pick = pick.saturating_sub(w);
                hit
            })
            .expect("within the weights");
        let cut = match CUTS[index] {
            Cut::Hang if ending => Cut::Close,
            cut => cut,
        };
        let away = match cut {
            Cut::TakeOver | Cut::Hang => Duration::ZERO,
            _ if rng.below(4) == 0 && !ending => rng.millis((500, 3000)),
            _ => rng.millis((0, 250)),
        };
        let after = match rng.below(3) {
            0 => Duration::ZERO,
            _ => rng.millis(CUT_AFTER_MS),
        };
        let stall = rng.below(2) == 0;
        let target = &targets[rng.below(targets.len())];
        let chaos = Chaos {
            cut,
            after,
            stall,
            away,
        };
        // A client still busy with its last cut skips this one.
        sent += u64::from(target.try_send(chaos).is_ok());
    }
    sent
}
