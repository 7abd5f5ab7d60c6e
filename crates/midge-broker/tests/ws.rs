//! WebSocket and secure WebSocket listeners: MQTT over WebSockets (§6 of 3.1.1 and 5.0)
//! with tokio-tungstenite as the client, frames built by hand so that a packet split
//! over frames and several packets in one frame are both checked.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use common::*;
use futures_util::{SinkExt, StreamExt};
use midge_broker::BrokerHandle;
use midge_broker::config::ListenerProtocol;
use midge_codec::{Decoder, Packet, ProtocolVersion, QoS, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A raw MQTT-over-WebSocket client.
struct WsClient<S> {
    ws: WebSocketStream<S>,
    version: ProtocolVersion,
    decoder: Decoder,
    rbuf: BytesMut,
    /// The subprotocol the server chose.
    subprotocol: Option<String>,
}

/// Opens a WebSocket to `url` over `stream`, offering `subprotocols`.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    subprotocols: &str,
    version: ProtocolVersion,
) -> Result<WsClient<S>, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    if !subprotocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(subprotocols).unwrap(),
        );
    }
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    let subprotocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string());
    Ok(WsClient {
        ws,
        version,
        decoder: Decoder::client(version),
        rbuf: BytesMut::new(),
        subprotocol,
    })
}

