//! Deterministic tests of the client state machine: no sockets, a virtual clock
//! (STYLE.md rule 13b). Each test names the spec statements it checks. `mod.rs` holds
//! the harness; `outbound.rs` our requests and their flows, `inbound.rs` messages from
//! the server, `session.rs` connections, sessions and keep alive.

mod auth;
mod inbound;
mod outbound;
mod session;

use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_codec::{
    ConnAck, Packet, PacketId, Publish, QoS, SubscriptionOptions, TopicFilter, TopicName,
};

use super::{ClientState, Completion, Output, Published};
use crate::ConnectOptions;

/// A state and a virtual clock.
struct Harness {
    state: ClientState<u32>,
    now: Instant,
    /// Outputs taken out while looking for `Connected`, handed out by `outputs` next.
    stash: Vec<Output<u32>>,
}

impl Harness {
    fn new(options: ConnectOptions) -> Self {
        Harness {
            state: ClientState::new(&options),
            now: origin(),
            stash: Vec::new(),
        }
    }

    fn v5() -> Self {
        Harness::new(ConnectOptions::new().client_id("c"))
    }

    /// A 5.0 client whose session outlives its connections.
    fn persistent() -> Self {
        Harness::new(
            ConnectOptions::new()
                .client_id("c")
                .session_expiry_interval(300),
        )
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Opens a transport and returns the CONNECT sent.
    fn start(&mut self) -> midge_codec::Connect {
        self.state.connect(self.now).unwrap();
        match self.sent().as_slice() {
            [Packet::Connect(c)] => (**c).clone(),
            other => panic!("expected CONNECT, got {other:?}"),
        }
    }

    /// Connects with `ack`; returns what was sent after the CONNACK.
    fn connect_with(&mut self, ack: ConnAck) -> Vec<Packet> {
        self.start();
        self.recv(Packet::ConnAck(Box::new(ack))).unwrap();
        assert!(self.state.is_connected());
        let outputs = self.outputs();
        let before = outputs.len();
        self.stash = outputs
            .into_iter()
            .filter(|o| !matches!(o, Output::Connected(_)))
            .collect();
        assert_eq!(self.stash.len() + 1, before, "one Connected output");
        self.sent()
    }

    fn connect(&mut self, session_present: bool) -> Vec<Packet> {
        self.connect_with(ConnAck {
            session_present,
            ..ConnAck::default()
        })
    }

    fn recv(&mut self, packet: Packet) -> Result<(), crate::ClientError> {
        self.state.handle_packet(packet, self.now)
    }

    fn sent(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.state.poll_transmit(self.now)).collect()
    }

    fn outputs(&mut self) -> Vec<Output<u32>> {
        let mut outputs = std::mem::take(&mut self.stash);
        outputs.extend(std::iter::from_fn(|| self.state.poll_output()));
        outputs
    }

    /// The results of the requests completed since the last call, by token.
    fn completed(&mut self) -> Vec<(u32, Result<Completion, crate::ClientError>)> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Completed(token, result) => Some((token, result)),
                _ => None,
            })
            .collect()
    }

    /// Hands every message output to the "application": returns them, and acknowledges
    /// them to the state.
    fn deliver(&mut self) -> Vec<Publish> {
        let mut messages = Vec::new();
        for output in self.outputs() {
            if let Output::Message { publish, ack } = output {
                if let Some(ack) = ack {
                    self.state.handle_delivered(ack);
                }
                messages.push(publish);
            }
        }
        messages
    }

    fn publish(&mut self, topic: &str, qos: QoS, token: u32) {
        self.state.publish(message(topic, qos), token);
    }

    fn lose_connection(&mut self) {
        self.state.handle_connection_lost(self.now);
        assert!(!self.state.is_connected());
    }
}

/// The virtual clock's origin: the one reading of the real clock in these tests; time
/// then moves only by `Harness::advance`.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn message(topic: &str, qos: QoS) -> Publish {
    let mut p = Publish::new(
        TopicName::new(topic).unwrap(),
        Bytes::from(topic.to_owned()),
    );
    p.qos = qos;
    p
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn only_publish(packets: Vec<Packet>) -> Publish {
    match packets.as_slice() {
        [Packet::Publish(p)] => p.clone(),
        other => panic!("expected one PUBLISH, got {other:?}"),
    }
}

fn published(result: &Result<Completion, crate::ClientError>) -> &Published {
    match result {
        Ok(Completion::Published(p)) => p,
        other => panic!("expected a publication result, got {other:?}"),
    }
}

fn filter(f: &str) -> (TopicFilter, SubscriptionOptions) {
    (
        TopicFilter::new(f).unwrap(),
        SubscriptionOptions::new(QoS::AtLeastOnce),
    )
}
