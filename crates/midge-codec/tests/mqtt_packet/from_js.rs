//! mqtt-packet's objects as Midge packets: [`from_js`] builds Midge's [`Packet`] from the
//! object that mqtt-packet's `generate` takes, with `generate`'s defaults (`writeToStream.js`
//! of mqtt-packet 9.0.2), or says why Midge's typed model cannot hold it. mqtt-packet checks
//! JavaScript types at run time; here a value of the wrong type (a keep alive of `"hello"`,
//! a `messageId` of `"a"`) has no Rust value to become.

use bytes::Bytes;
use midge_codec::{
    Ack, AckProperties, Auth, ByteString, ConnAck, ConnAckProperties, Connect, Disconnect,
    DisconnectProperties, LastWill, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode,
    RetainHandling, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter,
    TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, WillProperties,
};
use serde_json::Value;

use crate::js::{JsProperties, Object, binary, buffer_bytes, is_buffer, uint};

/// A member that is present and not `null`.
fn member<'a>(o: &'a Object, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|value| !value.is_null())
}

/// A flag that mqtt-packet reads for its truthiness; Midge takes booleans only.
fn flag(o: &Object, key: &str) -> Result<bool, String> {
    match member(o, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{key} is {other}, not a boolean")),
    }
}

fn number(o: &Object, key: &str, max: u64) -> Result<Option<u64>, String> {
    member(o, key)
        .map(|value| uint(value, max).map_err(|why| format!("{key}: {why}")))
        .transpose()
}

/// A string field; mqtt-packet also takes a Buffer of UTF-8 for most of them.
fn string(value: &Value) -> Result<ByteString, String> {
    match value {
        Value::String(text) => Ok(ByteString::from(text.as_str())),
        Value::Object(object) if is_buffer(object) => {
            let data = buffer_bytes(object).expect("a buffer");
            String::from_utf8(data)
                .map(ByteString::from)
                .map_err(|_| "a buffer that is not UTF-8".to_owned())
        }
        other => Err(format!("{other} is neither a string nor a buffer")),
    }
}

fn packet_id(o: &Object) -> Result<PacketId, String> {
    let id = number(o, "messageId", u16::MAX.into())?
        .ok_or("messageId is missing: Midge's packet identifiers are not optional")?;
    PacketId::new(id as u16).ok_or_else(|| "messageId 0 is not a packet identifier".to_owned())
}

fn qos(value: u64) -> Result<QoS, String> {
    u8::try_from(value)
        .ok()
        .and_then(|n| QoS::from_u8(n).ok())
        .ok_or_else(|| format!("QoS {value} is not a QoS value"))
}

fn reason(code: u64) -> Result<ReasonCode, String> {
    u8::try_from(code)
        .ok()
        .and_then(ReasonCode::from_u8)
        .ok_or_else(|| format!("{code} is not a reason code"))
}

/// Properties under `key`; mqtt-packet treats anything but an object as none.
fn properties<P: JsProperties>(o: &Object, key: &str) -> Result<P, String> {
    match member(o, key) {
        Some(Value::Object(object)) => P::from_js(object),
        _ => Ok(P::default()),
    }
}

/// mqtt-packet writes DUP on these packets when asked to; Midge's model has no DUP there
/// (the flags are reserved, [MQTT-2.1.3-1]).
fn no_dup(o: &Object, cmd: &str) -> Result<(), String> {
    if flag(o, "dup")? {
        Err(format!(
            "dup on {cmd}: the fixed-header flags of {cmd} are reserved"
        ))
    } else {
        Ok(())
    }
}

/// Midge's packet for mqtt-packet's object, generated with `opts.protocolVersion ==
/// version` (CONNECT takes its own `protocolVersion`), or why the typed model cannot hold it.
pub(crate) fn from_js(value: &Value, version: ProtocolVersion) -> Result<Packet, String> {
    let o = value.as_object().ok_or("the packet is not an object")?;
    let cmd = match member(o, "cmd") {
        None => return Err("no cmd: every Packet has a type".to_owned()),
        Some(Value::String(cmd)) => cmd.as_str(),
        Some(other) => return Err(format!("cmd {other} is not a packet type")),
    };
    let v5 = version.is_v5();
    let packet = match cmd {
        "connect" => Packet::Connect(Box::new(connect_from_js(o)?)),
        "connack" => Packet::ConnAck(Box::new(connack_from_js(o, v5)?)),
        "publish" => Packet::Publish(publish_from_js(o, v5)?),
        "puback" => Packet::PubAck(ack_from_js(o, v5)?),
        "pubrec" => Packet::PubRec(ack_from_js(o, v5)?),
        "pubrel" => Packet::PubRel(ack_from_js(o, v5)?),
        "pubcomp" => Packet::PubComp(ack_from_js(o, v5)?),
        "subscribe" => Packet::Subscribe(subscribe_from_js(o, v5)?),
        "suback" => Packet::SubAck(suback_from_js(o, v5)?),
        "unsubscribe" => Packet::Unsubscribe(unsubscribe_from_js(o, v5)?),
        "unsuback" => Packet::UnsubAck(unsuback_from_js(o, v5)?),
        "pingreq" => Packet::PingReq,
        "pingresp" => Packet::PingResp,
        "disconnect" => Packet::Disconnect(Disconnect {
            reason_code: reason_code(o, v5)?,
            properties: if v5 {
                properties(o, "properties")?
            } else {
                DisconnectProperties::default()
            },
        }),
        "auth" => Packet::Auth(Auth {
            reason_code: reason_code(o, true)?,
            properties: properties(o, "properties")?,
        }),
        other => return Err(format!("cmd {other:?} is not a packet type")),
    };
    if matches!(cmd, "pubrel" | "subscribe" | "unsubscribe" | "unsuback") {
        no_dup(o, cmd)?;
    }
    Ok(packet)
}

