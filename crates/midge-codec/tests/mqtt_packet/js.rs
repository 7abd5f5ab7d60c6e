//! mqtt-packet's object model: [`to_js`] turns a packet that Midge decoded into the object
//! that mqtt-packet's parser emits for the same bytes, so that the two compare field by
//! field. The typed properties map to mqtt-packet's names here, both ways (`from_js.rs`
//! builds Midge packets from mqtt-packet's objects).
//!
//! The mapping follows mqtt-packet 9.0.2's `parser.js`:
//! * `retain`, `qos`, `dup` are the fixed-header flag bits, `length` the remaining length.
//!   `qos` is 1 on PUBREL, SUBSCRIBE and UNSUBSCRIBE, whose required flags are `0b0010`.
//! * `messageId` is the packet identifier. 5.0 reason codes are plain numbers
//!   (`reasonCode`, and `granted` on SUBACK and UNSUBACK). A 3.1.1 CONNACK has a
//!   `returnCode` and a 3.1.1 SUBACK the granted QoS in `granted`.
//! * 5.0 properties are camelCase keys, and the key is absent when there are none. Flags are
//!   booleans. `userProperties` maps each name to a string, or to an array when the name
//!   repeats, so it is compared as a multimap. `subscriptionIdentifier` on PUBLISH is a number,
//!   or an array when it repeats.
//! * Buffers are `{"$hex": …}`. Buffers over 1 MiB are compared in the fixture's compact
//!   form, `{"$prefix", "$fill", "$len"}`, so the 256 MiB payload never becomes a hex string.

use bytes::Bytes;
use midge_codec::{
    AckProperties, AuthProperties, ByteString, ConnAckProperties, Connect, ConnectProperties,
    DisconnectProperties, Packet, PacketType, ProtocolVersion, PublishProperties, QoS,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubscribeProperties,
    WillProperties,
};
use serde_json::{Map, Value, json};

pub(crate) type Object = Map<String, Value>;

/// Buffers longer than this are compared in compact form, the form the fixture stores them in.
const COMPACT_OVER: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// Buffers
// ---------------------------------------------------------------------------------------

pub(crate) fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(data.len() * 2);
    for &byte in data {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The compact form's fields.
fn compact_parts(object: &Object) -> Option<(Vec<u8>, u8, usize)> {
    let prefix = unhex(object.get("$prefix")?.as_str()?);
    let fill = *unhex(object.get("$fill")?.as_str()?).first()?;
    let len = usize::try_from(object.get("$len")?.as_u64()?).ok()?;
    Some((prefix, fill, len))
}

/// The bytes of a fixture buffer: `{"$hex"}` or the compact form. A compact run of zeros
/// comes from `vec![0; len]`, which the allocator hands out as untouched zero pages, so the
/// 256 MiB cases cost next to nothing until something writes them.
pub(crate) fn buffer_bytes(object: &Object) -> Option<Vec<u8>> {
    if let Some(text) = object.get("$hex") {
        return Some(unhex(text.as_str()?));
    }
    let (prefix, fill, len) = compact_parts(object)?;
    let mut data = vec![fill; len];
    data[..prefix.len()].copy_from_slice(&prefix);
    Some(data)
}

pub(crate) fn is_buffer(object: &Object) -> bool {
    object.contains_key("$hex") || object.contains_key("$prefix")
}

/// A binary field: a Buffer, or a string that mqtt-packet writes as UTF-8.
pub(crate) fn binary(value: &Value) -> Result<Bytes, String> {
    match value {
        Value::String(text) => Ok(Bytes::from(text.clone().into_bytes())),
        Value::Object(object) if is_buffer(object) => {
            Ok(Bytes::from(buffer_bytes(object).expect("a buffer")))
        }
        other => Err(format!("{other} is neither a buffer nor a string")),
    }
}

/// A case's top-level `bytes`: a hex string or a compact buffer.
pub(crate) fn wire_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(text) => unhex(text),
        Value::Object(object) => buffer_bytes(object).expect("a compact buffer"),
        other => panic!("bytes is {other}"),
    }
}

