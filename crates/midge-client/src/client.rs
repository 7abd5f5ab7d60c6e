//! The application's side: [`Client`], a cheap-to-clone handle whose requests complete
//! when the server has acknowledged them, and [`Events`], the stream of incoming
//! messages and connection changes. Both talk over channels to the one task that owns
//! the connection (`eventloop.rs`); the protocol rules are in `state/`.

use bytes::Bytes;
use midge_codec::{
    ConnAck, Disconnect, Publish, QoS, ReasonCode, SubAck, SubscribeProperties,
    SubscriptionOptions, TopicFilter, TopicName, UnsubAck, UnsubscribeProperties,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::eventloop::EventLoop;
use crate::options::ConnectOptions;
use crate::state::{Completion, Published};

/// Requests queued between the handles and the connection task before `send` waits.
const REQUEST_CAPACITY: usize = 64;

/// Where a request's result goes.
pub(crate) type Responder = oneshot::Sender<Result<Completion, ClientError>>;

/// A request from a [`Client`] to the connection task.
#[derive(Debug)]
pub(crate) enum Request {
    Publish(Publish, Responder),
    Subscribe(
        Vec<(TopicFilter, SubscriptionOptions)>,
        SubscribeProperties,
        Responder,
    ),
    Unsubscribe(Vec<TopicFilter>, UnsubscribeProperties, Responder),
    Reauthenticate(Responder),
}

/// Ends the connection: sent on its own channel, so that it overtakes requests that
/// wait for room.
#[derive(Debug)]
pub(crate) struct Close {
    pub(crate) disconnect: Disconnect,
    pub(crate) done: oneshot::Sender<()>,
}

/// Something that happened on the connection, from [`Events::recv`].
// Messages are the common event; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted a connection (the first, or a reconnect): its CONNACK.
    /// `session_present` says whether the session was resumed.
    Connected(Box<ConnAck>),
    /// An application message arrived. Its topic alias is resolved; QoS 1 and 2
    /// messages have already been acknowledged, and a QoS 2 message comes once.
    Message(Publish),
    /// The connection was lost; why. A reconnect follows if the policy allows; otherwise
    /// the stream ends after this event.
    Disconnected(ClientError),
}

/// The stream of [`Event`]s: messages and connection changes, in order.
///
/// Read it steadily. A QoS 1 or 2 message is acknowledged to the server only once it is
/// in this stream, so an application that falls behind holds the server back (it sends
/// no more than its in-flight window unacknowledged) while requests and keep alive go
/// on. QoS 0 messages and connection changes are dropped once the stream is full and
/// `event_capacity` more wait behind it. Dropping the stream discards every later
/// message. The stream ends (`None`) when the client is closed.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next application message, skipping other events; `None` once the client is
    /// closed.
    pub async fn recv_message(&mut self) -> Option<Publish> {
        loop {
            if let Event::Message(publish) = self.rx.recv().await? {
                return Some(publish);
            }
        }
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// A handle to an MQTT connection. Clone it freely: every clone talks to the same
/// connection task. When the last clone is dropped, the client disconnects normally.
///
/// Every request resolves when the server has acknowledged it, or fails with a
/// [`ClientError`]. Dropping a request's future does not withdraw it: a publication
/// already handed over is still delivered.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    close: mpsc::Sender<Close>,
}

impl Client {
    /// Connects, waits for the CONNACK, and starts the task that owns the connection
    /// (on the current tokio runtime). The first event is [`Event::Connected`].
    ///
    /// Fails if the first connection fails: a refused CONNACK, an unreachable server, a
    /// timeout. Later drops are handled by the reconnect policy.
    pub async fn connect(options: ConnectOptions) -> Result<(Client, Events), ClientError> {
        options.validate()?;
        let (requests, request_rx) = mpsc::channel(REQUEST_CAPACITY);
        let (close, close_rx) = mpsc::channel(1);
        let (event_tx, event_rx) = mpsc::channel(options.event_capacity);
        let (ready_tx, ready_rx) = oneshot::channel();
        let event_loop = EventLoop::new(options, request_rx, close_rx, event_tx);
        tokio::spawn(event_loop.run(ready_tx));
        ready_rx.await.map_err(|_| ClientError::closed())??;
        Ok((Client { requests, close }, Events { rx: event_rx }))
    }

