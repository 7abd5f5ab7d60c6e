//! MQTT 5.0 properties (§2.2.2): every property with its identifier and wire type, and one
//! typed struct per packet kind listing exactly the properties that packet may carry.
//!
//! Each struct is declared once with the `properties!` macro below, which derives its
//! decoder (rejecting unknown properties, properties not allowed on that packet and
//! duplicates), its encoded length and its encoder from the same field list, so the three
//! cannot drift apart. `Default` is "no property present". In MQTT 3.1/3.1.1 the structs
//! stay empty: the encoder writes no properties for those versions.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::topic::{QoS, TopicName};
use crate::wire::{Reader, put_bytes, put_var_int, var_int_len};

/// How a property's value is laid out on the wire (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireType {
    Byte,
    U16,
    U32,
    VarInt,
    String,
    Binary,
    StringPair,
}

macro_rules! property_ids {
    ($($name:ident = $value:literal, $wire:ident, $text:literal;)*) => {
        /// A property identifier (§2.2.2.2, Table 2-4).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum PropertyId {
            $(#[doc = $text] $name = $value,)*
        }

        impl PropertyId {
            /// The property with this identifier, if the specification defines one.
            pub fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$name),)*
                    _ => None,
                }
            }

            fn wire_type(self) -> WireType {
                match self {
                    $(Self::$name => WireType::$wire,)*
                }
            }

            /// The specification's name of the property.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$name => $text,)*
                }
            }
        }
    };
}

property_ids! {
    PayloadFormatIndicator = 0x01, Byte, "Payload Format Indicator";
    MessageExpiryInterval = 0x02, U32, "Message Expiry Interval";
    ContentType = 0x03, String, "Content Type";
    ResponseTopic = 0x08, String, "Response Topic";
    CorrelationData = 0x09, Binary, "Correlation Data";
    SubscriptionIdentifier = 0x0b, VarInt, "Subscription Identifier";
    SessionExpiryInterval = 0x11, U32, "Session Expiry Interval";
    AssignedClientIdentifier = 0x12, String, "Assigned Client Identifier";
    ServerKeepAlive = 0x13, U16, "Server Keep Alive";
    AuthenticationMethod = 0x15, String, "Authentication Method";
    AuthenticationData = 0x16, Binary, "Authentication Data";
    RequestProblemInformation = 0x17, Byte, "Request Problem Information";
    WillDelayInterval = 0x18, U32, "Will Delay Interval";
    RequestResponseInformation = 0x19, Byte, "Request Response Information";
    ResponseInformation = 0x1a, String, "Response Information";
    ServerReference = 0x1c, String, "Server Reference";
    ReasonString = 0x1f, String, "Reason String";
    ReceiveMaximum = 0x21, U16, "Receive Maximum";
    TopicAliasMaximum = 0x22, U16, "Topic Alias Maximum";
    TopicAlias = 0x23, U16, "Topic Alias";
    MaximumQoS = 0x24, Byte, "Maximum QoS";
    RetainAvailable = 0x25, Byte, "Retain Available";
    UserProperty = 0x26, StringPair, "User Property";
    MaximumPacketSize = 0x27, U32, "Maximum Packet Size";
    WildcardSubscriptionAvailable = 0x28, Byte, "Wildcard Subscription Available";
    SubscriptionIdentifierAvailable = 0x29, Byte, "Subscription Identifier Available";
    SharedSubscriptionAvailable = 0x2a, Byte, "Shared Subscription Available";
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02x})", self.name(), *self as u8)
    }
}

/// A property value as read off the wire, before it is stored in its typed field.
#[derive(Debug)]
enum Value {
    Byte(u8),
    U16(u16),
    U32(u32),
    String(ByteString),
    Binary(Bytes),
    Pair(ByteString, ByteString),
}

