//! An async MQTT client for MQTT 3.1, 3.1.1 and 5.0, built on `midge-codec` (the same
//! codec as the Midge broker) around a sans-I/O state machine.
//!
//! [`Client::connect`] opens the connection and spawns the one task that owns it. It
//! returns a [`Client`] handle, cheap to clone, whose requests resolve when the server
//! has acknowledged them (a QoS 2 publication on its PUBCOMP), and an [`Events`] stream
//! of incoming messages and connection changes. When the connection drops, the client
//! reconnects with exponential backoff, resumes the session and resends what was in
//! flight; requests made meanwhile wait and go out on the new connection.
//!
//! What it does, in MQTT terms: QoS 0, 1 and 2 both ways (a QoS 2 message is delivered
//! once); Receive Maximum both ways (publications beyond the server's wait, in order);
//! topic aliases both ways (outgoing ones assigned automatically); keep alive with
//! PINGREQ and a PINGRESP deadline; the will; every MQTT 5.0 property, through the
//! `midge-codec` types ([`Publish`], [`SubscriptionOptions`], the `*Properties`
//! structs, [`ReasonCode`]); the Server Keep Alive, Assigned Client Identifier, Maximum
//! QoS, Retain Available and Maximum Packet Size of the CONNACK; enhanced
//! authentication (AUTH challenges and re-authentication, through an [`Authenticator`]);
//! a packet log ([`ConnectOptions::observe_packets`]); a SOCKS5 proxy. Transports: TCP,
//! TLS ([`ConnectOptions::tls`] with [`TlsOptions`]: CA file or directory, the system's
//! store, client certificates, minimum version, ALPN), MQTT over WebSockets
//! ([`ConnectOptions::websocket`], `ws://`, or `wss://` with TLS), and Unix domain
//! sockets ([`ConnectOptions::unix_socket`]); reconnecting works over each. Not yet:
//! following a Server Reference.
//!
//! # Layout
//! - [`state`]: the sans-I/O core, [`ClientState`]: packet ids, flows, Receive Maximum,
//!   topic aliases, keep-alive deadlines. It takes `now` and never reads a clock or a
//!   socket; its tests drive it with a virtual clock.
//! - `eventloop.rs`: the tokio task around it: read → decode → state → encode → one
//!   batched write; reconnect with backoff. The only code that reads the clock.
//! - `client.rs`: [`Client`], [`Events`], [`Event`].
//! - `options.rs`: [`ConnectOptions`], [`ReconnectPolicy`], [`PacketObserver`].
//! - `auth.rs`: [`Authenticator`], the application's enhanced authentication method.
//! - `socks.rs`: the SOCKS5 handshake, for [`ConnectOptions::socks5_proxy`].
//! - `transport.rs`: the byte stream under the MQTT bytes: TCP or Unix socket, then TLS
//!   (rustls, ring provider) and the WebSocket handshake, as the options say.
//! - `error.rs`: [`ClientError`], opaque, queried with `is_*()`.
//!
//! # Example
//! ```
//! use midge_client::{Client, ConnectOptions, Event};
//! use midge_codec::QoS;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let broker = midge_broker::Broker::start(midge_broker::Config::local_ephemeral()).await.unwrap();
//! # let addr = broker.local_addr();
//! let (client, mut events) = Client::connect(ConnectOptions::new().server(addr)).await?;
//! assert!(matches!(events.recv().await, Some(Event::Connected(_))));
//!
//! client.subscribe("sensors/+/temp", QoS::AtLeastOnce).await?;
//! let done = client.publish("sensors/1/temp", QoS::ExactlyOnce, "21.5").await?;
//! assert!(done.complete.is_some()); // the PUBCOMP arrived
//!
//! let message = events.recv_message().await.unwrap();
//! assert_eq!(message.topic.as_str(), "sensors/1/temp");
//! assert_eq!(&message.payload[..], b"21.5");
//! client.disconnect().await?;
//! # broker.shutdown().await;
//! # Ok::<(), midge_client::ClientError>(())
//! # }).unwrap();
//! ```
//!
//! The state machine on its own, with no socket and no clock:
//! ```
//! use std::time::Instant;
//! use midge_client::{ClientState, ConnectOptions, state::Output};
//! use midge_codec::{ConnAck, Packet, Publish, QoS, TopicName, PacketId, Ack};
//!
//! let mut state = ClientState::new(&ConnectOptions::new());
//! let now = Instant::now();
//! state.connect(now).unwrap();
//! assert!(matches!(state.poll_transmit(now), Some(Packet::Connect(_))));
//! state.handle_packet(Packet::ConnAck(Box::default()), now).unwrap();
//!
//! let mut publish = Publish::new(TopicName::new("a/b").unwrap(), "hi");
//! publish.qos = QoS::AtLeastOnce;
//! state.publish(publish, "my token");
//! let Some(Packet::Publish(sent)) = state.poll_transmit(now) else { panic!() };
//! state.handle_packet(Packet::PubAck(Ack::new(sent.packet_id.unwrap())), now).unwrap();
//! # assert!(matches!(state.poll_output(), Some(Output::Connected(_))));
//! assert!(matches!(state.poll_output(), Some(Output::Completed("my token", Ok(_)))));
//! ```
#![warn(missing_docs)]

mod auth;
mod client;
mod error;
mod eventloop;
mod options;
mod socks;
pub mod state;
mod transport;

pub use auth::{AuthError, Authenticator};
pub use client::{Client, Event, Events};
pub use error::ClientError;
pub use options::{ConnectOptions, Direction, PacketObserver, ReconnectPolicy};
pub use state::{ClientState, Completion, Published};
pub use transport::{TlsOptions, TlsVersion};

#[doc(no_inline)]
pub use midge_codec::{
    Disconnect, LastWill, ProtocolVersion, Publish, QoS, ReasonCode, SubscriptionOptions,
    TopicFilter, TopicName,
};