/// The 5.0 `reasonCode` of an ack, DISCONNECT or AUTH; mqtt-packet writes 0 when absent.
fn reason_code(o: &Object, v5: bool) -> Result<ReasonCode, String> {
    if !v5 {
        return Ok(ReasonCode::Success);
    }
    match number(o, "reasonCode", u8::MAX.into())? {
        None => Ok(ReasonCode::Success),
        Some(code) => reason(code),
    }
}

fn connect_from_js(o: &Object) -> Result<Connect, String> {
    if flag(o, "bridgeMode")? {
        return Err("bridgeMode: protocol level with bit 7 set (Mosquitto bridges)".to_owned());
    }
    let protocol_id = match member(o, "protocolId") {
        None => "MQTT",
        Some(Value::String(id)) => id.as_str(),
        Some(other) => return Err(format!("protocolId {other} is not a string")),
    };
    let level = number(o, "protocolVersion", u64::MAX)?.unwrap_or(4);
    let protocol = match (protocol_id, level) {
        ("MQIsdp", 3) => ProtocolVersion::V31,
        ("MQTT", 4) => ProtocolVersion::V311,
        ("MQTT", 5) => ProtocolVersion::V5,
        (id, level) => {
            return Err(format!(
                "protocol {id:?} level {level}: Midge's ProtocolVersion is one of MQIsdp 3, \
                 MQTT 4, MQTT 5"
            ));
        }
    };
    let client_id = member(o, "clientId")
        .map(string)
        .transpose()
        .map_err(|why| format!("clientId: {why}"))?
        .unwrap_or_default();
    let mut connect = Connect::new(protocol, client_id);
    connect.clean_start = match member(o, "clean") {
        None => true,
        Some(_) => flag(o, "clean")?,
    };
    connect.keep_alive = number(o, "keepalive", u16::MAX.into())?.unwrap_or(0) as u16;
    if protocol.is_v5() {
        connect.properties = properties(o, "properties")?;
    }
    if let Some(will) = member(o, "will") {
        connect.will = Some(will_from_js(will, protocol.is_v5())?);
    }
    if let Some(username) = member(o, "username") {
        connect.username = Some(string(username).map_err(|why| format!("username: {why}"))?);
    }
    if let Some(password) = member(o, "password") {
        connect.password = Some(binary(password).map_err(|why| format!("password: {why}"))?);
    }
    Ok(connect)
}

fn will_from_js(will: &Value, v5: bool) -> Result<LastWill, String> {
    let w = will
        .as_object()
        .ok_or_else(|| format!("will {will} is not an object"))?;
    let topic = member(w, "topic").ok_or("will without a topic: LastWill::topic is required")?;
    let topic = TopicName::new(string(topic).map_err(|why| format!("will topic: {why}"))?)
        .map_err(|e| e.to_string())?;
    let payload = match member(w, "payload") {
        None => Bytes::new(),
        Some(payload) => binary(payload).map_err(|why| format!("will payload: {why}"))?,
    };
    Ok(LastWill {
        topic,
        payload,
        qos: qos(number(w, "qos", u64::MAX)?.unwrap_or(0))?,
        retain: flag(w, "retain")?,
        properties: if v5 {
            properties(w, "properties")?
        } else {
            WillProperties::default()
        },
    })
}

fn connack_from_js(o: &Object, v5: bool) -> Result<ConnAck, String> {
    let code_key = if v5 { "reasonCode" } else { "returnCode" };
    let code = match member(o, code_key) {
        Some(code) => uint(code, u8::MAX.into()).map_err(|why| format!("{code_key}: {why}"))?,
        None => return Err(format!("{code_key} is missing")),
    };
    let reason_code = if v5 {
        reason(code)?
    } else {
        ReasonCode::from_connack_return_code(code as u8)
            .ok_or_else(|| format!("3.1.1 CONNACK return code {code} does not exist"))?
    };
    Ok(ConnAck {
        session_present: flag(o, "sessionPresent")?,
        reason_code,
        properties: if v5 {
            properties(o, "properties")?
        } else {
            ConnAckProperties::default()
        },
    })
}

