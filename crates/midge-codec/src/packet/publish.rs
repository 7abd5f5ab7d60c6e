//! PUBLISH (§3.3): an application message, in either direction. The payload is a
//! zero-copy slice of the buffer it was read from.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{PacketType, ProtocolVersion, check_field, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PublishProperties, Rare};
use crate::topic::{PacketId, QoS, TopicName};
use crate::wire::{Reader, put_bytes};

/// A PUBLISH packet.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// Set on a re-delivery ([MQTT-3.3.1-1]); never with QoS 0.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic; empty only in 5.0 with a topic alias.
    pub topic: TopicName,
    /// Present exactly when QoS > 0 ([MQTT-2.2.1-2]).
    pub packet_id: Option<PacketId>,
    /// The application message.
    pub payload: Bytes,
    /// PUBLISH properties (5.0); most messages have none (see [`Rare`]).
    pub properties: Rare<PublishProperties>,
}

impl Publish {
    /// A QoS 0 message on `topic`.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Publish {
            topic,
            payload: payload.into(),
            ..Publish::default()
        }
    }

    pub(crate) fn decode(
        r: &mut Reader,
        flags: u8,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0x03)?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupOnQoS0);
        }
        let topic = TopicName::new(r.string()?)?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(read_packet_id(r, PacketType::Publish)?)
        };
        let properties = if version.is_v5() {
            Rare::from(PublishProperties::decode(r)?)
        } else {
            Rare::default()
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicName);
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            payload: r.rest(),
            properties,
        })
    }

    pub(crate) fn flags(&self) -> u8 {
        u8::from(self.dup) << 3 | (self.qos as u8) << 1 | u8::from(self.retain)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.packet_id.is_some() != (self.qos != QoS::AtMostOnce) {
            return Err(EncodeError::PacketIdMismatch);
        }
        check_field("topic name", self.topic.len())?;
        let mut len = 2 + self.topic.len() + self.payload.len();
        if self.packet_id.is_some() {
            len += 2;
        }
        if version.is_v5() {
            self.properties.check()?;
            len += self.properties.block_len();
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        put_bytes(dst, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            dst.put_u16(id.get());
        }
        if version.is_v5() {
            self.properties.write(dst);
        }
        dst.put_slice(&self.payload);
    }
}

/// Payloads are shown by length only (STYLE.md rule 15).
impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("packet_id", &self.packet_id)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("properties", &self.properties)
            .finish()
    }
}
