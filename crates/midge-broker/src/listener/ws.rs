//! WebSocket listeners: MQTT over WebSockets (§6 of 3.1.1 and 5.0), plain or over TLS.
//!
//! The HTTP upgrade is tokio-tungstenite's; [`accept`] checks the path (when the listener
//! has `websockets_path`) and answers the subprotocol `mqtt` (or `mqttv3.1`, which MQTT
//! 3.1 clients ask for) when the client offers it. [`WsStream`] adapts the message stream
//! to the byte stream the connection reads: MQTT packets may be split over frames and a
//! frame may hold several packets ([MQTT-6.0.0-2]), so frames are only
//! byte carriers. A text frame closes the connection ([MQTT-6.0.0-1]); pings are
//! answered by tungstenite.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::StreamBox;
use crate::config::ListenerConfig;

/// The subprotocols of MQTT over WebSockets, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The server side of the WebSocket handshake over `stream`. Frames and messages are
/// limited to `max_packet_size` (a bigger one could only carry a packet the broker
/// refuses anyway).
pub(crate) async fn accept<S: StreamBox>(
    stream: S,
    listener: &ListenerConfig,
    max_packet_size: usize,
) -> io::Result<WsStream<S>> {
    let path = listener.websockets_path.clone();
    // The Err type is tungstenite's (an HTTP response), not ours to box.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| {
        if let Some(path) = &path {
            if request.uri().path() != path {
                let mut refusal = ErrorResponse::new(Some("no MQTT at this path\n".to_string()));
                *refusal.status_mut() = StatusCode::NOT_FOUND;
                return Err(refusal);
            }
        }
        let offered = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let chosen = SUBPROTOCOLS
            .into_iter()
            .find(|ours| offered.iter().any(|p| p.eq_ignore_ascii_case(ours)));
        if let Some(chosen) = chosen {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(chosen),
            );
        }
        Ok(response)
    };
    let limits = WebSocketConfig::default()
        .max_message_size(Some(max_packet_size))
        .max_frame_size(Some(max_packet_size));
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits))
        .await
        .map_err(ws_error)?;
    Ok(WsStream {
        ws,
        read: Bytes::new(),
    })
}

/// A WebSocket connection as a byte stream: binary frames in, one binary frame per
/// write out.
#[derive(Debug)]
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary frame read.
    read: Bytes,
}

fn ws_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: StreamBox> AsyncRead for WsStream<S> {
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

impl<S: StreamBox> AsyncWrite for WsStream<S> {
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
