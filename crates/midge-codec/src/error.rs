//! Decode and encode errors. Every [`DecodeError`] names the rule that was broken, with its
//! `[MQTT-x.y.z-n]` id where the specification numbers it (5.0 ids first, 3.1.1 ids in
//! parentheses where they differ), and maps to the reason code that a broker sends in its
//! DISCONNECT (or CONNACK) before closing the connection: see [`DecodeError::reason_code`].

use crate::Role;
use crate::packet::{PacketType, ProtocolVersion};
use crate::properties::PropertyId;
use crate::reason::ReasonCode;

/// Why a byte sequence is not a valid MQTT packet.
///
/// The message text is for logs and is not a stable API; match on the variant, or ask
/// [`DecodeError::reason_code`] which reason code to close the connection with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field runs past the end of the packet.
    #[error("remaining length is shorter than the packet's fields")]
    Truncated,
    /// Bytes are left over after the last field of a packet that has no free-form payload.
    #[error("remaining length is longer than the packet's fields ({0} bytes left over)")]
    TrailingBytes(usize),
    /// A Variable Byte Integer of more than four bytes.
    #[error("variable byte integer is longer than four bytes")]
    VarIntTooLong,
    /// A Variable Byte Integer that uses more bytes than its value needs.
    #[error("[MQTT-1.5.5-1] variable byte integer does not use the minimum number of bytes")]
    VarIntOverlong,
    /// The fixed header announces a packet larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// Packet type 0, or 15 (AUTH) before MQTT 5.0.
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// Fixed-header flag bits that the specification reserves.
    #[error(
        "[MQTT-2.1.3-1] ([MQTT-2.2.2-1] in 3.1.1) reserved fixed-header flags {flags:#06b} on {packet}"
    )]
    ReservedFlags {
        /// The packet whose flags were wrong.
        packet: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A packet that only the other side may send (a client sending CONNACK, say).
    #[error("{packet} may not be sent by a {sender}")]
    UnexpectedPacket {
        /// The packet received.
        packet: PacketType,
        /// Who sent it.
        sender: Role,
    },
    /// A packet other than CONNECT before CONNECT.
    #[error("[MQTT-3.1.0-1] the first packet must be CONNECT, got {0}")]
    ExpectedConnect(PacketType),
    /// Ill-formed UTF-8 in a string, including encoded surrogates.
    #[error("[MQTT-1.5.4-1] ([MQTT-1.5.3-1] in 3.1.1) string is not well-formed UTF-8")]
    InvalidUtf8,
    /// U+0000 in a string.
    #[error("[MQTT-1.5.4-2] ([MQTT-1.5.3-2] in 3.1.1) string contains U+0000")]
    NullCharacter,
    /// QoS 3 in a PUBLISH or a will.
    #[error("[MQTT-3.3.1-4] QoS 3 is not a QoS")]
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH.
    #[error("[MQTT-3.3.1-2] DUP is set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A wildcard in a topic name.
    #[error("[MQTT-3.3.2-2] ([MQTT-3.3.2-2] in 3.1.1) topic name {0:?} contains a wildcard")]
    WildcardInTopicName(String),
    /// An empty topic name (allowed in 5.0 only together with a Topic Alias).
    #[error("[MQTT-4.7.3-1] topic name is empty (and no Topic Alias is given)")]
    EmptyTopicName,
    /// A topic filter that breaks the wildcard rules.
    #[error("[MQTT-4.7.1-1] [MQTT-4.7.1-2] invalid topic filter {filter:?}: {why}")]
    InvalidTopicFilter {
        /// The filter received.
        filter: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A `$share/` filter without a valid share name and filter.
    #[error("[MQTT-4.8.2-1] [MQTT-4.8.2-2] invalid shared subscription {0:?}")]
    InvalidSharedSubscription(String),
    /// No Local set on a shared subscription.
    #[error("[MQTT-3.8.3-4] No Local is set on shared subscription {0:?}")]
    NoLocalOnSharedSubscription(String),
    /// Non-zero reserved bits in the subscription options byte.
    #[error(
        "[MQTT-3.8.3-5] ([MQTT-3.8.3-4] in 3.1.1) reserved bits set in subscription options {0:#04x}"
    )]
    SubscriptionOptionsReserved(u8),
    /// Retain Handling 3.
    #[error("Retain Handling 3 is a Protocol Error (§3.8.3.1)")]
    InvalidRetainHandling,
    /// Maximum QoS 3 in the subscription options of an MQTT 5.0 SUBSCRIBE: a Protocol
    /// Error there (§3.8.3.1), where 3.1/3.1.1 call it malformed ([`DecodeError::InvalidQoS`]).
    #[error("Maximum QoS 3 in subscription options is a Protocol Error (§3.8.3.1)")]
    InvalidSubscriptionQoS,
    /// A SUBSCRIBE or UNSUBSCRIBE without topic filters.
    #[error(
        "[MQTT-3.8.3-2] [MQTT-3.10.3-2] ([MQTT-3.8.3-3] [MQTT-3.10.3-2] in 3.1.1) {0} has no topic filters"
    )]
    NoTopicFilters(PacketType),
    /// Packet identifier 0 where one is required.
    #[error("[MQTT-2.2.1-3] ([MQTT-2.3.1-1] in 3.1.1) packet identifier 0 on {0}")]
    ZeroPacketId(PacketType),
    /// A property identifier the specification does not define.
    #[error("unknown property identifier {0:#04x} (§2.2.2.2)")]
    UnknownProperty(u8),
    /// A property that this packet may not carry.
    #[error("property {property} is not allowed on {packet} (§2.2.2.2)")]
    PropertyNotAllowed {
        /// The property received.
        property: PropertyId,
        /// The packet, or "will" properties as CONNECT.
        packet: PacketType,
    },
    /// A property given twice where only one is allowed.
    #[error("property {0} is included more than once")]
    DuplicateProperty(PropertyId),
    /// A property value outside its allowed range (Receive Maximum 0, a flag of 2, …).
    #[error("property {property} has invalid value {value}")]
    InvalidPropertyValue {
        /// The property received.
        property: PropertyId,
        /// The value received.
        value: u32,
    },
    /// A reason code that this packet may not carry.
    #[error("reason code {code:#04x} is not valid on {packet}")]
    InvalidReasonCode {
        /// The packet received.
        packet: PacketType,
        /// The byte received.
        code: u8,
    },
    /// A protocol name other than `MQTT` (or `MQIsdp` for level 3).
    #[error("[MQTT-3.1.2-1] unsupported protocol name {0:?}")]
    InvalidProtocolName(String),
    /// A protocol level other than 3, 4 or 5.
    #[error("[MQTT-3.1.2-2] unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// The reserved bit of the CONNECT flags is set.
    #[error("[MQTT-3.1.2-3] reserved CONNECT flag is set")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag.
    #[error(
        "[MQTT-3.1.2-11] [MQTT-3.1.2-13] ([MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] in 3.1.1) will QoS or retain set without the will flag"
    )]
    WillFlagsWithoutWill,
    /// The password flag without the user name flag in 3.1/3.1.1.
    #[error("[MQTT-3.1.2-22] (3.1.1) password flag set without user name flag")]
    PasswordWithoutUsername,
    /// CONNACK flags other than Session Present.
    #[error("[MQTT-3.2.2-1] reserved CONNACK flags {0:#04x}")]
    ConnAckReservedFlags(u8),
    /// A 3.1.1 SUBACK return code other than 0, 1, 2 and 0x80, or a CONNACK return code above 5.
    #[error("invalid 3.1.1 return code {code:#04x} on {packet}")]
    InvalidReturnCode {
        /// The packet received.
        packet: PacketType,
        /// The byte received.
        code: u8,
    },
    /// A packet that does not exist in the negotiated protocol version.
    #[error("{packet} does not exist in {version}")]
    NotInVersion {
        /// The packet received.
        packet: PacketType,
        /// The version in use.
        version: ProtocolVersion,
    },
}

