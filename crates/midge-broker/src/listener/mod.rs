//! Listeners: accept loops that turn each accepted socket into a byte stream for
//! [`crate::connection::start`].
//!
//! A listener is a stack, built per connection in its own task (so that a slow
//! handshake never holds up the accept loop), bounded by the connect timeout:
//! socket (`tcp.rs`, `unix.rs`) → optional PROXY protocol header (`proxy.rs`) →
//! optional TLS (`tls.rs`) → optional WebSocket (`ws.rs`) → MQTT. What comes out is an
//! [`Accepted`]: the two halves of the stream, who the peer is, and the listener's
//! security settings.

pub(crate) mod proxy;
pub(crate) mod tcp;
pub(crate) mod tls;
#[cfg(unix)]
pub(crate) mod unix;
pub(crate) mod ws;

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::Shared;
use crate::config::{ListenerConfig, ListenerProtocol};
use crate::connection;
use crate::security::Security;

/// Who is at the other end of a connection, for log lines: an IP address and port (the
/// client's own when a PROXY protocol header said so), or a Unix socket. 16 bytes, not
/// a `SocketAddr`'s 32: every connection keeps one, parked ones too, and most peers are
/// IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Peer {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
    /// A Unix socket client: the listener's path.
    Unix(Box<Arc<Path>>),
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        match addr {
            SocketAddr::V4(addr) => Peer::V4(addr),
            SocketAddr::V6(addr) => Peer::V6(Box::new(addr)),
        }
    }
}

impl Peer {
    /// The client's IP address, for the ACL's `address` sections; a Unix socket client
    /// has none.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::V4(addr) => Some(IpAddr::V4(*addr.ip())),
            Peer::V6(addr) => Some(IpAddr::V6(*addr.ip())),
            Peer::Unix(_) => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::V4(addr) => addr.fmt(f),
            Peer::V6(addr) => addr.fmt(f),
            Peer::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The read half of a connection's byte stream, whatever the transport.
pub(crate) struct Reader(Pin<Box<dyn AsyncRead + Send>>);

/// The write half of a connection's byte stream, whatever the transport.
pub(crate) struct Writer(Pin<Box<dyn AsyncWrite + Send>>);

impl Reader {
    pub(crate) fn new(inner: impl AsyncRead + Send + 'static) -> Self {
        Reader(Box::pin(inner))
    }
}

impl Writer {
    pub(crate) fn new(inner: impl AsyncWrite + Send + 'static) -> Self {
        Writer(Box::pin(inner))
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reader")
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writer")
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }
}

/// A connection's byte stream, read and written by its one task. A plain socket stays
/// whole: no shared handle and no boxing, so an idle connection keeps less and each read
/// and write is a direct call. The other transports are split into boxed halves.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp(tokio::net::TcpStream),
    /// Plain Unix domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    /// TLS, WebSocket, a PROXY header: the halves of a stack of layers.
    Split(Reader, Writer),
    /// A plain TCP socket away while its connection is parked (`crate::parking`):
    /// nothing can be read or written.
    Parked(Detached),
}

/// The stand-in for a parked connection's socket: every read and write fails.
#[derive(Debug, Default)]
pub(crate) struct Detached;

impl Detached {
    fn error() -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "the connection's socket is parked",
        )
    }
}

impl AsyncRead for Detached {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(Detached::error()))
    }
}

impl AsyncWrite for Detached {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(Detached::error()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(Detached::error()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(Detached::error()))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Split(rd, _) => Pin::new(rd).poll_read(cx, buf),
            Transport::Parked(detached) => Pin::new(detached).poll_read(cx, buf),
        }
    }
}

impl Transport {
    /// The writing side, whatever the transport.
    fn writer(&mut self) -> Pin<&mut (dyn AsyncWrite + Send + Unpin)> {
        match self {
            Transport::Tcp(s) => Pin::new(s),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s),
            Transport::Split(_, wr) => Pin::new(wr),
            Transport::Parked(detached) => Pin::new(detached),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().writer().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().writer().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().writer().poll_shutdown(cx)
    }
}

/// Splits a buffering stream (TLS, WebSocket) into halves whose writes are not done
/// until flushed: see [`WriteThrough`].
pub(crate) fn split_buffered(stream: impl StreamBox + 'static) -> (Reader, Writer) {
    let (rd, wr) = tokio::io::split(stream);
    (Reader::new(rd), Writer::new(WriteThrough::new(wr)))
}