/// Reads one value of `id`'s wire type and checks the range rules that do not depend
/// on the packet: flags are 0 or 1, Maximum QoS is 0 or 1, and Receive Maximum, Maximum
/// Packet Size and Subscription Identifier are not 0 (each "is a Protocol Error").
fn read_value(r: &mut Reader, id: PropertyId) -> Result<Value, DecodeError> {
    let value = match id.wire_type() {
        WireType::Byte => Value::Byte(r.u8()?),
        WireType::U16 => Value::U16(r.u16()?),
        WireType::U32 => Value::U32(r.u32()?),
        WireType::VarInt => Value::U32(r.var_int()?),
        WireType::String => Value::String(r.string()?),
        WireType::Binary => Value::Binary(r.binary()?),
        WireType::StringPair => Value::Pair(r.string()?, r.string()?),
    };
    let invalid = |value: u32| DecodeError::InvalidPropertyValue {
        property: id,
        value,
    };
    match (&value, id.wire_type()) {
        (Value::Byte(b), _) if *b > 1 => return Err(invalid(u32::from(*b))),
        (Value::U16(0), _) if id == PropertyId::ReceiveMaximum => return Err(invalid(0)),
        (Value::U32(0), _)
            if matches!(
                id,
                PropertyId::MaximumPacketSize | PropertyId::SubscriptionIdentifier
            ) =>
        {
            return Err(invalid(0));
        }
        _ => {}
    }
    Ok(value)
}

/// How one typed field stores, measures and writes its property.
trait PropField: Default {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError>;
    fn wire_len(&self, id: PropertyId) -> usize;
    fn write(&self, id: PropertyId, dst: &mut BytesMut);
    fn check(&self, _id: PropertyId) -> Result<(), EncodeError> {
        Ok(())
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str);
}

fn set_once<T>(slot: &mut Option<T>, id: PropertyId, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

fn check_len(id: PropertyId, len: usize) -> Result<(), EncodeError> {
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong {
            field: id.name(),
            len,
        });
    }
    Ok(())
}

impl PropField for Option<bool> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::Byte(b) => set_once(self, id, b == 1),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        if self.is_some() { 2 } else { 0 }
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            dst.put_u8(u8::from(*v));
        }
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

impl PropField for Option<QoS> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            // read_value already limited the byte to 0 or 1.
            Value::Byte(b) => set_once(self, id, QoS::from_u8(b)?),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        if self.is_some() { 2 } else { 0 }
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            dst.put_u8(*v as u8);
        }
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

impl PropField for Option<u16> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::U16(v) => set_once(self, id, v),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        if self.is_some() { 3 } else { 0 }
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            dst.put_u16(*v);
        }
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

impl PropField for Option<u32> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::U32(v) => set_once(self, id, v),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, id: PropertyId) -> usize {
        match self {
            Some(v) if id.wire_type() == WireType::VarInt => 1 + var_int_len(*v as usize),
            Some(_) => 5,
            None => 0,
        }
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            if id.wire_type() == WireType::VarInt {
                put_var_int(dst, *v as usize);
            } else {
                dst.put_u32(*v);
            }
        }
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        match self {
            Some(v) if id.wire_type() == WireType::VarInt && *v > crate::wire::MAX_VAR_INT => {
                Err(EncodeError::PacketTooLarge(*v as usize))
            }
            _ => Ok(()),
        }
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

impl PropField for Option<ByteString> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::String(v) => set_once(self, id, v),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        self.as_ref().map_or(0, |v| 3 + v.len())
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            put_bytes(dst, v.as_bytes());
        }
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        self.as_ref().map_or(Ok(()), |v| check_len(id, v.len()))
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

/// Response Topic: a topic name, so no wildcards ([MQTT-3.3.2-14]).
impl PropField for Option<TopicName> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::String(v) => set_once(self, id, TopicName::new(v)?),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        self.as_ref().map_or(0, |v| 3 + v.len())
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            put_bytes(dst, v.as_bytes());
        }
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        self.as_ref().map_or(Ok(()), |v| check_len(id, v.len()))
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, v);
        }
    }
}

/// Binary properties (Correlation Data, Authentication Data): shown by length only.
impl PropField for Option<Bytes> {
    fn accept(&mut self, id: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::Binary(v) => set_once(self, id, v),
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        self.as_ref().map_or(0, |v| 3 + v.len())
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(id as u8);
            put_bytes(dst, v);
        }
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        self.as_ref().map_or(Ok(()), |v| check_len(id, v.len()))
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if let Some(v) = self {
            f.field(name, &format_args!("<{} bytes>", v.len()));
        }
    }
}