async fn open_ws(
    addr: SocketAddr,
    path: &str,
    version: ProtocolVersion,
) -> WsClient<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    handshake(tcp, &format!("ws://{addr}{path}"), "mqtt", version)
        .await
        .expect("WebSocket handshake")
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsClient<S> {
    fn encode(&self, packets: &[Packet]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for packet in packets {
            packet.encode(self.version, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    /// Sends `packets` in one binary frame.
    async fn send(&mut self, packets: &[Packet]) {
        let bytes = self.encode(packets);
        self.send_frames(&[&bytes]).await;
    }

    /// Sends each chunk as its own binary frame.
    async fn send_frames(&mut self, chunks: &[&[u8]]) {
        for chunk in chunks {
            self.ws
                .send(Message::Binary(Bytes::copy_from_slice(chunk)))
                .await
                .unwrap();
        }
    }

    /// The next packet; `None` if the connection closes first.
    async fn recv(&mut self) -> Option<Packet> {
        let deadline = tokio::time::Instant::from_std(now() + TIMEOUT);
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.rbuf).unwrap() {
                return Some(packet);
            }
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a packet within the timeout")
            {
                Some(Ok(Message::Binary(data))) => self.rbuf.extend_from_slice(&data),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected WebSocket message {other:?}"),
            }
        }
    }

    async fn connect(&mut self, client_id: &str) {
        self.send(&[Packet::Connect(Box::new(connect_packet(
            self.version,
            client_id,
        )))])
        .await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

async fn start_ws(path: Option<&str>) -> BrokerHandle {
    let mut config = test_config();
    config.listeners[0].protocol = ListenerProtocol::Websockets;
    config.listeners[0].websockets_path = path.map(str::to_string);
    start_with(config).await
}

fn subscribe_packet(id: u16, f: &str) -> Packet {
    Packet::Subscribe(midge_codec::Subscribe {
        packet_id: pid(id),
        filters: vec![(
            filter(f),
            midge_codec::SubscriptionOptions::new(QoS::AtMostOnce),
        )],
        properties: Default::default(),
    })
}

/// A CONNECT split over three frames; then SUBSCRIBE, PUBLISH and PINGREQ in one frame:
/// the packets are read as a byte stream whatever the framing ([MQTT-6.0.0-2]); the
/// server answers in binary frames ([MQTT-6.0.0-1]) under the subprotocol `mqtt`
/// ([MQTT-6.0.0-4]).
/// conformance: v5 MQTT-6.0.0-1
/// conformance: v5 MQTT-6.0.0-2
/// conformance: v5 MQTT-6.0.0-4
/// conformance: v3.1.1 MQTT-6.0.0-1
/// conformance: v3.1.1 MQTT-6.0.0-2
/// conformance: v3.1.1 MQTT-6.0.0-4
#[tokio::test]
async fn packets_split_over_frames_and_packed_in_one_frame() {
    let broker = start_ws(None).await;
    for version in [V311, V5] {
        let mut client = open_ws(broker.local_addr(), "/mqtt", version).await;
        assert_eq!(client.subprotocol.as_deref(), Some("mqtt"));
        let connect = client.encode(&[Packet::Connect(Box::new(connect_packet(version, "split")))]);
        client
            .send_frames(&[&connect[..1], &connect[1..5], &connect[5..]])
            .await;
        assert!(matches!(client.recv().await, Some(Packet::ConnAck(_))));
        let mut publish = publish("ws/t", "over websockets", QoS::AtMostOnce);
        publish.packet_id = None;
        client
            .send(&[
                subscribe_packet(1, "ws/#"),
                Packet::Publish(publish),
                Packet::PingReq,
            ])
            .await;
        assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
        // The PINGRESP may overtake the message, which goes through the router.
        let (mut published, mut pong) = (false, false);
        for _ in 0..2 {
            match client.recv().await {
                Some(Packet::Publish(p)) => {
                    assert_eq!(&p.payload[..], b"over websockets");
                    published = true;
                }
                Some(Packet::PingResp) => pong = true,
                other => panic!("expected PUBLISH or PINGRESP, got {other:?}"),
            }
        }
        assert!(published && pong);
    }
    broker.shutdown().await;
}

/// WebSocket and TCP clients share one broker: messages cross transports both ways.
#[tokio::test]
async fn websocket_and_tcp_clients_exchange_messages() {
    let mut config = test_config();
    let mut ws_listener = config.listeners[0].clone();
    ws_listener.protocol = ListenerProtocol::Websockets;
    config.listeners.push(ws_listener);
    let broker = start_with(config).await;
    let (tcp_addr, ws_addr) = (broker.local_addrs()[0], broker.local_addrs()[1]);
    let mut tcp = Client::connect(tcp_addr, V5, "tcp").await;
    tcp.subscribe("x/#", QoS::AtLeastOnce).await;
    let mut ws = open_ws(ws_addr, "/", V5).await;
    ws.connect("ws").await;
    ws.send(&[subscribe_packet(1, "y/#")]).await;
    assert!(matches!(ws.recv().await, Some(Packet::SubAck(_))));
    // A payload bigger than tungstenite's default frame buffer.
    let big: &'static str = Box::leak("w".repeat(200_000).into_boxed_str());
    let mut p = publish("x/1", big, QoS::AtMostOnce);
    p.packet_id = None;
    ws.send(&[Packet::Publish(p)]).await;
    assert_eq!(tcp.recv_publish().await.payload.len(), 200_000);
    tcp.pub_msg("y/1", "to ws", QoS::AtMostOnce).await;
    match ws.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"to ws"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    broker.shutdown().await;
}

/// MQTT 3.1 clients ask for the subprotocol `mqttv3.1`.
#[tokio::test]
async fn mqttv31_subprotocol_is_accepted() {
    let broker = start_ws(None).await;
    let tcp = tokio::net::TcpStream::connect(broker.local_addr())
        .await
        .unwrap();
    let url = format!("ws://{}/mqtt", broker.local_addr());
    let mut client = handshake(tcp, &url, "mqttv3.1", V31).await.unwrap();
    assert_eq!(client.subprotocol.as_deref(), Some("mqttv3.1"));
    client.connect("v31").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn websockets_path_is_enforced_when_set() {
    let broker = start_ws(Some("/mqtt")).await;
    let tcp = tokio::net::TcpStream::connect(broker.local_addr())
        .await
        .unwrap();
    let url = format!("ws://{}/other", broker.local_addr());
    let refused = handshake(tcp, &url, "mqtt", V5).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| ())),
    }
    let mut client = open_ws(broker.local_addr(), "/mqtt", V5).await;
    client.connect("right-path").await;
    broker.shutdown().await;
}

/// A text frame is a protocol error: the connection is closed ([MQTT-6.0.0-1]).
/// conformance: v5 MQTT-6.0.0-1
/// conformance: v3.1.1 MQTT-6.0.0-1
#[tokio::test]
async fn text_frame_closes_the_connection() {
    let broker = start_ws(None).await;
    let mut client = open_ws(broker.local_addr(), "/", V5).await;
    client.connect("text").await;
    client.ws.send(Message::text("hello")).await.unwrap();
    assert!(client.recv().await.is_none());
    broker.shutdown().await;
}

/// Secure WebSockets: TLS, then the WebSocket upgrade; a client that offers ALPN
/// `http/1.1` gets it.
#[tokio::test]
async fn secure_websockets() {
    let dir = pki::temp_dir("wss");
    let ca = pki::Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let mut config = test_config();
    let listener = &mut config.listeners[0];
    listener.protocol = ListenerProtocol::Websockets;
    listener.certfile = Some(server.cert);
    listener.keyfile = Some(server.key);
    let broker = start_with(config).await;
    let tls = pki::ClientTls {
        alpn: vec![b"http/1.1".to_vec()],
        ..pki::ClientTls::trusting(&ca_file)
    };
    let stream = tls.connect(broker.local_addr()).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let url = format!("wss://localhost:{}/mqtt", broker.local_addr().port());
    let mut client = handshake(stream, &url, "mqtt", V5).await.unwrap();
    client.connect("wss").await;
    client.send(&[subscribe_packet(1, "s/#")]).await;
    assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
    let mut p = publish("s/1", "secure", QoS::AtMostOnce);
    p.packet_id = None;
    client.send(&[Packet::Publish(p)]).await;
    match client.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"secure"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    broker.shutdown().await;
}

/// A frame larger than `max_packet_size` closes the connection: it could only carry a
/// packet the broker refuses.
#[tokio::test]
async fn frame_larger_than_max_packet_size_closes_the_connection() {
    let mut config = test_config();
    config.listeners[0].protocol = ListenerProtocol::Websockets;
    config.max_packet_size = 1000;
    let broker = start_with(config).await;
    let mut client = open_ws(broker.local_addr(), "/", V5).await;
    client.connect("big-frame").await;
    client.send_frames(&[&[0u8; 2000]]).await;
    assert!(client.recv().await.is_none());
    broker.shutdown().await;
}
