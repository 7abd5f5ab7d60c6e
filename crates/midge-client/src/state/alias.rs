//! Topic aliases (MQTT 5.0 §3.3.2.3.4), both directions. Both tables live for one
//! network connection only ([MQTT-3.3.2-7]) and are reset on every CONNACK.

use std::collections::HashMap;

use midge_codec::{Publish, ReasonCode, TopicName};

use crate::error::ClientError;

/// Aliases we assign to the topics we publish to.
#[derive(Debug, Default)]
pub(super) struct OutboundAliases {
    /// The server's Topic Alias Maximum from CONNACK; 0: none allowed ([MQTT-3.3.2-9]).
    max: u16,
    /// Topic to alias, for the topics already announced on this connection.
    assigned: HashMap<TopicName, u16>,
}

impl OutboundAliases {
    /// Starts a new connection whose server accepts aliases up to `max`.
    pub(super) fn reset(&mut self, max: u16) {
        self.max = max;
        self.assigned.clear();
    }

    /// Rewrites `publish` for the wire: a topic already announced becomes an empty
    /// topic plus its alias; a new topic gets the next free alias (sent with the topic,
    /// which sets the mapping); once every alias is taken, topics go out in full. Aliases
    /// are never 0 ([MQTT-3.3.2-8]) nor above the server's maximum ([MQTT-3.3.2-9]).
    pub(super) fn apply(&mut self, publish: &mut Publish) {
        if let Some(set) = publish.properties.existing_mut() {
            set.topic_alias = None;
        }
        if self.max == 0 {
            return;
        }
        if let Some(&alias) = self.assigned.get(&publish.topic) {
            publish.topic = TopicName::default();
            publish.properties.topic_alias = Some(alias);
            return;
        }
        let next = self.assigned.len() + 1;
        if next <= usize::from(self.max) {
            // `next` fits in u16: it is at most `max`.
            let alias = next as u16;
            self.assigned.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }
}

/// Aliases the server assigns to the topics it sends us.
#[derive(Debug, Default)]
pub(super) struct InboundAliases {
    /// Our Topic Alias Maximum from CONNECT; 0: the server may send none.
    max: u16,
    /// Alias to topic, as set by the server on this connection.
    topics: HashMap<u16, TopicName>,
}

impl InboundAliases {
    /// A table accepting aliases up to `max`.
    pub(super) fn new(max: u16) -> Self {
        InboundAliases {
            max,
            topics: HashMap::new(),
        }
    }

    /// Forgets every mapping at the start of a connection ([MQTT-3.3.2-7]).
    pub(super) fn reset(&mut self) {
        self.topics.clear();
    }

    /// Resolves the alias of an incoming PUBLISH in place and removes it, so that the
    /// application always sees the topic. Fails with 0x94 for an alias of 0 or above our
    /// maximum ([MQTT-3.3.2-8], [MQTT-3.3.2-11]), and with 0x82 for an empty topic with
    /// an alias never set.
    pub(super) fn resolve(&mut self, publish: &mut Publish) -> Result<(), ClientError> {
        let Some(alias) = publish
            .properties
            .existing_mut()
            .and_then(|set| set.topic_alias.take())
        else {
            return Ok(());
        };
        if alias == 0 || alias > self.max {
            return Err(ClientError::protocol(
                ReasonCode::TopicAliasInvalid,
                format!(
                    "[MQTT-3.3.2-11] topic alias {alias} is outside 1..={}",
                    self.max
                ),
            ));
        }
        if publish.topic.is_empty() {
            match self.topics.get(&alias) {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(ClientError::protocol(
                        ReasonCode::ProtocolError,
                        format!("topic alias {alias} used before it was set (§3.3.2.3.4)"),
                    ));
                }
            }
        } else {
            self.topics.insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str) -> Publish {
        Publish::new(TopicName::new(topic).unwrap(), "x")
    }

    /// conformance: v5 MQTT-3.3.2-8
    /// conformance: v5 MQTT-3.3.2-9
    #[test]
    fn outbound_aliases_are_assigned_in_order_up_to_the_server_maximum() {
        let mut aliases = OutboundAliases::default();
        aliases.reset(2);
        let mut p = publish("a");
        aliases.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", Some(1)));
        let mut p = publish("a");
        aliases.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
        let mut p = publish("b");
        aliases.apply(&mut p);
        assert_eq!(p.properties.topic_alias, Some(2));
        let mut p = publish("c");
        aliases.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("c", None));
        // A new connection forgets them all.
        aliases.reset(0);
        let mut p = publish("a");
        p.properties.topic_alias = Some(7);
        aliases.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", None));
    }

    /// conformance: v5 MQTT-3.3.2-10
    /// conformance: v5 MQTT-3.3.2-7
    #[test]
    fn inbound_aliases_resolve_and_reject_bad_values() {
        let mut aliases = InboundAliases::new(3);
        let mut p = publish("t/1");
        p.properties.topic_alias = Some(3);
        aliases.resolve(&mut p).unwrap();
        assert_eq!(p.properties.topic_alias, None);
        let mut p = Publish::default();
        p.properties.topic_alias = Some(3);
        aliases.resolve(&mut p).unwrap();
        assert_eq!(p.topic.as_str(), "t/1");

        for bad in [0, 4] {
            let mut p = publish("t");
            p.properties.topic_alias = Some(bad);
            let e = aliases.resolve(&mut p).unwrap_err();
            assert_eq!(e.reason_code(), Some(ReasonCode::TopicAliasInvalid));
        }
        aliases.reset();
        let mut p = Publish::default();
        p.properties.topic_alias = Some(3);
        let e = aliases.resolve(&mut p).unwrap_err();
        assert_eq!(e.reason_code(), Some(ReasonCode::ProtocolError));
    }
}