/// A buffer as it is compared: `{"$hex"}`, or over 1 MiB the compact form with the longest
/// trailing run. The run is found by comparing 4 KiB blocks (memcmp), not byte by byte.
pub(crate) fn buffer_js(data: &[u8]) -> Value {
    if data.len() <= COMPACT_OVER {
        return json!({ "$hex": hex(data) });
    }
    let fill = data[data.len() - 1];
    let block = [fill; 4096];
    let mut end = data.len();
    while end >= block.len() && data[end - block.len()..end] == block {
        end -= block.len();
    }
    while end > 0 && data[end - 1] == fill {
        end -= 1;
    }
    json!({ "$prefix": hex(&data[..end]), "$fill": hex(&[fill]), "$len": data.len() })
}

/// An expected value with its buffers in the form [`buffer_js`] gives, without expanding a
/// compact buffer.
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(object) if is_buffer(object) => match compact_parts(object) {
            Some((mut prefix, fill, len)) if len > COMPACT_OVER => {
                while prefix.last() == Some(&fill) {
                    prefix.pop();
                }
                json!({ "$prefix": hex(&prefix), "$fill": hex(&[fill]), "$len": len })
            }
            _ => buffer_js(&buffer_bytes(object).expect("a buffer")),
        },
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), canonical(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// One typed property field and its mqtt-packet value.
trait JsField: Sized {
    fn from_js(value: &Value) -> Result<Self, String>;
    /// `None` when the property is absent.
    fn to_js(&self) -> Option<Value>;
}

pub(crate) fn uint(value: &Value, max: u64) -> Result<u64, String> {
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(format!("{value} is not an integer in 0..={max}")),
    }
}

impl JsField for Option<u32> {
    fn from_js(value: &Value) -> Result<Self, String> {
        Ok(Some(uint(value, u32::MAX.into())? as u32))
    }
    fn to_js(&self) -> Option<Value> {
        self.map(Value::from)
    }
}

impl JsField for Option<u16> {
    fn from_js(value: &Value) -> Result<Self, String> {
        Ok(Some(uint(value, u16::MAX.into())? as u16))
    }
    fn to_js(&self) -> Option<Value> {
        self.map(Value::from)
    }
}

impl JsField for Option<bool> {
    fn from_js(value: &Value) -> Result<Self, String> {
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| format!("{value} is not a boolean"))
    }
    fn to_js(&self) -> Option<Value> {
        self.map(Value::from)
    }
}

/// Maximum QoS (mqtt-packet's `int8`).
impl JsField for Option<QoS> {
    fn from_js(value: &Value) -> Result<Self, String> {
        let n = uint(value, u8::MAX.into())? as u8;
        QoS::from_u8(n)
            .map(Some)
            .map_err(|_| format!("QoS {n} is not a QoS value"))
    }
    fn to_js(&self) -> Option<Value> {
        self.map(|qos| Value::from(qos as u8))
    }
}

impl JsField for Option<ByteString> {
    fn from_js(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Ok(Some(ByteString::from(text.as_str()))),
            other => Err(format!("{other} is not a string")),
        }
    }
    fn to_js(&self) -> Option<Value> {
        self.as_ref().map(|text| Value::from(&**text))
    }
}

impl JsField for Option<TopicName> {
    fn from_js(value: &Value) -> Result<Self, String> {
        let text = <Option<ByteString>>::from_js(value)?.expect("Some");
        TopicName::new(text).map(Some).map_err(|e| e.to_string())
    }
    fn to_js(&self) -> Option<Value> {
        self.as_ref().map(|topic| Value::from(topic.as_str()))
    }
}

impl JsField for Option<Bytes> {
    fn from_js(value: &Value) -> Result<Self, String> {
        binary(value).map(Some)
    }
    fn to_js(&self) -> Option<Value> {
        self.as_ref().map(|data| buffer_js(data))
    }
}