impl DecodeError {
    /// The reason code a broker sends (in DISCONNECT, or CONNACK for a bad CONNECT)
    /// before closing the connection over this error: 0x81 for malformed packets,
    /// 0x82 for protocol errors, 0x95 for packets over the limit, 0x84 for an unsupported
    /// protocol.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError as E;
        match self {
            E::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            E::InvalidProtocolName(_) | E::UnsupportedProtocolLevel(_) => {
                ReasonCode::UnsupportedProtocolVersion
            }
            E::UnexpectedPacket { .. }
            | E::ExpectedConnect(_)
            | E::EmptyTopicName
            | E::NoLocalOnSharedSubscription(_)
            | E::InvalidRetainHandling
            | E::InvalidSubscriptionQoS
            | E::NoTopicFilters(_)
            | E::ZeroPacketId(_)
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue { .. }
            | E::InvalidReasonCode { .. }
            | E::NotInVersion { .. } => ReasonCode::ProtocolError,
            E::Truncated
            | E::TrailingBytes(_)
            | E::VarIntTooLong
            | E::VarIntOverlong
            | E::ReservedPacketType(_)
            | E::ReservedFlags { .. }
            | E::InvalidUtf8
            | E::NullCharacter
            | E::InvalidQoS
            | E::DupOnQoS0
            | E::WildcardInTopicName(_)
            | E::InvalidTopicFilter { .. }
            | E::InvalidSharedSubscription(_)
            | E::SubscriptionOptionsReserved(_)
            | E::UnknownProperty(_)
            | E::PropertyNotAllowed { .. }
            | E::ConnectReservedFlag
            | E::WillFlagsWithoutWill
            | E::PasswordWithoutUsername
            | E::ConnAckReservedFlags(_)
            | E::InvalidReturnCode { .. } => ReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet cannot be encoded.
///
/// The message text is for logs and is not a stable API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field longer than 65,535 bytes.
    #[error("{field} is {len} bytes long; the limit is 65535")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The packet's remaining length exceeds 268,435,455 bytes.
    #[error("packet body of {0} bytes exceeds the MQTT maximum of 268435455")]
    PacketTooLarge(usize),
    /// A packet type that the protocol version lacks (AUTH before 5.0).
    #[error("{packet} does not exist in {version}")]
    NotInVersion {
        /// The packet.
        packet: PacketType,
        /// The version asked for.
        version: ProtocolVersion,
    },
    /// A QoS 0 PUBLISH with a packet id, or a QoS 1/2 PUBLISH without one.
    #[error("[MQTT-2.2.1-2] a PUBLISH carries a packet identifier exactly when its QoS is above 0")]
    PacketIdMismatch,
    /// A SUBSCRIBE or UNSUBSCRIBE with no filters.
    #[error("{0} needs at least one topic filter")]
    NoTopicFilters(PacketType),
    /// A 3.1/3.1.1 CONNECT with a password but no user name, which the decoder rejects as
    /// [`DecodeError::PasswordWithoutUsername`] (5.0 allows it).
    #[error("[MQTT-3.1.2-22] (3.1.1) a password needs a user name before MQTT 5.0")]
    PasswordWithoutUsername,
}
