//! The adapter between two in-memory ends of a WebSocket connection: `ours` is the
//! [`WsStream`] under test, `peer` a plain tungstenite stream that sends and receives
//! frames as a broker or client on the other side would.

use std::io;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::*;

/// A CONNECT of MQTT 3.1.1 (client id "a"): 15 bytes.
const CONNECT: &[u8] = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01a";
/// A PINGREQ.
const PINGREQ: &[u8] = b"\xc0\x00";

async fn pair_with(max_message: usize) -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let ours = WebSocketStream::from_raw_socket(a, Role::Server, Some(config(max_message))).await;
    let peer = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
    (WsStream::new(ours), peer)
}

async fn pair() -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    pair_with(1024).await
}

async fn binary(peer: &mut WebSocketStream<DuplexStream>, bytes: &[u8]) {
    peer.send(Message::Binary(Bytes::copy_from_slice(bytes)))
        .await
        .unwrap();
}

/// The packets arrive whole whichever way the frames cut them: split over frames, two
/// in one frame, or one frame holding the end of one and the start of the next.
// conformance: v5 MQTT-6.0.0-2
// conformance: v3.1.1 MQTT-6.0.0-2
#[tokio::test]
async fn bytes_are_read_across_frame_boundaries() {
    let mut wire = CONNECT.to_vec();
    wire.extend_from_slice(PINGREQ);
    let cuts: [&[usize]; 4] = [
        &[],        // both packets in one frame
        &[5],       // the CONNECT split over two frames
        &[1, 2, 3], // a frame a byte, then the rest
        &[14, 16],  // the CONNECT's last byte with the PINGREQ's first
    ];
    for cut in cuts {
        let (mut ours, mut peer) = pair().await;
        let mut start = 0;
        for &end in cut.iter().chain([wire.len()].iter()) {
            binary(&mut peer, &wire[start..end]).await;
            start = end;
        }
        let mut read = vec![0; wire.len()];
        ours.read_exact(&mut read).await.unwrap();
        assert_eq!(read, wire, "cut at {cut:?}");
    }
}

/// A read into a buffer smaller than the frame takes what fits and leaves the rest for
/// the next read.
#[tokio::test]
async fn a_frame_is_read_in_pieces_into_a_small_buffer() {
    let (mut ours, mut peer) = pair().await;
    binary(&mut peer, CONNECT).await;
    let mut piece = [0; 4];
    let mut read = Vec::new();
    while read.len() < CONNECT.len() {
        let n = ours.read(&mut piece).await.unwrap();
        assert!(n > 0 && n <= piece.len(), "{n}");
        read.extend_from_slice(&piece[..n]);
    }
    assert_eq!(read, CONNECT);
}

/// Pings and pongs carry no MQTT: the bytes around them are read as if they were not
/// there, and a ping is answered.
#[tokio::test]
async fn pings_and_pongs_are_passed_over() {
    let (mut ours, mut peer) = pair().await;
    binary(&mut peer, &CONNECT[..3]).await;
    peer.send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    peer.send(Message::Pong(Bytes::new())).await.unwrap();
    binary(&mut peer, &CONNECT[3..]).await;
    let mut read = vec![0; CONNECT.len()];
    ours.read_exact(&mut read).await.unwrap();
    assert_eq!(read, CONNECT);
    // tungstenite queues the pong and sends it with the next write.
    ours.write_all(PINGREQ).await.unwrap();
    ours.flush().await.unwrap();
    assert_eq!(
        peer.next().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"p"))
    );
    assert_eq!(
        peer.next().await.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(PINGREQ))
    );
}

/// A text frame is an error that closes the connection.
// conformance: v5 MQTT-6.0.0-1
// conformance: v3.1.1 MQTT-6.0.0-1
#[tokio::test]
async fn a_text_frame_is_an_error() {
    let (mut ours, mut peer) = pair().await;
    peer.send(Message::text("{}")).await.unwrap();
    let e = ours.read(&mut [0; 16]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("[MQTT-6.0.0-1]"), "{e}");
}

/// A close frame is the end of the stream, after the bytes before it.
#[tokio::test]
async fn a_close_frame_is_the_end_of_the_stream() {
    let (mut ours, mut peer) = pair().await;
    binary(&mut peer, PINGREQ).await;
    peer.close(None).await.unwrap();
    let mut read = Vec::new();
    ours.read_to_end(&mut read).await.unwrap();
    assert_eq!(read, PINGREQ);
}

/// A frame over the limit of [`config`] is refused, not buffered.
#[tokio::test]
async fn a_frame_over_the_limit_is_an_error() {
    let (mut ours, mut peer) = pair_with(16).await;
    binary(&mut peer, &[0; 17]).await;
    let e = ours.read(&mut [0; 32]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
}

/// Each write is one binary frame; shutting down sends a close frame.
// conformance: v5 MQTT-6.0.0-1
// conformance: v3.1.1 MQTT-6.0.0-1
#[tokio::test]
async fn each_write_is_one_binary_frame_and_shutdown_closes() {
    let (mut ours, mut peer) = pair().await;
    ours.write_all(CONNECT).await.unwrap();
    ours.write_all(PINGREQ).await.unwrap();
    ours.flush().await.unwrap();
    for expected in [CONNECT, PINGREQ] {
        assert_eq!(
            peer.next().await.unwrap().unwrap(),
            Message::Binary(Bytes::copy_from_slice(expected))
        );
    }
    ours.shutdown().await.unwrap();
    assert!(matches!(
        peer.next().await.unwrap().unwrap(),
        Message::Close(_)
    ));
    // A second shutdown after the close is not an error.
    ours.shutdown().await.unwrap();
}

#[test]
fn tungstenite_errors_map_to_io_errors() {
    let io_error = ws_error(WsError::Io(io::ErrorKind::ConnectionReset.into()));
    assert_eq!(io_error.kind(), io::ErrorKind::ConnectionReset);
    for closed in [WsError::ConnectionClosed, WsError::AlreadyClosed] {
        assert_eq!(ws_error(closed).kind(), io::ErrorKind::BrokenPipe);
    }
    let other = ws_error(WsError::Utf8);
    assert_eq!(other.kind(), io::ErrorKind::InvalidData);
}
