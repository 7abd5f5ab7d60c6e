//! Requests from the application: publications, subscriptions, unsubscriptions. They
//! are checked, queued, and sent by `pump` as far as the connection allows (the
//! server's Receive Maximum, free packet ids), with topic aliases applied on the way out.

use midge_codec::{
    Packet, PacketId, Publish, QoS, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, Unsubscribe, UnsubscribeProperties,
};

use super::outbound::{Control, Flow, Stage};
use super::{ClientState, Completion, Phase, Published};
use crate::error::ClientError;

impl<T> ClientState<T> {
    /// Publishes a message. Its packet id, DUP flag and topic alias are the client's to
    /// set and are replaced. Completes when the flow does: at once for QoS 0 (once
    /// queued for the transport), on PUBACK for QoS 1, on PUBCOMP for QoS 2.
    pub fn publish(&mut self, mut publish: Publish, token: T) {
        if self.phase == Phase::Closed {
            return self.complete(token, Err(ClientError::closed()));
        }
        publish.dup = false;
        publish.packet_id = None;
        if let Some(set) = publish.properties.existing_mut() {
            set.topic_alias = None;
        }
        if let Err(e) = self.check_publish(&publish) {
            return self.complete(token, Err(e));
        }
        self.outbound.pending_publish.push_back((publish, token));
        self.pump();
    }

    /// What makes a publication invalid whatever the server.
    fn check_publish(&self, publish: &Publish) -> Result<(), ClientError> {
        if publish.topic.is_empty() {
            return Err(ClientError::invalid(
                "a topic name must not be empty ([MQTT-4.7.3-1]); aliases are set by the client",
            ));
        }
        if !publish.properties.subscription_identifiers.is_empty() {
            return Err(ClientError::invalid(
                "[MQTT-3.3.4-6] a client must not send Subscription Identifiers",
            ));
        }
        self.publish_len(publish).map(drop)
    }

    /// The encoded size of `publish` with a packet id if it needs one.
    fn publish_len(&self, publish: &Publish) -> Result<usize, ClientError> {
        let mut probe = publish.clone();
        if probe.qos != QoS::AtMostOnce {
            probe.packet_id = PacketId::new(1);
        }
        Packet::Publish(probe)
            .encoded_len(self.version())
            .map_err(ClientError::encode)
    }

    /// What the server of this connection refuses: a QoS above its Maximum QoS
    /// ([MQTT-3.2.2-11]), a retained message without Retain Available ([MQTT-3.2.2-14]),
    /// a packet over its Maximum Packet Size ([MQTT-3.2.2-15]).
    fn check_server_limits(&self, publish: &Publish) -> Result<(), ClientError> {
        if publish.qos > self.server.maximum_qos {
            return Err(ClientError::invalid(format!(
                "QoS {} is above the server's Maximum QoS {}",
                publish.qos as u8, self.server.maximum_qos as u8
            )));
        }
        if publish.retain && !self.server.retain_available {
            return Err(ClientError::invalid(
                "the server does not support retained messages",
            ));
        }
        if let Some(max) = self.server.maximum_packet_size {
            let len = self.publish_len(publish)?;
            if len > max as usize {
                return Err(ClientError::invalid(format!(
                    "the message is {len} bytes; the server's Maximum Packet Size is {max}"
                )));
            }
        }
        Ok(())
    }

