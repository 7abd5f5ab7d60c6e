//! The TCP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Shared;
use crate::connection;

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

/// Accepts connections until shutdown, then waits for the connections to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let permit = match &shared.connection_permits {
                        Some(permits) => match permits.clone().try_acquire_owned() {
                            Ok(permit) => Some(permit),
                            Err(_) => {
                                tracing::info!(%peer, "connection refused: max_connections reached");
                                continue;
                            }
                        },
                        None => None,
                    };
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        connection::run(stream, peer, shared, shutdown).await;
                        // The permit is released when the connection ends (rule 7).
                        drop(permit);
                    });
                }
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}