fn publish_from_js(o: &Object, v5: bool) -> Result<Publish, String> {
    let topic = member(o, "topic").ok_or("publish without a topic")?;
    let topic = TopicName::new(string(topic).map_err(|why| format!("topic: {why}"))?)
        .map_err(|e| e.to_string())?;
    let mut publish = Publish::new(topic, Bytes::new());
    if let Some(payload) = member(o, "payload") {
        publish.payload = binary(payload).map_err(|why| format!("payload: {why}"))?;
    }
    publish.qos = qos(number(o, "qos", u64::MAX)?.unwrap_or(0))?;
    publish.dup = flag(o, "dup")?;
    publish.retain = flag(o, "retain")?;
    // mqtt-packet writes messageId only for QoS 1 and 2.
    if publish.qos != QoS::AtMostOnce {
        publish.packet_id = Some(packet_id(o)?);
    }
    if v5 {
        publish.properties = properties::<midge_codec::PublishProperties>(o, "properties")?.into();
    }
    Ok(publish)
}

fn ack_from_js(o: &Object, v5: bool) -> Result<Ack, String> {
    Ok(Ack {
        packet_id: packet_id(o)?,
        reason_code: reason_code(o, v5)?,
        properties: if v5 {
            properties(o, "properties")?
        } else {
            AckProperties::default()
        },
    })
}

fn array<'a>(o: &'a Object, key: &str) -> Result<&'a Vec<Value>, String> {
    match member(o, key) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{key} is {other}, not an array")),
        None => Err(format!("{key} is missing")),
    }
}

fn subscribe_from_js(o: &Object, v5: bool) -> Result<Subscribe, String> {
    let packet_id = packet_id(o)?;
    let mut filters = Vec::new();
    for item in array(o, "subscriptions")? {
        let s = item
            .as_object()
            .ok_or_else(|| format!("subscription {item} is not an object"))?;
        let topic = member(s, "topic").ok_or("subscription without a topic")?;
        let filter = match topic {
            Value::String(topic) => TopicFilter::new(topic.as_str()).map_err(|e| e.to_string())?,
            other => return Err(format!("subscription topic {other} is not a string")),
        };
        let mut options = SubscriptionOptions::new(qos(
            number(s, "qos", u64::MAX)?.ok_or("subscription without a qos")?
        )?);
        // mqtt-packet writes No Local, Retain As Published and Retain Handling in 5.0 only.
        if v5 {
            options.no_local = flag(s, "nl")?;
            options.retain_as_published = flag(s, "rap")?;
            options.retain_handling = match number(s, "rh", u64::MAX)?.unwrap_or(0) {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendAtSubscribeIfNew,
                2 => RetainHandling::DoNotSend,
                rh => return Err(format!("retain handling {rh} does not exist")),
            };
        }
        filters.push((filter, options));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties: if v5 {
            properties(o, "properties")?
        } else {
            SubscribeProperties::default()
        },
    })
}

fn codes(o: &Object, v5: bool) -> Result<Vec<ReasonCode>, String> {
    array(o, "granted")?
        .iter()
        .map(|code| {
            let code = uint(code, u8::MAX.into()).map_err(|why| format!("granted: {why}"))?;
            match (v5, code) {
                (true, code) => reason(code),
                (false, 0) => Ok(ReasonCode::Success),
                (false, 1) => Ok(ReasonCode::GrantedQoS1),
                (false, 2) => Ok(ReasonCode::GrantedQoS2),
                (false, 0x80) => Ok(ReasonCode::UnspecifiedError),
                (false, code) => Err(format!("3.1.1 SUBACK return code {code} does not exist")),
            }
        })
        .collect()
}

fn suback_from_js(o: &Object, v5: bool) -> Result<SubAck, String> {
    Ok(SubAck {
        packet_id: packet_id(o)?,
        reason_codes: codes(o, v5)?,
        properties: if v5 {
            properties(o, "properties")?
        } else {
            AckProperties::default()
        },
    })
}

fn unsubscribe_from_js(o: &Object, v5: bool) -> Result<Unsubscribe, String> {
    let packet_id = packet_id(o)?;
    let filters = array(o, "unsubscriptions")?
        .iter()
        .map(|filter| match filter {
            Value::String(filter) => TopicFilter::new(filter.as_str()).map_err(|e| e.to_string()),
            other => Err(format!("unsubscription {other} is not a string")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties: if v5 {
            properties(o, "properties")?
        } else {
            UnsubscribeProperties::default()
        },
    })
}

fn unsuback_from_js(o: &Object, v5: bool) -> Result<UnsubAck, String> {
    Ok(UnsubAck {
        packet_id: packet_id(o)?,
        // mqtt-packet reads `granted` in 5.0 only.
        reason_codes: if v5 { codes(o, v5)? } else { Vec::new() },
        properties: if v5 {
            properties(o, "properties")?
        } else {
            AckProperties::default()
        },
    })
}
