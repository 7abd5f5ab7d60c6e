//! The packet model: one [`Packet`] enum for MQTT 3.1, 3.1.1 and 5.0 (STYLE.md rule 3).
//!
//! Each packet type lives in its own module with its decoder (`decode`, from the bytes
//! after the fixed header) and its encoder (`body_len` + `write_body`). Fields that exist
//! only in 5.0 (properties, reason codes on acks) are simply left at their defaults when
//! a 3.1.1 packet is decoded, and skipped when one is encoded.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

use std::fmt;

use bytes::{BufMut, BytesMut};

pub use ack::Ack;
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, LastWill};
pub use disconnect::Disconnect;
pub use publish::{PlainPublish, Publish};
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use crate::error::{DecodeError, EncodeError};
use crate::wire::{MAX_VAR_INT, Reader, put_var_int, var_int_len};

/// The protocol version a connection speaks, from the CONNECT packet's protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31 = 3,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311 = 4,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5 = 5,
}

impl ProtocolVersion {
    /// True for MQTT 5.0, the version with properties and reason codes.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V31 => "MQTT 3.1",
            ProtocolVersion::V311 => "MQTT 3.1.1",
            ProtocolVersion::V5 => "MQTT 5.0",
        })
    }
}

/// The fifteen control packet types (§2.1.2), by their fixed-header number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// 1: client request to connect.
    Connect = 1,
    /// 2: connect acknowledgment.
    ConnAck = 2,
    /// 3: publish message.
    Publish = 3,
    /// 4: QoS 1 publish acknowledgment.
    PubAck = 4,
    /// 5: QoS 2 publish received.
    PubRec = 5,
    /// 6: QoS 2 publish release.
    PubRel = 6,
    /// 7: QoS 2 publish complete.
    PubComp = 7,
    /// 8: subscribe request.
    Subscribe = 8,
    /// 9: subscribe acknowledgment.
    SubAck = 9,
    /// 10: unsubscribe request.
    Unsubscribe = 10,
    /// 11: unsubscribe acknowledgment.
    UnsubAck = 11,
    /// 12: ping request.
    PingReq = 12,
    /// 13: ping response.
    PingResp = 13,
    /// 14: disconnect notification.
    Disconnect = 14,
    /// 15: authentication exchange (5.0 only).
    Auth = 15,
}

impl PacketType {
    fn from_u8(value: u8) -> Option<Self> {
        use PacketType as T;
        Some(match value {
            1 => T::Connect,
            2 => T::ConnAck,
            3 => T::Publish,
            4 => T::PubAck,
            5 => T::PubRec,
            6 => T::PubRel,
            7 => T::PubComp,
            8 => T::Subscribe,
            9 => T::SubAck,
            10 => T::Unsubscribe,
            11 => T::UnsubAck,
            12 => T::PingReq,
            13 => T::PingResp,
            14 => T::Disconnect,
            15 => T::Auth,
            _ => return None,
        })
    }

    /// The flag bits the fixed header must carry (§2.1.3); PUBLISH has its own.
    fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// Whether a peer in `sender`'s role may send this packet.
    pub fn sent_by(self, sender: crate::Role) -> bool {
        use PacketType as T;
        match self {
            T::Connect | T::Subscribe | T::Unsubscribe | T::PingReq => {
                sender == crate::Role::Client
            }
            T::ConnAck | T::SubAck | T::UnsubAck | T::PingResp => sender == crate::Role::Server,
            _ => true,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        })
    }
}

/// An MQTT control packet of any version.
///
/// The rarely sent, large CONNECT and CONNACK are boxed so that the enum stays small
/// for the packets that flow by the million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(Box<ConnAck>),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(Ack),
    /// PUBREC.
    PubRec(Ack),
    /// PUBREL.
    PubRel(Ack),
    /// PUBCOMP.
    PubComp(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (5.0 only).
    Auth(Auth),
}

