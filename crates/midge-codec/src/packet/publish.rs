//! PUBLISH (§3.3): an application message, in either direction. The payload is a
//! zero-copy slice of the buffer it was read from.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{PacketType, ProtocolVersion, check_field, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PublishProperties, Rare};
use crate::topic::{PacketId, QoS, TopicName};
use crate::wire::{MAX_VAR_INT, Reader, put_bytes, put_var_int, var_int_len};

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

/// A first-time PUBLISH (DUP 0) without properties, from borrowed parts: encoded as
/// [`Packet::Publish`](super::Packet::Publish) would encode the [`Publish`] with these
/// fields, without building one (a broker forwarding a message it holds).
#[derive(Debug, Clone, Copy)]
pub struct PlainPublish<'a> {
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic.
    pub topic: &'a str,
    /// Present exactly when QoS > 0 ([MQTT-2.2.1-2]).
    pub packet_id: Option<PacketId>,
    /// The application message.
    pub payload: &'a [u8],
}

impl PlainPublish<'_> {
    /// The Remaining Length; `None` when MQTT cannot carry the packet.
    fn body_len(&self, version: ProtocolVersion) -> Option<usize> {
        if self.packet_id.is_some() != (self.qos != QoS::AtMostOnce)
            || self.topic.len() > usize::from(u16::MAX)
        {
            return None;
        }
        let body = 2
            + self.topic.len()
            + if self.packet_id.is_some() { 2 } else { 0 }
            // 5.0: the property length, zero.
            + usize::from(version.is_v5())
            + self.payload.len();
        (body <= MAX_VAR_INT as usize).then_some(body)
    }

    /// The size of the encoded packet, fixed header included; `None` when MQTT cannot
    /// carry it.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Option<usize> {
        let body = self.body_len(version)?;
        Some(1 + var_int_len(body) + body)
    }

    /// Appends the packet, encoded for `version`, to `dst`. Returns false, having
    /// written nothing, when MQTT cannot carry it (see [`PlainPublish::encoded_len`]).
    pub fn encode(&self, version: ProtocolVersion, dst: &mut BytesMut) -> bool {
        let Some(body) = self.body_len(version) else {
            return false;
        };
        dst.reserve(1 + var_int_len(body) + body);
        dst.put_u8(
            (PacketType::Publish as u8) << 4 | (self.qos as u8) << 1 | u8::from(self.retain),
        );
        put_var_int(dst, body);
        put_bytes(dst, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            dst.put_u16(id.get());
        }
        if version.is_v5() {
            put_var_int(dst, 0);
        }
        dst.put_slice(self.payload);
        true
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