/// A writer whose `poll_write` completes only once the bytes are flushed to the socket.
///
/// The connection writes with `write`/`write_all` and never calls `flush`: right for a
/// TCP socket, but TLS and WebSocket streams buffer what they are given (rustls keeps
/// records it could not send yet; a WebSocket sink keeps its frame). A write that took
/// the bytes but could not flush them all returns `Pending`, remembers how many it
/// took, and reports them when called again once the flush is done. The caller must
/// call again with the same bytes, as `write_all` and the connection's flush loop do; a
/// caller that gives up instead loses nothing (the bytes are in the inner buffer) but
/// must not send them again.
#[derive(Debug)]
pub(crate) struct WriteThrough<W> {
    inner: W,
    /// Bytes taken by the inner writer and not reported yet, waiting for its flush.
    taken: Option<usize>,
}

impl<W> WriteThrough<W> {
    pub(crate) fn new(inner: W) -> Self {
        WriteThrough { inner, taken: None }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WriteThrough<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(n) = this.taken {
            ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
            this.taken = None;
            return Poll::Ready(Ok(n.min(buf.len())));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if n == 0 {
            return Poll::Ready(Ok(0));
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result.map(|()| n)),
            Poll::Pending => {
                this.taken = Some(n);
                Poll::Pending
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.taken = None;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.taken = None;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the user name of a client comes from on a TLS listener with
/// `use_identity_as_username` or `use_subject_as_username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertUsername {
    /// The listener takes the user name from the CONNECT.
    NotUsed,
    /// The listener takes it from the certificate, and the client sent none (or one
    /// without a Common Name): refused.
    Missing,
    /// The name from the client's certificate.
    Name(String),
}

/// A connection ready for MQTT.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: Transport,
    pub(crate) peer: Peer,
    /// The listener's password file, ACL and `allow_anonymous`.
    pub(crate) security: Arc<Security>,
    pub(crate) cert_username: CertUsername,
}

/// One listener's settings in force: what every connection it accepts needs.
#[derive(Debug)]
pub(crate) struct ListenerContext {
    pub(crate) config: ListenerConfig,
    /// The TLS server configuration (reloadable), for a TLS listener.
    pub(crate) tls: Option<tls::TlsServer>,
    pub(crate) security: Arc<Security>,
    /// The broker's `max_packet_size`: also the largest WebSocket frame taken.
    pub(crate) max_packet_size: usize,
}

/// An accepted socket, before PROXY, TLS and WebSocket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// A bound listening socket.
#[derive(Debug)]
pub(crate) enum Bound {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(unix::UnixListener),
}

impl Bound {
    async fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Bound::Tcp(listener) => {
                let (stream, addr) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Socket::Tcp(stream), Peer::from(addr)))
            }
            #[cfg(unix)]
            Bound::Unix(listener) => {
                let stream = listener.accept().await?;
                Ok((Socket::Unix(stream), Peer::Unix(Box::new(listener.path()))))
            }
        }
    }
}

/// What the connections of one listener share with its accept loop: the broker's
/// connection permits, and the sender whose closing tells the loop that every
/// connection has finished.
#[derive(Debug)]
pub(crate) struct Leases {
    /// The broker's connection permits (`max_connections`); `None`: no limit. A
    /// connection's permit is forgotten when taken and given back when its
    /// `connection::Lease` drops.
    pub(crate) permits: Option<Arc<tokio::sync::Semaphore>>,
    /// Dropped with the last lease (nothing is ever sent).
    _sender: mpsc::Sender<std::convert::Infallible>,
}

