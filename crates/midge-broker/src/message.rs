//! The routed message: what a PUBLISH becomes once it is inside the broker.
//!
//! A [`Message`] is shared (`Arc`) between every subscriber it is routed to, so fan-out
//! copies a pointer, never the topic or the payload. Per-subscriber details (granted QoS,
//! the RETAIN flag after Retain As Published, subscription identifiers) travel beside it
//! in a [`Delivery`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use midge_codec::{PublishProperties, QoS, TopicName};

/// An application message as published, with the properties that travel with it.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic name (aliases already resolved).
    pub topic: TopicName,
    /// Payload bytes, shared with the read buffer they arrived in.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties forwarded to subscribers: payload format, content type, response
    /// topic, correlation data and user properties in order ([MQTT-3.3.2-18]). Topic
    /// alias and subscription identifiers are per connection and are cleared.
    pub properties: PublishProperties,
    /// When the Message Expiry Interval runs out, if one was set.
    pub expires_at: Option<Instant>,
    /// Client id of the publisher, for No Local ([MQTT-3.8.3-3]).
    pub origin: Option<Arc<str>>,
}

impl Message {
    /// True once the message's expiry interval has passed ([MQTT-3.3.2-5]).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whole seconds left before expiry, rounded up, for the forwarded Message Expiry
    /// Interval ([MQTT-3.3.2-6]).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS of this delivery: the minimum of the published and the granted QoS.
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers of every matching subscription ([MQTT-3.3.4-4]).
    pub subscription_ids: Vec<u32>,
    /// The shared subscription (`$share/NAME/FILTER`) this delivery came through, if
    /// any: when the member leaves the group before the message reached it, the
    /// message goes to another member (§4.8.2).
    pub shared_group: Option<Arc<str>>,
}
