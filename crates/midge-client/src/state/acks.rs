//! Acknowledgements of our requests: PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK. Each
//! ends (or moves on) a flow in `outbound`, completes its request and makes room for
//! what waits.

use midge_codec::{Ack, Packet, Publish, QoS, ReasonCode, SubAck, UnsubAck};

use super::outbound::{Flow, Stage};
use super::{ClientState, Completion, Granted, Published};
use crate::error::ClientError;

impl<T> ClientState<T> {
    pub(super) fn handle_puback(&mut self, ack: Ack) {
        let id = ack.packet_id;
        if !matches!(
            self.outbound.get_mut(id),
            Some(Flow::Publish {
                publish: Publish {
                    qos: QoS::AtLeastOnce,
                    ..
                },
                stage: Stage::Sent,
                ..
            })
        ) {
            return tracing::debug!(packet_id = id.get(), "PUBACK for no QoS 1 flow: ignored");
        }
        if let Some(Flow::Publish { token, .. }) = self.outbound.remove(id) {
            let result = ack_result(ack, None);
            self.complete(token, result);
        }
        self.pump();
    }

    /// PUBREC: a failure ends the flow ([MQTT-4.4.0-2]); success moves it on to PUBREL
    /// ([MQTT-4.3.3-4]). A PUBREC for no flow gets a PUBREL with 0x92 in 5.0.
    pub(super) fn handle_pubrec(&mut self, ack: Ack) {
        let id = ack.packet_id;
        let rejected = ack.reason_code.is_error();
        match self.outbound.get_mut(id) {
            Some(Flow::Publish {
                publish:
                    Publish {
                        qos: QoS::ExactlyOnce,
                        ..
                    },
                stage,
                ..
            }) => match stage {
                Stage::Sent if rejected => {
                    if let Some(Flow::Publish { token, .. }) = self.outbound.remove(id) {
                        self.complete(token, ack_result(ack, None));
                    }
                    self.pump();
                }
                Stage::Sent => {
                    *stage = Stage::Released(ack);
                    self.transmit.push_back(Packet::PubRel(Ack::new(id)));
                }
                // A repeated PUBREC: the PUBREL again.
                Stage::Released(_) => self.transmit.push_back(Packet::PubRel(Ack::new(id))),
            },
            _ => {
                let mut rel = Ack::new(id);
                if self.version().is_v5() {
                    rel.reason_code = ReasonCode::PacketIdentifierNotFound;
                }
                self.transmit.push_back(Packet::PubRel(rel));
            }
        }
    }

    pub(super) fn handle_pubcomp(&mut self, ack: Ack) {
        let id = ack.packet_id;
        if !matches!(
            self.outbound.get_mut(id),
            Some(Flow::Publish {
                stage: Stage::Released(_),
                ..
            })
        ) {
            return tracing::debug!(packet_id = id.get(), "PUBCOMP for no PUBREL: ignored");
        }
        if let Some(Flow::Publish {
            stage: Stage::Released(rec),
            token,
            ..
        }) = self.outbound.remove(id)
        {
            let result = ack_result(rec, Some(ack));
            self.complete(token, result);
        }
        self.pump();
    }

    pub(super) fn handle_suback(&mut self, ack: SubAck) {
        let id = ack.packet_id;
        if !matches!(self.outbound.get_mut(id), Some(Flow::Subscribe { .. })) {
            return tracing::debug!(packet_id = id.get(), "SUBACK for no SUBSCRIBE: ignored");
        }
        if let Some(Flow::Subscribe {
            filters,
            properties,
            token,
        }) = self.outbound.remove(id)
        {
            for ((filter, options), code) in filters.into_iter().zip(&ack.reason_codes) {
                if !code.is_error() {
                    let granted = Granted {
                        options,
                        id: properties.subscription_identifier,
                        user_properties: properties.user_properties.clone(),
                    };
                    self.subscriptions.insert(filter, granted);
                }
            }
            self.complete_opt(token, Ok(Completion::Subscribed(ack)));
        }
        self.pump();
    }

    pub(super) fn handle_unsuback(&mut self, ack: UnsubAck) {
        let id = ack.packet_id;
        if !matches!(self.outbound.get_mut(id), Some(Flow::Unsubscribe { .. })) {
            return tracing::debug!(packet_id = id.get(), "UNSUBACK for no UNSUBSCRIBE: ignored");
        }
        if let Some(Flow::Unsubscribe { filters, token, .. }) = self.outbound.remove(id) {
            for (i, filter) in filters.iter().enumerate() {
                // 3.x UNSUBACKs carry no codes: every filter is gone.
                if ack.reason_codes.get(i).is_none_or(|c| !c.is_error()) {
                    self.subscriptions.remove(filter);
                }
            }
            self.complete_opt(token, Ok(Completion::Unsubscribed(ack)));
        }
        self.pump();
    }
}

/// The result of a publication from its PUBACK/PUBREC (and PUBCOMP): a reason code of
/// 0x80 or more is a rejection.
fn ack_result(ack: Ack, complete: Option<Ack>) -> Result<Completion, ClientError> {
    if ack.reason_code.is_error() {
        return Err(ClientError::rejected(
            ack.reason_code,
            ack.properties.reason_string.as_deref(),
        ));
    }
    Ok(Completion::Published(Published {
        ack: Some(ack),
        complete,
    }))
}