/// User Properties: name/value pairs, repeatable, order kept ([MQTT-3.3.2-18]).
impl PropField for Vec<(ByteString, ByteString)> {
    fn accept(&mut self, _: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::Pair(k, v) => {
                self.push((k, v));
                Ok(())
            }
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        self.iter().map(|(k, v)| 5 + k.len() + v.len()).sum()
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        for (k, v) in self {
            dst.put_u8(id as u8);
            put_bytes(dst, k.as_bytes());
            put_bytes(dst, v.as_bytes());
        }
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        self.iter()
            .try_for_each(|(k, v)| check_len(id, k.len().max(v.len())))
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if !self.is_empty() {
            f.field(name, self);
        }
    }
}

/// Subscription Identifiers on a PUBLISH sent by the server: repeatable ([MQTT-3.3.4-4]).
impl PropField for Vec<u32> {
    fn accept(&mut self, _: PropertyId, value: Value) -> Result<(), DecodeError> {
        match value {
            Value::U32(v) => {
                self.push(v);
                Ok(())
            }
            _ => unreachable!("wire type checked by read_value"),
        }
    }
    fn wire_len(&self, _: PropertyId) -> usize {
        self.iter().map(|v| 1 + var_int_len(*v as usize)).sum()
    }
    fn write(&self, id: PropertyId, dst: &mut BytesMut) {
        for v in self {
            dst.put_u8(id as u8);
            put_var_int(dst, *v as usize);
        }
    }
    fn check(&self, _: PropertyId) -> Result<(), EncodeError> {
        match self.iter().find(|v| **v > crate::wire::MAX_VAR_INT) {
            Some(v) => Err(EncodeError::PacketTooLarge(*v as usize)),
            None => Ok(()),
        }
    }
    fn fmt_field(&self, f: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        if !self.is_empty() {
            f.field(name, self);
        }
    }
}

/// Reads a property block (length, then properties), handing each one to `accept`.
fn read_block(
    r: &mut Reader,
    mut accept: impl FnMut(PropertyId, Value) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.var_int()? as usize;
    let mut block = Reader::new(r.take(len)?);
    while !block.is_empty() {
        let byte = block.u8()?;
        let id = PropertyId::from_u8(byte).ok_or(DecodeError::UnknownProperty(byte))?;
        let value = read_value(&mut block, id)?;
        accept(id, value)?;
    }
    Ok(())
}

macro_rules! properties {
    ($(
        $(#[$doc:meta])*
        $name:ident on $packet:ident {
            $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $id:ident, )*
        }
    )*) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )*
        }

        impl $name {
            /// Decodes a property block (length prefix included) from `r`.
            pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
                let mut props = Self::default();
                read_block(r, |id, value| match id {
                    $( PropertyId::$id => props.$field.accept(id, value), )*
                    #[allow(unreachable_patterns)]
                    _ => Err(DecodeError::PropertyNotAllowed {
                        property: id,
                        packet: PacketType::$packet,
                    }),
                })?;
                Ok(props)
            }

            /// Length of the properties, without the length prefix.
            pub(crate) fn body_len(&self) -> usize {
                0 $( + self.$field.wire_len(PropertyId::$id) )*
            }

            /// Length of the property block, length prefix included.
            pub(crate) fn block_len(&self) -> usize {
                let len = self.body_len();
                var_int_len(len) + len
            }

            /// Checks field lengths before anything is written.
            pub(crate) fn check(&self) -> Result<(), EncodeError> {
                $( self.$field.check(PropertyId::$id)?; )*
                Ok(())
            }

            /// Writes the property block, length prefix included.
            pub(crate) fn write(&self, dst: &mut BytesMut) {
                put_var_int(dst, self.body_len());
                $( self.$field.write(PropertyId::$id, dst); )*
            }

            /// True when no property is present.
            pub fn is_empty(&self) -> bool {
                self.body_len() == 0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut s = f.debug_struct(stringify!($name));
                $( self.$field.fmt_field(&mut s, stringify!($field)); )*
                s.finish()
            }
        }
    )*};
}

/// A user property: a name and a value, both UTF-8 strings.
pub type UserProperty = (ByteString, ByteString);