/// User properties: an object of name → value, or name → array of values.
impl JsField for Vec<(ByteString, ByteString)> {
    fn from_js(value: &Value) -> Result<Self, String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{value} is not an object"))?;
        let mut pairs = Vec::new();
        for (name, values) in object {
            let values = match values {
                Value::Array(values) => values.iter().collect(),
                single => vec![single],
            };
            for value in values {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("user property {name}: {value} is not a string"))?;
                pairs.push((ByteString::from(name.as_str()), ByteString::from(value)));
            }
        }
        Ok(pairs)
    }
    fn to_js(&self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        let mut object = Object::new();
        for (name, value) in self {
            match object.get_mut(&**name) {
                None => {
                    object.insert(name.to_string(), Value::from(&**value));
                }
                Some(Value::Array(values)) => values.push(Value::from(&**value)),
                Some(first) => *first = json!([first.take(), &**value]),
            }
        }
        Some(Value::Object(object))
    }
}

/// Subscription Identifiers on PUBLISH: a number, or an array when repeated.
impl JsField for Vec<u32> {
    fn from_js(value: &Value) -> Result<Self, String> {
        match value {
            Value::Array(values) => values
                .iter()
                .map(|v| uint(v, u32::MAX.into()).map(|n| n as u32))
                .collect(),
            single => Ok(vec![uint(single, u32::MAX.into())? as u32]),
        }
    }
    fn to_js(&self) -> Option<Value> {
        match self.as_slice() {
            [] => None,
            [one] => Some(Value::from(*one)),
            many => Some(Value::from(many.to_vec())),
        }
    }
}

/// A property struct and its mqtt-packet object.
pub(crate) trait JsProperties: Default {
    fn from_js(object: &Object) -> Result<Self, String>;
    fn to_js(&self) -> Object;
}

macro_rules! js_properties {
    ($($ty:ident { $($field:ident = $js:literal,)* })*) => {$(
        impl JsProperties for $ty {
            fn from_js(object: &Object) -> Result<Self, String> {
                let mut props = $ty::default();
                for (key, value) in object {
                    match key.as_str() {
                        $($js => {
                            props.$field = JsField::from_js(value)
                                .map_err(|why| format!("property {key}: {why}"))?;
                        })*
                        _ => {
                            return Err(format!(
                                "{} has no property {key}",
                                stringify!($ty)
                            ))
                        }
                    }
                }
                Ok(props)
            }

            fn to_js(&self) -> Object {
                let mut object = Object::new();
                $(if let Some(value) = JsField::to_js(&self.$field) {
                    object.insert($js.to_owned(), value);
                })*
                object
            }
        }
    )*};
}

js_properties! {
    ConnectProperties {
        session_expiry_interval = "sessionExpiryInterval",
        receive_maximum = "receiveMaximum",
        maximum_packet_size = "maximumPacketSize",
        topic_alias_maximum = "topicAliasMaximum",
        request_response_information = "requestResponseInformation",
        request_problem_information = "requestProblemInformation",
        user_properties = "userProperties",
        authentication_method = "authenticationMethod",
        authentication_data = "authenticationData",
    }
    WillProperties {
        will_delay_interval = "willDelayInterval",
        payload_format_indicator = "payloadFormatIndicator",
        message_expiry_interval = "messageExpiryInterval",
        content_type = "contentType",
        response_topic = "responseTopic",
        correlation_data = "correlationData",
        user_properties = "userProperties",
    }
    ConnAckProperties {
        session_expiry_interval = "sessionExpiryInterval",
        receive_maximum = "receiveMaximum",
        maximum_qos = "maximumQoS",
        retain_available = "retainAvailable",
        maximum_packet_size = "maximumPacketSize",
        assigned_client_identifier = "assignedClientIdentifier",
        topic_alias_maximum = "topicAliasMaximum",
        reason_string = "reasonString",
        user_properties = "userProperties",
        wildcard_subscription_available = "wildcardSubscriptionAvailable",
        subscription_identifiers_available = "subscriptionIdentifiersAvailable",
        shared_subscription_available = "sharedSubscriptionAvailable",
        server_keep_alive = "serverKeepAlive",
        response_information = "responseInformation",
        server_reference = "serverReference",
        authentication_method = "authenticationMethod",
        authentication_data = "authenticationData",
    }
    PublishProperties {
        payload_format_indicator = "payloadFormatIndicator",
        message_expiry_interval = "messageExpiryInterval",
        topic_alias = "topicAlias",
        response_topic = "responseTopic",
        correlation_data = "correlationData",
        user_properties = "userProperties",
        subscription_identifiers = "subscriptionIdentifier",
        content_type = "contentType",
    }
    AckProperties {
        reason_string = "reasonString",
        user_properties = "userProperties",
    }
    SubscribeProperties {
        subscription_identifier = "subscriptionIdentifier",
        user_properties = "userProperties",
    }
    UnsubscribeProperties {
        user_properties = "userProperties",
    }
    DisconnectProperties {
        session_expiry_interval = "sessionExpiryInterval",
        reason_string = "reasonString",
        user_properties = "userProperties",
        server_reference = "serverReference",
    }
    AuthProperties {
        authentication_method = "authenticationMethod",
        authentication_data = "authenticationData",
        reason_string = "reasonString",
        user_properties = "userProperties",
    }
}

