//! Messages from the server: QoS 0, 1 and 2 delivery with topic aliases resolved, and
//! acknowledgement once the application has the message, so that the server's
//! in-flight window is what bounds a slow application's backlog.

use midge_codec::{Ack, Packet, PacketId, Publish, QoS, ReasonCode};

use super::{ClientState, Output, Phase};
use crate::error::ClientError;

/// Acknowledges an incoming QoS 1 or 2 message once the application has it: see
/// [`Output::Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryAck {
    /// The session the message came in; an ack from a session the server has since
    /// lost is not sent (its packet id may name another message now).
    session: u64,
    /// The message's packet id.
    packet_id: PacketId,
}

/// An incoming QoS 1 or 2 message not yet completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inbound {
    /// QoS 1, not yet delivered: a resend meanwhile is the same message.
    AtLeastOnce,
    /// QoS 2; `true` once delivered and PUBREC'd, awaiting PUBREL.
    ExactlyOnce { delivered: bool },
}

impl<T> ClientState<T> {
    /// An incoming PUBLISH: delivered, and acknowledged as its QoS asks
    /// ([MQTT-3.3.4-1]) once the application has it ([`ClientState::handle_delivered`]).
    /// A QoS 2 message is delivered once however often it is resent before its PUBREL
    /// ([MQTT-4.3.3-10]); so is a QoS 1 message resent before its PUBACK went out.
    pub(super) fn handle_publish(&mut self, mut publish: Publish) -> Result<(), ClientError> {
        if self.version().is_v5() {
            self.aliases_in.resolve(&mut publish)?;
        }
        let Some(id) = publish.packet_id else {
            self.outputs
                .push_back(Output::Message { publish, ack: None });
            return Ok(());
        };
        match (publish.qos, self.inbound.get(&id.get())) {
            // Already here and not yet acknowledged: its acknowledgement is coming.
            (QoS::AtLeastOnce, Some(Inbound::AtLeastOnce))
            | (QoS::ExactlyOnce, Some(Inbound::ExactlyOnce { delivered: false })) => {
                return Ok(());
            }
            (QoS::ExactlyOnce, Some(Inbound::ExactlyOnce { delivered: true })) => {
                self.transmit.push_back(Packet::PubRec(Ack::new(id)));
                return Ok(());
            }
            _ => {}
        }
        if self.version().is_v5() && self.inbound.len() >= usize::from(self.receive_maximum) {
            return Err(ClientError::protocol(
                ReasonCode::ReceiveMaximumExceeded,
                format!(
                    "[MQTT-3.3.4-9] more than our Receive Maximum of {} QoS 1/2 messages \
                     unacknowledged",
                    self.receive_maximum
                ),
            ));
        }
        let entry = if publish.qos == QoS::ExactlyOnce {
            Inbound::ExactlyOnce { delivered: false }
        } else {
            Inbound::AtLeastOnce
        };
        self.inbound.insert(id.get(), entry);
        let ack = DeliveryAck {
            session: self.session,
            packet_id: id,
        };
        self.outputs.push_back(Output::Message {
            publish,
            ack: Some(ack),
        });
        Ok(())
    }

    /// The application has the message `ack` came with: its PUBACK (QoS 1) or PUBREC
    /// (QoS 2) is queued now ([MQTT-4.3.2-4], [MQTT-4.3.3-8]), in the order the messages
    /// arrived when they are delivered in that order ([MQTT-4.6.0-2], [MQTT-4.6.0-3]).
    /// Without a connection nothing is sent: the server resends the message on the
    /// resumed session, and then a QoS 1 copy is delivered again (at least once) while a
    /// QoS 2 copy is only acknowledged.
    pub fn handle_delivered(&mut self, ack: DeliveryAck) {
        if ack.session != self.session {
            return;
        }
        let id = ack.packet_id;
        let connected = self.phase == Phase::Connected;
        match self.inbound.get_mut(&id.get()) {
            Some(Inbound::AtLeastOnce) => {
                self.inbound.remove(&id.get());
                if connected {
                    self.transmit.push_back(Packet::PubAck(Ack::new(id)));
                }
            }
            Some(Inbound::ExactlyOnce { delivered }) if !*delivered => {
                *delivered = true;
                if connected {
                    self.transmit.push_back(Packet::PubRec(Ack::new(id)));
                }
            }
            _ => {}
        }
    }

    /// PUBREL for an inbound QoS 2 message: PUBCOMP, and the id may be used for a new
    /// message ([MQTT-4.3.3-11], [MQTT-4.3.3-12]).
    pub(super) fn handle_pubrel(&mut self, ack: Ack) {
        let id = ack.packet_id;
        let mut comp = Ack::new(id);
        match self.inbound.get(&id.get()) {
            Some(Inbound::ExactlyOnce { delivered: true }) => {
                self.inbound.remove(&id.get());
            }
            // A PUBREL before our PUBREC: the server is wrong; the PUBREC will tell it.
            Some(_) => return,
            None if self.version().is_v5() => {
                comp.reason_code = ReasonCode::PacketIdentifierNotFound;
            }
            None => {}
        }
        self.transmit.push_back(Packet::PubComp(comp));
    }
}