/// Accepts connections until shutdown, then waits for the connections to finish.
///
/// Each connection is a task of its own, not tracked one by one: each holds a lease of
/// `leases` (`connection::Lease`), and the loop knows that every connection has
/// finished when `done` sees the channel of `leases`'s sender close (nothing is ever
/// sent on it). Were this loop dropped instead (the broker's handle dropped without
/// `shutdown`), the handle's drop still closes the connections, as a shutdown does.
pub(crate) async fn accept_loop(
    bound: Bound,
    context: Arc<ListenerContext>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (sender, mut done) = mpsc::channel::<std::convert::Infallible>(1);
    let leases = Arc::new(Leases {
        permits: shared.connection_permits.clone(),
        _sender: sender,
    });
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            accepted = bound.accept() => match accepted {
                Ok((socket, peer)) => {
                    if let Some(permits) = &leases.permits {
                        match permits.try_acquire() {
                            Ok(permit) => permit.forget(),
                            Err(_) => {
                                tracing::info!(%peer, "connection refused: max_connections reached");
                                continue;
                            }
                        }
                    }
                    tokio::spawn(serve(Box::new(Incoming {
                        socket,
                        peer,
                        context: context.clone(),
                        shared: shared.clone(),
                        shutdown: shutdown.clone(),
                        lease: connection::Lease::new(leases.clone()),
                    })));
                }
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(leases);
    // No more connections: `None` once the last one has dropped its lease.
    let _ = done.recv().await;
}

/// An accepted socket, and what its connection needs.
struct Incoming {
    socket: Socket,
    peer: Peer,
    context: Arc<ListenerContext>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the connection ends, which gives its permit back (rule 7): see
    /// [`accept_loop`].
    lease: connection::Lease,
}

/// Serves an accepted socket until its connection ends. What the connection keeps
/// while open is one boxed `connection::Conn`: its opening (handshakes, CONNECT) and
/// its closing run boxed, so that the task itself stays a few words long.
async fn serve(incoming: Box<Incoming>) {
    let Incoming {
        socket,
        peer,
        context,
        shared,
        shutdown,
        lease,
    } = unbox(incoming);
    match Box::pin(start(socket, peer, context, shared, shutdown)).await {
        Some(mut conn) => {
            // Kept by the connection until it has closed, in whichever task that is (a
            // parked connection's task ends: see `crate::parking`).
            conn.set_lease(lease);
            connection::serve(conn).await;
        }
        None => drop(lease),
    }
}

/// The value of `boxed`, its box freed now rather than at the end of the caller's scope
/// (as moving out of a box in place would).
#[allow(clippy::boxed_local)] // The point: the box is dropped here.
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// Runs the handshakes (within the connect timeout, and giving way to a shutdown), then
/// reads the CONNECT: the open connection, if it gets that far.
async fn start(
    socket: Socket,
    peer: Peer,
    context: Arc<ListenerContext>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Box<connection::Conn>> {
    // Boxed: the TLS and WebSocket handshakes' state is large, and it would otherwise
    // stay part of every connection's task for its whole life.
    let establishing = Box::pin(establish(socket, peer.clone(), &context));
    let accepted = tokio::select! {
        accepted = tokio::time::timeout(shared.config.connect_timeout(), establishing) => accepted,
        _ = shutdown.changed() => return None,
    };
    match accepted {
        Ok(Ok(accepted)) => connection::start(accepted, shared, shutdown).await,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "closed: handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "closed: no handshake within the connect timeout");
            None
        }
    }
}

/// PROXY header, TLS and WebSocket handshakes, as the listener has them.
async fn establish(
    socket: Socket,
    mut peer: Peer,
    context: &ListenerContext,
) -> io::Result<Accepted> {
    let config = &context.config;
    let plain = context.tls.is_none()
        && config.protocol == ListenerProtocol::Mqtt
        && !config.proxy_protocol;
    let accepted = |stream, peer| Accepted {
        stream,
        peer,
        security: context.security.clone(),
        cert_username: CertUsername::NotUsed,
    };
    let stream: Box<dyn StreamBox> = match socket {
        // The fast paths: no lock between the halves.
        Socket::Tcp(stream) if plain => return Ok(accepted(Transport::Tcp(stream), peer)),
        #[cfg(unix)]
        Socket::Unix(stream) if plain => return Ok(accepted(Transport::Unix(stream), peer)),
        Socket::Tcp(stream) => Box::new(stream),
        #[cfg(unix)]
        Socket::Unix(stream) => Box::new(stream),
    };
    let mut stream = stream;
    if config.proxy_protocol {
        if let Some(addr) = proxy::read_header(&mut stream).await? {
            peer = Peer::from(addr);
        }
    }
    let mut cert_username = CertUsername::NotUsed;
    let stream: Box<dyn StreamBox> = match &context.tls {
        Some(tls) => {
            let (stream, username) = tls.accept(stream, config).await?;
            cert_username = username;
            Box::new(stream)
        }
        None => stream,
    };
    let (reader, writer) = match config.protocol {
        ListenerProtocol::Mqtt if context.tls.is_some() => split_buffered(stream),
        ListenerProtocol::Mqtt => {
            let (rd, wr) = tokio::io::split(stream);
            (Reader::new(rd), Writer::new(wr))
        }
        ListenerProtocol::Websockets => {
            split_buffered(ws::accept(stream, config, context.max_packet_size).await?)
        }
    };
    Ok(Accepted {
        stream: Transport::Split(reader, writer),
        peer,
        security: context.security.clone(),
        cert_username,
    })
}

/// A boxed stream: one type for every layer of the stack.
pub(crate) trait StreamBox: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> StreamBox for S {}
