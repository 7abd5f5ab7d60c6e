//! Retained messages: the last retained message of each topic, delivered to new
//! subscriptions ([MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use midge_codec::topic_matches;

use crate::message::Message;

/// Retained messages by topic.
#[derive(Debug, Default)]
pub struct RetainedStore {
    messages: HashMap<Box<str>, Arc<Message>>,
}

impl RetainedStore {
    /// Stores `message` as the retained message of its topic, or removes the topic's
    /// retained message when the payload is empty ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
    pub fn store(&mut self, message: Arc<Message>) {
        if message.payload.is_empty() {
            self.messages.remove(message.topic.as_str());
        } else {
            self.messages.insert(message.topic.as_str().into(), message);
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The unexpired retained messages whose topics match `filter`, dropping expired ones.
    pub fn matching(&mut self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.messages.retain(|_, m| !m.is_expired(now));
        self.messages
            .iter()
            .filter(|(topic, _)| topic_matches(filter, topic))
            .map(|(_, m)| m.clone())
            .collect()
    }
}