// ---------------------------------------------------------------------------------------
// Midge -> mqtt-packet
// ---------------------------------------------------------------------------------------

fn cmd(kind: PacketType) -> &'static str {
    match kind {
        PacketType::Connect => "connect",
        PacketType::ConnAck => "connack",
        PacketType::Publish => "publish",
        PacketType::PubAck => "puback",
        PacketType::PubRec => "pubrec",
        PacketType::PubRel => "pubrel",
        PacketType::PubComp => "pubcomp",
        PacketType::Subscribe => "subscribe",
        PacketType::SubAck => "suback",
        PacketType::Unsubscribe => "unsubscribe",
        PacketType::UnsubAck => "unsuback",
        PacketType::PingReq => "pingreq",
        PacketType::PingResp => "pingresp",
        PacketType::Disconnect => "disconnect",
        PacketType::Auth => "auth",
    }
}

fn put(object: &mut Object, key: &str, value: impl Into<Value>) {
    object.insert(key.to_owned(), value.into());
}

/// Adds `properties` under `key` unless there are none, as mqtt-packet's parser does.
fn put_properties(object: &mut Object, key: &str, properties: &impl JsProperties) {
    let properties = properties.to_js();
    if !properties.is_empty() {
        put(object, key, properties);
    }
}

/// The object mqtt-packet's parser emits for `packet`, decoded under `version` from a
/// frame whose remaining length was `length`.
pub(crate) fn to_js(packet: &Packet, version: ProtocolVersion, length: usize) -> Value {
    let v5 = version.is_v5();
    let (retain, qos, dup) = match packet {
        Packet::Publish(p) => (p.retain, p.qos as u8, p.dup),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => (false, 1, false),
        _ => (false, 0, false),
    };
    let mut o = Object::new();
    put(&mut o, "cmd", cmd(packet.packet_type()));
    put(&mut o, "retain", retain);
    put(&mut o, "qos", qos);
    put(&mut o, "dup", dup);
    put(&mut o, "length", length);
    match packet {
        Packet::Connect(connect) => connect_to_js(connect, &mut o),
        Packet::ConnAck(connack) => {
            put(&mut o, "sessionPresent", connack.session_present);
            if v5 {
                put(&mut o, "reasonCode", connack.reason_code as u8);
                put_properties(&mut o, "properties", &connack.properties);
            } else {
                let code = connack.reason_code.to_connack_return_code();
                put(&mut o, "returnCode", code);
            }
        }
        Packet::Publish(publish) => {
            put(&mut o, "topic", publish.topic.as_str());
            put(&mut o, "payload", buffer_js(&publish.payload));
            if let Some(id) = publish.packet_id {
                put(&mut o, "messageId", id.get());
            }
            if v5 {
                put_properties(&mut o, "properties", &*publish.properties);
            }
        }
        Packet::PubAck(ack) | Packet::PubRec(ack) | Packet::PubRel(ack) | Packet::PubComp(ack) => {
            put(&mut o, "messageId", ack.packet_id.get());
            if v5 {
                put(&mut o, "reasonCode", ack.reason_code as u8);
                put_properties(&mut o, "properties", &ack.properties);
            }
        }
        Packet::Subscribe(subscribe) => {
            put(&mut o, "messageId", subscribe.packet_id.get());
            let subscriptions: Vec<Value> = subscribe
                .filters
                .iter()
                .map(|(filter, options)| subscription_to_js(filter, options, v5))
                .collect();
            put(&mut o, "subscriptions", subscriptions);
            if v5 {
                put_properties(&mut o, "properties", &subscribe.properties);
            }
        }
        Packet::SubAck(suback) => {
            put(&mut o, "messageId", suback.packet_id.get());
            let granted: Vec<u8> = suback
                .reason_codes
                .iter()
                .map(|&code| {
                    if v5 {
                        code as u8
                    } else {
                        code.to_suback_return_code()
                    }
                })
                .collect();
            put(&mut o, "granted", granted);
            if v5 {
                put_properties(&mut o, "properties", &suback.properties);
            }
        }
        Packet::Unsubscribe(unsubscribe) => {
            put(&mut o, "messageId", unsubscribe.packet_id.get());
            let filters: Vec<&str> = unsubscribe.filters.iter().map(|f| f.as_str()).collect();
            put(&mut o, "unsubscriptions", filters);
            if v5 {
                put_properties(&mut o, "properties", &unsubscribe.properties);
            }
        }
        Packet::UnsubAck(unsuback) => {
            put(&mut o, "messageId", unsuback.packet_id.get());
            if v5 {
                let granted: Vec<u8> = unsuback.reason_codes.iter().map(|&c| c as u8).collect();
                put(&mut o, "granted", granted);
                put_properties(&mut o, "properties", &unsuback.properties);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(disconnect) => {
            if v5 {
                put(&mut o, "reasonCode", disconnect.reason_code as u8);
                put_properties(&mut o, "properties", &disconnect.properties);
            }
        }
        Packet::Auth(auth) => {
            put(&mut o, "reasonCode", auth.reason_code as u8);
            put_properties(&mut o, "properties", &auth.properties);
        }
    }
    Value::Object(o)
}

fn connect_to_js(connect: &Connect, o: &mut Object) {
    let protocol_id = match connect.protocol {
        ProtocolVersion::V31 => "MQIsdp",
        ProtocolVersion::V311 | ProtocolVersion::V5 => "MQTT",
    };
    put(o, "protocolId", protocol_id);
    put(o, "protocolVersion", connect.protocol as u8);
    put(o, "clean", connect.clean_start);
    put(o, "keepalive", connect.keep_alive);
    if connect.protocol.is_v5() {
        put_properties(o, "properties", &connect.properties);
    }
    put(o, "clientId", &*connect.client_id);
    if let Some(will) = &connect.will {
        let mut w = Object::new();
        put(&mut w, "retain", will.retain);
        put(&mut w, "qos", will.qos as u8);
        if connect.protocol.is_v5() {
            put_properties(&mut w, "properties", &will.properties);
        }
        put(&mut w, "topic", will.topic.as_str());
        put(&mut w, "payload", buffer_js(&will.payload));
        put(o, "will", w);
    }
    if let Some(username) = &connect.username {
        put(o, "username", &**username);
    }
    if let Some(password) = &connect.password {
        put(o, "password", buffer_js(password));
    }
}

fn subscription_to_js(filter: &TopicFilter, options: &SubscriptionOptions, v5: bool) -> Value {
    let mut s = Object::new();
    put(&mut s, "topic", filter.as_str());
    put(&mut s, "qos", options.qos as u8);
    if v5 {
        put(&mut s, "nl", options.no_local);
        put(&mut s, "rap", options.retain_as_published);
        put(&mut s, "rh", options.retain_handling as u8);
    }
    Value::Object(s)
}