properties! {
    /// Properties of CONNECT (§3.1.2.11).
    ConnectProperties on Connect {
        /// Seconds the session outlives the connection; 0 or absent: it ends with it.
        session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// QoS 1/2 publications the client accepts at once.
        receive_maximum: Option<u16> = ReceiveMaximum,
        /// Largest packet the client accepts.
        maximum_packet_size: Option<u32> = MaximumPacketSize,
        /// Highest topic alias the client accepts.
        topic_alias_maximum: Option<u16> = TopicAliasMaximum,
        /// Whether the client wants Response Information in CONNACK.
        request_response_information: Option<bool> = RequestResponseInformation,
        /// Whether the server may send reason strings and user properties on failures.
        request_problem_information: Option<bool> = RequestProblemInformation,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
        /// Extended authentication method.
        authentication_method: Option<ByteString> = AuthenticationMethod,
        /// Extended authentication data.
        authentication_data: Option<Bytes> = AuthenticationData,
    }

    /// Properties of the will message in CONNECT (§3.1.3.2).
    WillProperties on Connect {
        /// Seconds to wait after the connection ends before publishing the will.
        will_delay_interval: Option<u32> = WillDelayInterval,
        /// Whether the payload is UTF-8 (`true`) or unspecified bytes.
        payload_format_indicator: Option<bool> = PayloadFormatIndicator,
        /// Lifetime of the will message in seconds.
        message_expiry_interval: Option<u32> = MessageExpiryInterval,
        /// MIME-like description of the payload.
        content_type: Option<ByteString> = ContentType,
        /// Topic for a response.
        response_topic: Option<TopicName> = ResponseTopic,
        /// Data to correlate a response with its request.
        correlation_data: Option<Bytes> = CorrelationData,
        /// User properties, in order ([MQTT-3.1.3-10]).
        user_properties: Vec<UserProperty> = UserProperty,
    }

    /// Properties of CONNACK (§3.2.2.3).
    ConnAckProperties on ConnAck {
        /// Session expiry interval the server uses, if it differs from the client's.
        session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// QoS 1/2 publications the server accepts at once.
        receive_maximum: Option<u16> = ReceiveMaximum,
        /// Highest QoS the server supports (0 or 1; absent means 2).
        maximum_qos: Option<QoS> = MaximumQoS,
        /// Whether the server supports retained messages.
        retain_available: Option<bool> = RetainAvailable,
        /// Largest packet the server accepts.
        maximum_packet_size: Option<u32> = MaximumPacketSize,
        /// The client id the server assigned to a client that sent an empty one.
        assigned_client_identifier: Option<ByteString> = AssignedClientIdentifier,
        /// Highest topic alias the server accepts.
        topic_alias_maximum: Option<u16> = TopicAliasMaximum,
        /// Human-readable diagnostics.
        reason_string: Option<ByteString> = ReasonString,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
        /// Whether wildcard subscriptions are supported.
        wildcard_subscription_available: Option<bool> = WildcardSubscriptionAvailable,
        /// Whether subscription identifiers are supported.
        subscription_identifiers_available: Option<bool> = SubscriptionIdentifierAvailable,
        /// Whether shared subscriptions are supported.
        shared_subscription_available: Option<bool> = SharedSubscriptionAvailable,
        /// Keep alive the client must use instead of its own.
        server_keep_alive: Option<u16> = ServerKeepAlive,
        /// Basis for response topics.
        response_information: Option<ByteString> = ResponseInformation,
        /// Another server to use.
        server_reference: Option<ByteString> = ServerReference,
        /// Extended authentication method.
        authentication_method: Option<ByteString> = AuthenticationMethod,
        /// Extended authentication data.
        authentication_data: Option<Bytes> = AuthenticationData,
    }

    /// Properties of PUBLISH (§3.3.2.3).
    PublishProperties on Publish {
        /// Whether the payload is UTF-8 (`true`) or unspecified bytes.
        payload_format_indicator: Option<bool> = PayloadFormatIndicator,
        /// Lifetime of the message in seconds.
        message_expiry_interval: Option<u32> = MessageExpiryInterval,
        /// Topic alias standing for the topic name on this connection.
        topic_alias: Option<u16> = TopicAlias,
        /// Topic for a response.
        response_topic: Option<TopicName> = ResponseTopic,
        /// Data to correlate a response with its request.
        correlation_data: Option<Bytes> = CorrelationData,
        /// User properties, in order ([MQTT-3.3.2-18]).
        user_properties: Vec<UserProperty> = UserProperty,
        /// Identifiers of the subscriptions that matched (server to client only).
        subscription_identifiers: Vec<u32> = SubscriptionIdentifier,
        /// MIME-like description of the payload.
        content_type: Option<ByteString> = ContentType,
    }

    /// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK (§3.4.2.2).
    AckProperties on PubAck {
        /// Human-readable diagnostics.
        reason_string: Option<ByteString> = ReasonString,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
    }

    /// Properties of SUBSCRIBE (§3.8.2.1).
    SubscribeProperties on Subscribe {
        /// Identifier attached to every message delivered through these subscriptions.
        subscription_identifier: Option<u32> = SubscriptionIdentifier,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
    }

    /// Properties of UNSUBSCRIBE (§3.10.2.1).
    UnsubscribeProperties on Unsubscribe {
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
    }

    /// Properties of DISCONNECT (§3.14.2.2).
    DisconnectProperties on Disconnect {
        /// New session expiry interval (client to server only, [MQTT-3.14.2-2]).
        session_expiry_interval: Option<u32> = SessionExpiryInterval,
        /// Human-readable diagnostics.
        reason_string: Option<ByteString> = ReasonString,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
        /// Another server to use.
        server_reference: Option<ByteString> = ServerReference,
    }

    /// Properties of AUTH (§3.15.2.2).
    AuthProperties on Auth {
        /// Extended authentication method.
        authentication_method: Option<ByteString> = AuthenticationMethod,
        /// Extended authentication data.
        authentication_data: Option<Bytes> = AuthenticationData,
        /// Human-readable diagnostics.
        reason_string: Option<ByteString> = ReasonString,
        /// User properties, in order.
        user_properties: Vec<UserProperty> = UserProperty,
    }
}

