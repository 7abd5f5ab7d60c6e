//! WebSocket listeners: MQTT over WebSockets (§6 of 3.1.1 and 5.0), plain or over TLS.
//!
//! The HTTP upgrade is tokio-tungstenite's; [`accept`] checks the path (when the listener
//! has `websockets_path`) and answers the subprotocol `mqtt` (or `mqttv3.1`, which MQTT
//! 3.1 clients ask for) when the client offers it. [`WsStream`] (midge-ws, shared with the
//! client) adapts the message stream to the byte stream the connection reads: MQTT
//! packets may be split over frames and a frame may hold several packets
//! ([MQTT-6.0.0-2]), so frames are only byte carriers. A text frame closes the connection
//! ([MQTT-6.0.0-1]); pings are answered by tungstenite.

use std::io;

use midge_ws::{WsStream, ws_error};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

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
    let limits = midge_ws::config(max_packet_size);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits))
        .await
        .map_err(ws_error)?;
    Ok(WsStream::new(ws))
}
