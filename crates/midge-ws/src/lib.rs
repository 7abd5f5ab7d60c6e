//! MQTT over WebSockets (§6 of MQTT 3.1.1 and 5.0) as a byte stream.
//!
//! [`WsStream`] turns a tokio-tungstenite [`WebSocketStream`] into the [`AsyncRead`] +
//! [`AsyncWrite`] byte stream that MQTT connections read and write. WebSocket frames are
//! only byte carriers: a packet may be split over frames and a frame may hold several
//! packets ([MQTT-6.0.0-2]). Binary frames are read, each write is sent as one binary
//! frame, and a text frame is an error ([MQTT-6.0.0-1]). Pings are answered by
//! tungstenite.
//!
//! The handshakes differ (the broker accepts, the client connects), so they stay with the
//! callers; [`config`] and [`ws_error`] are what both use around them.
//!
//! Why a crate of its own: the broker and the client both need the adapter and neither
//! depends on the other, and `midge-codec`, the one crate both share, is kept free of
//! tokio and tungstenite.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A WebSocket configuration whose frames and messages are limited to `max_message`
/// bytes, so that a peer cannot make us buffer without bound.
pub fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// A tungstenite error as an I/O error: its own I/O errors as they are, a closed
/// connection as `BrokenPipe`, anything else (a protocol error, a frame over the limits)
/// as `InvalidData`.
pub fn ws_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// A WebSocket connection as a byte stream: binary frames in, one binary frame per
/// write out.
///
/// Reading returns the bytes of the binary frames in order, whatever their boundaries;
/// a close frame or the end of the connection is the end of the stream, and a text
/// frame is an `InvalidData` error. Writing sends each buffer as one binary frame;
/// shutting down sends a close frame.
#[derive(Debug)]
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary frame read.
    read: Bytes,
}

impl<S> WsStream<S> {
    /// The byte stream of a WebSocket connection whose handshake is done.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsStream {
            ws,
            read: Bytes::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.read.is_empty() {
                let n = self.read.len().min(buf.remaining());
                buf.put_slice(&self.read[..n]);
                self.read.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                // The end of the stream, or a close frame: end of file.
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Poll::Ready(Ok(()));
                }
                Some(Err(e)) => return Poll::Ready(Err(ws_error(e))),
                Some(Ok(Message::Binary(data))) => self.read = data,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "[MQTT-6.0.0-1] a text frame: MQTT is sent in binary frames",
                    )));
                }
                // Pings are answered by tungstenite; pongs and raw frames carry no MQTT.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(ws_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(ws_error(e))),
        }
    }
}

#[cfg(test)]
mod tests;
