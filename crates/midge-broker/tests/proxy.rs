//! PROXY protocol listeners (versions 1 and 2, raw bytes): the client address of the
//! header is the one the broker logs; the bytes after the header (MQTT, or TLS) are
//! untouched, even when they come in the same segment; a connection without a header,
//! or with a bad one, is closed without an answer.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use common::*;
use midge_codec::{Packet, ReasonCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Every log line of this test binary, for the tests that look for an address in them.
fn log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        log
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged_connect(client_id: &str) -> String {
    let log = log();
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| {
            l.contains("client connected") && l.contains(&format!("client_id={client_id} "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn start_proxied() -> midge_broker::BrokerHandle {
    log();
    let mut config = test_config();
    config.listeners[0].proxy_protocol = true;
    start_with(config).await
}

fn connect_bytes(client_id: &str) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Packet::Connect(Box::new(connect_packet(V311, client_id)))
        .encode(V311, &mut buf)
        .unwrap();
    buf.to_vec()
}

/// Sends `header` and a CONNECT in one write; the CONNACK's code, or `None` if the
/// connection is closed.
async fn connect_through(addr: SocketAddr, header: &[u8], client_id: &str) -> Option<ReasonCode> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&connect_bytes(client_id));
    stream.write_all(&bytes).await.unwrap();
    let mut client = Client::over(stream, V311);
    match client.recv_within(TIMEOUT).await {
        Recv::Packet(Packet::ConnAck(ack)) => Some(ack.reason_code),
        Recv::Closed => None,
        other => panic!("expected CONNACK or close, got {other:?}"),
    }
}

fn v2_header(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    header.extend_from_slice(addresses);
    header
}

#[tokio::test]
async fn v1_header_gives_the_logged_client_address() {
    let broker = start_proxied().await;
    let header = b"PROXY TCP4 192.0.2.10 198.51.100.2 56324 1883\r\n";
    let code = connect_through(broker.local_addr(), header, "proxy-v1").await;
    assert_eq!(code, Some(ReasonCode::Success));
    assert!(
        logged_connect("proxy-v1").contains("192.0.2.10:56324"),
        "{}",
        logged_connect("proxy-v1")
    );
    let header = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 1883\r\n";
    let code = connect_through(broker.local_addr(), header, "proxy-v1-6").await;
    assert_eq!(code, Some(ReasonCode::Success));
    assert!(logged_connect("proxy-v1-6").contains("[2001:db8::7]:4000"));
    // UNKNOWN: the socket's own address stands.
    let code = connect_through(broker.local_addr(), b"PROXY UNKNOWN\r\n", "proxy-unknown").await;
    assert_eq!(code, Some(ReasonCode::Success));
    assert!(logged_connect("proxy-unknown").contains("127.0.0.1:"));
    broker.shutdown().await;
}

#[tokio::test]
async fn v2_header_gives_the_logged_client_address() {
    let broker = start_proxied().await;
    let mut v4 = vec![192, 0, 2, 20, 198, 51, 100, 2];
    v4.extend_from_slice(&40_000u16.to_be_bytes());
    v4.extend_from_slice(&1883u16.to_be_bytes());
    // A TLV after the addresses is skipped.
    v4.extend_from_slice(&[0x04, 0x00, 0x02, 0xab, 0xcd]);
    let code = connect_through(broker.local_addr(), &v2_header(1, 0x11, &v4), "proxy-v2").await;
    assert_eq!(code, Some(ReasonCode::Success));
    assert!(
        logged_connect("proxy-v2").contains("192.0.2.20:40000"),
        "{}",
        logged_connect("proxy-v2")
    );
    // LOCAL (a health check): the socket's own address.
    let code = connect_through(broker.local_addr(), &v2_header(0, 0x00, &[]), "proxy-local").await;
    assert_eq!(code, Some(ReasonCode::Success));
    assert!(logged_connect("proxy-local").contains("127.0.0.1:"));
    broker.shutdown().await;
}

#[tokio::test]
async fn missing_or_bad_headers_close_the_connection() {
    let broker = start_proxied().await;
    let addr = broker.local_addr();
    assert_eq!(connect_through(addr, b"", "no-header").await, None);
    assert_eq!(
        connect_through(addr, b"PROXY TCP4 nonsense\r\n", "bad-v1").await,
        None
    );
    assert_eq!(
        connect_through(
            addr,
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 and more text",
            "long"
        )
        .await,
        None
    );
    assert_eq!(
        connect_through(addr, &v2_header(1, 0x11, &[1, 2, 3]), "short-v2").await,
        None
    );
    assert_eq!(
        connect_through(addr, &v2_header(7, 0x11, &[0; 12]), "bad-cmd").await,
        None
    );
    // A header cut short: closed at the connect timeout, not hanging.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PROXY TCP4 1.2").await.unwrap();
    let mut client = Client::over(stream, V311);
    assert!(matches!(client.recv_within(TIMEOUT).await, Recv::Closed));
    broker.shutdown().await;
}

/// A listener without `proxy_protocol` takes the header for a bad CONNECT.
#[tokio::test]
async fn header_on_a_plain_listener_is_refused() {
    let broker = start().await;
    let header = b"PROXY TCP4 192.0.2.10 198.51.100.2 56324 1883\r\n";
    assert_eq!(
        connect_through(broker.local_addr(), header, "plain").await,
        None
    );
    broker.shutdown().await;
}

/// PROXY header, then TLS, then MQTT.
#[tokio::test]
async fn tls_after_the_header() {
    let dir = pki::temp_dir("proxy-tls");
    let ca = pki::Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    log();
    let mut config = test_config();
    let listener = &mut config.listeners[0];
    listener.proxy_protocol = true;
    listener.certfile = Some(server.cert);
    listener.keyfile = Some(server.key);
    let broker = start_with(config).await;
    let mut tcp = TcpStream::connect(broker.local_addr()).await.unwrap();
    tcp.write_all(b"PROXY TCP4 192.0.2.30 198.51.100.2 1234 8883\r\n")
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki::ClientTls::trusting(&ca_file).config());
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS after PROXY");
    let (_client, ack) = Client::connect_over(tls, connect_packet(V5, "proxy-tls")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert!(logged_connect("proxy-tls").contains("192.0.2.30:1234"));
    broker.shutdown().await;
}
