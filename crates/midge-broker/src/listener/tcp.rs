//! The TCP listening socket.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds a listening socket on `addr`. An IPv6 socket is IPv6-only (`IPV6_V6ONLY`), so
/// that `0.0.0.0:P` and `[::]:P` can both be listeners, as Mosquitto binds them for a
/// listener on every interface; otherwise as `TcpListener::bind` (`SO_REUSEADDR` on Unix,
/// a backlog of 1024).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