    async fn request(
        &self,
        make: impl FnOnce(Responder) -> Request,
    ) -> Result<Completion, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| ClientError::closed())?;
        rx.await.map_err(|_| ClientError::closed())?
    }

    /// Publishes `payload` on `topic` at `qos`, not retained. Resolves once the flow is
    /// complete: for QoS 0 when handed to the connection, for QoS 1 on PUBACK, for QoS 2
    /// on PUBCOMP. While disconnected, it waits for the reconnect.
    pub async fn publish<N>(
        &self,
        topic: N,
        qos: QoS,
        payload: impl Into<Bytes>,
    ) -> Result<Published, ClientError>
    where
        N: TryInto<TopicName>,
        ClientError: From<N::Error>,
    {
        let mut publish = Publish::new(topic.try_into()?, payload);
        publish.qos = qos;
        self.publish_with(publish).await
    }

    /// Publishes a message built in full: QoS, retain, payload and every 5.0 property.
    /// Its packet id, DUP flag and topic alias are set by the client.
    pub async fn publish_with(&self, publish: Publish) -> Result<Published, ClientError> {
        match self.request(|r| Request::Publish(publish, r)).await? {
            Completion::Published(done) => Ok(done),
            _ => Err(ClientError::closed()),
        }
    }

    /// Subscribes to one filter at `qos`; returns the QoS granted, or fails with
    /// [`ClientError::is_rejected`] when the server refuses.
    pub async fn subscribe<F>(&self, filter: F, qos: QoS) -> Result<QoS, ClientError>
    where
        F: TryInto<TopicFilter>,
        ClientError: From<F::Error>,
    {
        let filter = filter.try_into()?;
        let options = SubscriptionOptions::new(qos);
        let ack = self
            .subscribe_with(vec![(filter, options)], SubscribeProperties::default())
            .await?;
        match ack.reason_codes.first() {
            Some(ReasonCode::Success) => Ok(QoS::AtMostOnce),
            Some(ReasonCode::GrantedQoS1) => Ok(QoS::AtLeastOnce),
            Some(ReasonCode::GrantedQoS2) => Ok(QoS::ExactlyOnce),
            Some(code) => Err(ClientError::rejected(
                *code,
                ack.properties.reason_string.as_deref(),
            )),
            None => Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                "[MQTT-3.8.4-6] SUBACK without a reason code",
            )),
        }
    }

    /// Subscribes to several filters, each with its 5.0 subscription options (No Local,
    /// Retain As Published, Retain Handling), with SUBSCRIBE properties (Subscription
    /// Identifier, user properties). Returns the SUBACK: one reason code per filter,
    /// refusals included.
    pub async fn subscribe_with(
        &self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<SubAck, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::invalid("SUBSCRIBE needs at least one filter"));
        }
        match self
            .request(|r| Request::Subscribe(filters, properties, r))
            .await?
        {
            Completion::Subscribed(ack) => Ok(ack),
            _ => Err(ClientError::closed()),
        }
    }

    /// Unsubscribes from one filter. A 5.0 "No subscription existed" is not an error.
    pub async fn unsubscribe<F>(&self, filter: F) -> Result<(), ClientError>
    where
        F: TryInto<TopicFilter>,
        ClientError: From<F::Error>,
    {
        let ack = self
            .unsubscribe_with(vec![filter.try_into()?], UnsubscribeProperties::default())
            .await?;
        match ack.reason_codes.first() {
            Some(code) if code.is_error() => Err(ClientError::rejected(
                *code,
                ack.properties.reason_string.as_deref(),
            )),
            _ => Ok(()),
        }
    }

    /// Unsubscribes from several filters with UNSUBSCRIBE properties; returns the
    /// UNSUBACK (5.0: one reason code per filter; 3.x: none).
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<UnsubAck, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::invalid(
                "UNSUBSCRIBE needs at least one filter",
            ));
        }
        match self
            .request(|r| Request::Unsubscribe(filters, properties, r))
            .await?
        {
            Completion::Unsubscribed(ack) => Ok(ack),
            _ => Err(ClientError::closed()),
        }
    }

    /// Re-authenticates on the live connection (5.0, §4.12.1): sends AUTH
    /// Re-authenticate with the [`crate::Authenticator`]'s first data, answers the
    /// server's challenges, and resolves with the server's AUTH Success. Other requests
    /// go on meanwhile. Fails with [`ClientError::is_invalid`] without an authenticator
    /// or on MQTT 3.x, with [`ClientError::is_auth`] when the authenticator gives up
    /// (the client then disconnects), and with the server's DISCONNECT when it refuses.
    pub async fn reauthenticate(&self) -> Result<midge_codec::Auth, ClientError> {
        match self.request(Request::Reauthenticate).await? {
            Completion::Reauthenticated(auth) => Ok(*auth),
            _ => Err(ClientError::closed()),
        }
    }

    /// Disconnects normally (the server discards the will) and closes the client:
    /// requests still waiting or in flight fail with [`ClientError::is_closed`].
    /// Resolves once the DISCONNECT is written and the connection closed.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(Disconnect::default()).await
    }

    /// Disconnects with a DISCONNECT of your own (5.0): a reason code such as
    /// [`ReasonCode::DisconnectWithWillMessage`], a new Session Expiry Interval, user
    /// properties. Closing an already closed client succeeds.
    pub async fn disconnect_with(&self, disconnect: Disconnect) -> Result<(), ClientError> {
        let (done, wait) = oneshot::channel();
        if self.close.send(Close { disconnect, done }).await.is_ok() {
            // The task answers when it has finished; if it is already gone, so is the
            // connection.
            let _ = wait.await;
        }
        Ok(())
    }

    /// Whether the client is closed: disconnected, or given up reconnecting.
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}