impl Packet {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        use PacketType as T;
        match self {
            Packet::Connect(_) => T::Connect,
            Packet::ConnAck(_) => T::ConnAck,
            Packet::Publish(_) => T::Publish,
            Packet::PubAck(_) => T::PubAck,
            Packet::PubRec(_) => T::PubRec,
            Packet::PubRel(_) => T::PubRel,
            Packet::PubComp(_) => T::PubComp,
            Packet::Subscribe(_) => T::Subscribe,
            Packet::SubAck(_) => T::SubAck,
            Packet::Unsubscribe(_) => T::Unsubscribe,
            Packet::UnsubAck(_) => T::UnsubAck,
            Packet::PingReq => T::PingReq,
            Packet::PingResp => T::PingResp,
            Packet::Disconnect(_) => T::Disconnect,
            Packet::Auth(_) => T::Auth,
        }
    }

    /// Decodes the body of a packet whose fixed header has been read and checked.
    pub(crate) fn decode_body(
        kind: PacketType,
        flags: u8,
        version: ProtocolVersion,
        mut r: Reader,
    ) -> Result<Packet, DecodeError> {
        let r = &mut r;
        let packet = match kind {
            PacketType::Connect => Packet::Connect(Box::new(Connect::decode(r)?)),
            PacketType::ConnAck => Packet::ConnAck(Box::new(ConnAck::decode(r, version)?)),
            PacketType::Publish => Packet::Publish(Publish::decode(r, flags, version)?),
            PacketType::PubAck => Packet::PubAck(Ack::decode(r, kind, version)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(r, kind, version)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(r, kind, version)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(r, kind, version)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(r, version)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(r, version)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(r, version)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(r, version)?),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(r, version)?),
            PacketType::Auth => Packet::Auth(Auth::decode(r)?),
        };
        r.finish()?;
        Ok(packet)
    }

    /// Checks field lengths and returns the remaining length (the body's size).
    fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let len = match self {
            Packet::Connect(p) => p.body_len()?,
            Packet::ConnAck(p) => p.body_len(version)?,
            Packet::Publish(p) => p.body_len(version)?,
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.body_len(version)?
            }
            Packet::Subscribe(p) => p.body_len(version)?,
            Packet::SubAck(p) => p.body_len(version)?,
            Packet::Unsubscribe(p) => p.body_len(version)?,
            Packet::UnsubAck(p) => p.body_len(version)?,
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(p) => p.body_len(version)?,
            Packet::Auth(p) => {
                if !version.is_v5() {
                    return Err(EncodeError::NotInVersion {
                        packet: PacketType::Auth,
                        version,
                    });
                }
                p.body_len()?
            }
        };
        if len > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(len));
        }
        Ok(len)
    }

    fn first_byte(&self) -> u8 {
        let kind = self.packet_type();
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ => kind.required_flags().unwrap_or(0),
        };
        (kind as u8) << 4 | flags
    }

    /// The size of the encoded packet, fixed header included: what a Maximum Packet
    /// Size is compared with.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.body_len(version)?;
        Ok(1 + var_int_len(body) + body)
    }

    /// Appends the packet, encoded for `version`, to `dst`. Nothing is written on error.
    ///
    /// CONNECT is always encoded for the version it names itself.
    pub fn encode(&self, version: ProtocolVersion, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let body = self.body_len(version)?;
        dst.reserve(1 + var_int_len(body) + body);
        dst.put_u8(self.first_byte());
        put_var_int(dst, body);
        let start = dst.len();
        match self {
            Packet::Connect(p) => p.write_body(dst),
            Packet::ConnAck(p) => p.write_body(version, dst),
            Packet::Publish(p) => p.write_body(version, dst),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.write_body(version, dst)
            }
            Packet::Subscribe(p) => p.write_body(version, dst),
            Packet::SubAck(p) => p.write_body(version, dst),
            Packet::Unsubscribe(p) => p.write_body(version, dst),
            Packet::UnsubAck(p) => p.write_body(version, dst),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.write_body(version, dst),
            Packet::Auth(p) => p.write_body(dst),
        }
        debug_assert_eq!(
            dst.len() - start,
            body,
            "body_len disagrees with write_body"
        );
        Ok(())
    }
}

/// Splits the first byte of a fixed header into its type and flags, checking the
/// reserved flags ([MQTT-2.1.3-1], [MQTT-2.2.2-1] in 3.1.1) and the reserved types.
pub(crate) fn parse_first_byte(
    byte: u8,
    version: Option<ProtocolVersion>,
) -> Result<(PacketType, u8), DecodeError> {
    let kind = PacketType::from_u8(byte >> 4).ok_or(DecodeError::ReservedPacketType(byte >> 4))?;
    let flags = byte & 0x0f;
    if kind == PacketType::Auth && version.is_some_and(|v| !v.is_v5()) {
        return Err(DecodeError::ReservedPacketType(15));
    }
    if let Some(required) = kind.required_flags() {
        if flags != required {
            return Err(DecodeError::ReservedFlags {
                packet: kind,
                flags,
            });
        }
    }
    Ok((kind, flags))
}

/// Reads a non-zero packet identifier.
pub(crate) fn read_packet_id(
    r: &mut Reader,
    kind: PacketType,
) -> Result<crate::PacketId, DecodeError> {
    crate::PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId(kind))
}

/// Fails with [`EncodeError::FieldTooLong`] for fields over 65,535 bytes.
pub(crate) fn check_field(field: &'static str, len: usize) -> Result<(), EncodeError> {
    if len > usize::from(u16::MAX) {
        Err(EncodeError::FieldTooLong { field, len })
    } else {
        Ok(())
    }
}