impl AckProperties {
    /// Decodes ack properties, reporting a misplaced property against `packet`.
    pub(crate) fn decode_for(r: &mut Reader, packet: PacketType) -> Result<Self, DecodeError> {
        Self::decode(r).map_err(|e| match e {
            DecodeError::PropertyNotAllowed { property, .. } => {
                DecodeError::PropertyNotAllowed { property, packet }
            }
            other => other,
        })
    }
}

/// Properties that most packets carry none of, boxed: a packet without any holds one
/// pointer instead of the whole set ([`PublishProperties`] is 160 bytes, and a PUBLISH
/// is moved several times on its way through a broker). Reads see the empty set; the
/// first write through `DerefMut` allocates it.
#[derive(Clone, Default)]
pub struct Rare<T>(Option<Box<T>>);

/// Equal when the sets are: an allocated empty set equals none.
impl<T: EmptySet> PartialEq for Rare<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: EmptySet + Eq> Eq for Rare<T> {}

/// A property set with a `'static` empty value, for [`Rare`] to lend.
pub trait EmptySet: Default + PartialEq + 'static {
    /// No property set.
    const EMPTY: &'static Self;
}

impl EmptySet for PublishProperties {
    const EMPTY: &'static Self = &PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    };
}

impl<T: EmptySet> Rare<T> {
    /// The set if one is allocated: for clearing properties without allocating a set
    /// only to clear it.
    pub fn existing_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// Whether no property is set (nothing allocated, or an empty set).
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(|set| set == T::EMPTY)
    }
}

impl<T: EmptySet> std::ops::Deref for Rare<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::EMPTY)
    }
}

impl<T: EmptySet> std::ops::DerefMut for Rare<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: EmptySet> From<T> for Rare<T> {
    fn from(set: T) -> Self {
        Rare((&set != T::EMPTY).then(|| Box::new(set)))
    }
}

impl<T: EmptySet + fmt::Debug> fmt::Debug for Rare<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod rare_tests {
    use super::*;

    /// A PUBLISH without properties holds none; reads see the empty set; the first
    /// write allocates it; an allocated empty set equals none.
    #[test]
    fn rare_properties_read_empty_and_allocate_on_write() {
        let mut none: Rare<PublishProperties> = Rare::default();
        assert!(none.is_empty());
        assert_eq!(none.topic_alias, None);
        assert!(none.existing_mut().is_none());
        assert!(
            Rare::from(PublishProperties::default())
                .existing_mut()
                .is_none()
        );
        let mut set = none.clone();
        set.topic_alias = Some(3);
        assert!(!set.is_empty());
        assert_ne!(set, none);
        set.existing_mut()
            .expect("allocated by the write")
            .topic_alias = None;
        assert_eq!(set, none, "an allocated empty set equals none");
        none.message_expiry_interval = Some(9);
        assert_eq!(
            Rare::from(PublishProperties {
                message_expiry_interval: Some(9),
                ..PublishProperties::default()
            }),
            none
        );
    }
}