    /// Subscribes to `filters`. Completes with the SUBACK.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        token: T,
    ) {
        if self.phase == Phase::Closed {
            return self.complete(token, Err(ClientError::closed()));
        }
        if let Err(e) = self.check_subscribe(&filters, &properties) {
            return self.complete(token, Err(e));
        }
        self.outbound.pending_control.push_back(Control::Subscribe {
            filters,
            properties,
            token: Some(token),
        });
        self.pump();
    }

    fn check_subscribe(
        &self,
        filters: &[(TopicFilter, SubscriptionOptions)],
        properties: &SubscribeProperties,
    ) -> Result<(), ClientError> {
        if let Some((filter, _)) = filters
            .iter()
            .find(|(f, o)| o.no_local && f.is_shared() && self.version().is_v5())
        {
            return Err(ClientError::invalid(format!(
                "[MQTT-3.8.3-4] No Local on the shared subscription {filter}"
            )));
        }
        let probe = Subscribe {
            packet_id: PacketId::new(1).expect("1 is not 0"),
            filters: filters.to_vec(),
            properties: properties.clone(),
        };
        Packet::Subscribe(probe)
            .encoded_len(self.version())
            .map(drop)
            .map_err(ClientError::encode)
    }

    /// Unsubscribes from `filters`. Completes with the UNSUBACK.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
        token: T,
    ) {
        if self.phase == Phase::Closed {
            return self.complete(token, Err(ClientError::closed()));
        }
        let probe = Unsubscribe {
            packet_id: PacketId::new(1).expect("1 is not 0"),
            filters: filters.clone(),
            properties: properties.clone(),
        };
        if let Err(e) = Packet::Unsubscribe(probe).encoded_len(self.version()) {
            return self.complete(token, Err(ClientError::encode(e)));
        }
        self.outbound
            .pending_control
            .push_back(Control::Unsubscribe {
                filters,
                properties,
                token: Some(token),
            });
        self.pump();
    }

    /// Sends what waits, as far as the connection allows: SUBSCRIBE and UNSUBSCRIBE
    /// first (they are never held back by the Receive Maximum, [MQTT-3.3.4-8]), then
    /// publications in order while the server's Receive Maximum has room
    /// ([MQTT-3.3.4-7], [MQTT-4.9.0-2]). QoS 0 messages behind a held-back QoS 1/2
    /// message wait too, so that order is kept ([MQTT-4.9.0-3] allows this).
    pub(super) fn pump(&mut self) {
        if self.phase != Phase::Connected {
            return;
        }
        while !self.outbound.pending_control.is_empty() {
            let Some(id) = self.outbound.free_id() else {
                break;
            };
            let control = self
                .outbound
                .pending_control
                .pop_front()
                .expect("checked not empty");
            self.send_control(id, control);
        }
        while let Some((front, _)) = self.outbound.pending_publish.front() {
            let qos = front.qos;
            if qos != QoS::AtMostOnce
                && self.outbound.publishes_in_flight() >= usize::from(self.server.receive_maximum)
            {
                break;
            }
            let (mut publish, token) = self
                .outbound
                .pending_publish
                .pop_front()
                .expect("checked not empty");
            if let Err(e) = self.check_server_limits(&publish) {
                self.complete(token, Err(e));
                continue;
            }
            if qos == QoS::AtMostOnce {
                self.send_publish(publish);
                self.complete(token, Ok(Completion::Published(Published::default())));
                continue;
            }
            let Some(id) = self.outbound.free_id() else {
                self.outbound.pending_publish.push_front((publish, token));
                break;
            };
            publish.packet_id = Some(id);
            self.send_publish(publish.clone());
            self.outbound.insert(
                id,
                Flow::Publish {
                    publish,
                    stage: Stage::Sent,
                    token,
                },
            );
        }
    }

    /// Queues a PUBLISH, with its topic replaced by an alias where possible.
    pub(super) fn send_publish(&mut self, mut publish: Publish) {
        if self.auto_topic_alias && self.version().is_v5() {
            self.aliases_out.apply(&mut publish);
        } else if let Some(set) = publish.properties.existing_mut() {
            set.topic_alias = None;
        }
        self.transmit.push_back(Packet::Publish(publish));
    }

    fn send_control(&mut self, id: PacketId, control: Control<T>) {
        let flow = match control {
            Control::Subscribe {
                filters,
                properties,
                token,
            } => {
                self.transmit.push_back(Packet::Subscribe(Subscribe {
                    packet_id: id,
                    filters: filters.clone(),
                    properties: properties.clone(),
                }));
                Flow::Subscribe {
                    filters,
                    properties,
                    token,
                }
            }
            Control::Unsubscribe {
                filters,
                properties,
                token,
            } => {
                self.transmit.push_back(Packet::Unsubscribe(Unsubscribe {
                    packet_id: id,
                    filters: filters.clone(),
                    properties: properties.clone(),
                }));
                Flow::Unsubscribe {
                    filters,
                    properties,
                    token,
                }
            }
        };
        self.outbound.insert(id, flow);
    }
}
