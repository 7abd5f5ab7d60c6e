//! `-F %j`: the message as one JSON object, as mosquitto_sub 2.0 prints it through
//! cJSON (`json_print` in `client/sub_client_output.c`): `tst`, `topic`, `qos`,
//! `retain`, `payloadlen`, `mid` (QoS > 0), `properties` (5.0, when the message has
//! any), and the payload as a JSON string (cut at its first NUL byte, as a C string
//! is). `--pretty` gives cJSON's indented layout. `%J` (the payload parsed as JSON and
//! printed again) is not supported yet.

use midge_codec::Publish;

use super::clock::Tm;

/// Appends `message` as `%j` prints it.
pub(super) fn print(
    out: &mut Vec<u8>,
    message: &Publish,
    tm: &Tm,
    has_properties: bool,
    pretty: bool,
) {
    let mut fields: Vec<(&str, Value)> = vec![
        ("tst", Value::Str(tm.json_timestamp().into_bytes())),
        (
            "topic",
            Value::Str(message.topic.as_str().as_bytes().to_vec()),
        ),
        ("qos", Value::Int(message.qos as i64)),
        ("retain", Value::Int(i64::from(message.retain))),
        ("payloadlen", Value::Int(message.payload.len() as i64)),
    ];
    if let Some(id) = message.packet_id {
        fields.push(("mid", Value::Int(i64::from(id.get()))));
    }
    if has_properties {
        fields.push(("properties", Value::Object(properties(message))));
    }
    let payload = &message.payload[..];
    let payload = &payload[..payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len())];
    fields.push(("payload", Value::Str(payload.to_vec())));
    write(out, &Value::Object(fields), pretty, 1);
}

fn properties(message: &Publish) -> Vec<(&'static str, Value)> {
    let p = &message.properties;
    let mut fields = Vec::new();
    if let Some(v) = p.payload_format_indicator {
        fields.push(("payload-format-indicator", Value::Int(i64::from(v))));
    }
    if let Some(v) = p.message_expiry_interval {
        fields.push(("message-expiry-interval", Value::Int(i64::from(v))));
    }
    if let Some(v) = &p.response_topic {
        fields.push(("response-topic", Value::Str(v.as_str().as_bytes().to_vec())));
    }
    if let Some(v) = &p.correlation_data {
        let v = &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())];
        fields.push(("correlation-data", Value::Str(v.to_vec())));
    }
    if !p.user_properties.is_empty() {
        let users = p
            .user_properties
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.as_bytes().to_vec())))
            .collect();
        fields.push(("user-properties", Value::Named(users)));
    }
    for id in &p.subscription_identifiers {
        fields.push(("subscription-identifier", Value::Int(i64::from(*id))));
    }
    if let Some(v) = &p.content_type {
        fields.push(("content-type", Value::Str(v.as_bytes().to_vec())));
    }
    fields
}

enum Value {
    Int(i64),
    Str(Vec<u8>),
    Object(Vec<(&'static str, Value)>),
    Named(Vec<(String, Value)>),
}

/// cJSON's printer: `cJSON_PrintUnformatted`, or `cJSON_Print` (tabs) when `pretty`.
fn write(out: &mut Vec<u8>, value: &Value, pretty: bool, depth: usize) {
    match value {
        Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Str(s) => string(out, s),
        Value::Object(fields) => {
            let fields: Vec<(&str, &Value)> = fields.iter().map(|(k, v)| (*k, v)).collect();
            object(out, &fields, pretty, depth);
        }
        Value::Named(fields) => {
            let fields: Vec<(&str, &Value)> = fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
            object(out, &fields, pretty, depth);
        }
    }
}

fn object(out: &mut Vec<u8>, fields: &[(&str, &Value)], pretty: bool, depth: usize) {
    out.push(b'{');
    if pretty {
        out.push(b'\n');
    }
    for (n, (key, value)) in fields.iter().enumerate() {
        if pretty {
            out.extend(std::iter::repeat_n(b'\t', depth));
        }
        string(out, key.as_bytes());
        out.push(b':');
        if pretty {
            out.push(b'\t');
        }
        write(out, value, pretty, depth + 1);
        if n + 1 < fields.len() {
            out.push(b',');
        }
        if pretty {
            out.push(b'\n');
        }
    }
    if pretty {
        out.extend(std::iter::repeat_n(b'\t', depth - 1));
    }
    out.push(b'}');
}

/// cJSON's `print_string_ptr`: `"` `\` and control characters escaped, the rest raw.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 32 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}
