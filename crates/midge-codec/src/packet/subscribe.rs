//! SUBSCRIBE (§3.8): topic filters with their subscription options.

use bytes::{BufMut, BytesMut};

use super::{PacketType, ProtocolVersion, check_field, read_packet_id};
use crate::error::{DecodeError, EncodeError};
use crate::properties::SubscribeProperties;
use crate::topic::{PacketId, QoS, TopicFilter};
use crate::wire::{Reader, put_bytes};

/// When retained messages are sent for a new subscription (5.0, §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist yet.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The options byte of one subscription. In 3.1/3.1.1 only `qos` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubscriptionOptions {
    /// Maximum QoS the client wants.
    pub qos: QoS,
    /// Do not send the client its own publications ([MQTT-3.8.3-3]).
    pub no_local: bool,
    /// Keep the RETAIN flag as published ([MQTT-3.3.1-12], [MQTT-3.3.1-13]).
    pub retain_as_published: bool,
    /// When to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and every 5.0 option at its default.
    pub fn new(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if version.is_v5() { 0xc0 } else { 0xfc };
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved(byte));
        }
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        // QoS 3 is malformed in 3.1.1 (§3.8.3.1) but a Protocol Error in 5.0 (§3.8.3.1).
        let qos = QoS::from_u8(byte & 0x03).map_err(|e| {
            if version.is_v5() {
                DecodeError::InvalidSubscriptionQoS
            } else {
                e
            }
        })?;
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    fn encode(self, version: ProtocolVersion) -> u8 {
        if !version.is_v5() {
            return self.qos as u8;
        }
        self.qos as u8
            | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4
    }
}

/// A SUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier, echoed in the SUBACK.
    pub packet_id: PacketId,
    /// At least one filter with its options ([MQTT-3.8.3-2]).
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// Properties (5.0).
    pub properties: SubscribeProperties,
}

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Subscribe)?;
        let properties = if version.is_v5() {
            SubscribeProperties::decode(r)?
        } else {
            SubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = TopicFilter::new(r.string()?)?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            if options.no_local && filter.is_shared() {
                return Err(DecodeError::NoLocalOnSharedSubscription(filter.to_string()));
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
        }
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Subscribe));
        }
        let mut len = 2;
        if version.is_v5() {
            self.properties.check()?;
            len += self.properties.block_len();
        }
        for (filter, _) in &self.filters {
            check_field("topic filter", filter.len())?;
            len += 3 + filter.len();
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, version: ProtocolVersion, dst: &mut BytesMut) {
        dst.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(dst);
        }
        for (filter, options) in &self.filters {
            put_bytes(dst, filter.as_bytes());
            dst.put_u8(options.encode(version));
        }
    }
}
