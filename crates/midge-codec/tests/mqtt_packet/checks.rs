//! The checks behind `mqtt_packet.rs`: one function per kind of case, each returning what
//! Midge did where it differs from mqtt-packet, for the test to hold against the table.

use bytes::{Bytes, BytesMut};
use midge_codec::{DecodeError, Decoder, EncodeError, Packet, ProtocolVersion};
use serde_json::Value;

use crate::from_js::from_js;
use crate::js::{Object, canonical, hex, to_js, wire_bytes};
use crate::{DecodeRule, ENCODE_RULE, Expect, OTHER_RULE, SAME_RULE, Side};

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// One fixture case.
pub(crate) struct Case<'a> {
    pub(crate) json: &'a Object,
    pub(crate) id: u32,
    pub(crate) kind: &'a str,
    /// `protocol_version`, with null (mqtt-packet's default) and the invalid 1 as 3.1.1.
    version: ProtocolVersion,
}

impl<'a> Case<'a> {
    pub(crate) fn new(json: &'a Value) -> Self {
        let json = json.as_object().expect("a case is an object");
        let version = match json["protocol_version"].as_u64() {
            Some(3) => ProtocolVersion::V31,
            Some(5) => ProtocolVersion::V5,
            _ => ProtocolVersion::V311,
        };
        Case {
            json,
            id: json["id"].as_u64().expect("an id") as u32,
            kind: json["kind"].as_str().expect("a kind"),
            version,
        }
    }

    fn get(&self, key: &str) -> &'a Value {
        self.json
            .get(key)
            .filter(|value| !value.is_null())
            .unwrap_or_else(|| panic!("case {} has no {key}", self.id))
    }

    fn error(&self) -> &'a str {
        self.get("error").as_str().expect("error is a string")
    }
}

/// How Midge disagreed with mqtt-packet on one side of a case.
#[derive(Debug)]
pub(crate) enum Observed {
    /// The decoder failed where mqtt-packet parses.
    Rejects(DecodeError),
    /// The decoder succeeded (or waits for more bytes) where mqtt-packet fails.
    Accepts(String),
    /// Both parse, to different packets.
    ParsesDifferently(String),
    /// `from_js` failed.
    Unrepresentable(String),
    /// The encoder failed where mqtt-packet generates.
    EncodeFails(EncodeError),
    /// The encoder succeeded where mqtt-packet fails.
    Encodes(String),
    /// Other bytes, the same packet to Midge's decoder.
    EncodesEquivalent(String),
    /// Other bytes, another packet.
    EncodesDifferently(String),
}

impl Observed {
    pub(crate) fn describe(&self) -> String {
        match self {
            Observed::Rejects(error) => format!("the decoder fails: {error:?}"),
            Observed::Accepts(detail) => format!("the decoder does not fail: {detail}"),
            Observed::ParsesDifferently(detail) => format!("another packet: {detail}"),
            Observed::Unrepresentable(why) => format!("unrepresentable: {why}"),
            Observed::EncodeFails(error) => format!("the encoder fails: {error:?}"),
            Observed::Encodes(bytes) => format!("the encoder writes {bytes}"),
            Observed::EncodesEquivalent(detail) => format!("equivalent bytes: {detail}"),
            Observed::EncodesDifferently(detail) => format!("other bytes: {detail}"),
        }
    }

    pub(crate) fn is(&self, expect: &Expect) -> bool {
        match (self, expect) {
            (Observed::Rejects(error), Expect::Rejects(rule)) => (rule.matches)(error),
            (Observed::Unrepresentable(why), Expect::Unrepresentable(member)) => {
                why.contains(member)
            }
            (Observed::Encodes(_), Expect::Encodes)
            | (Observed::EncodesEquivalent(_), Expect::EncodesEquivalent) => true,
            _ => false,
        }
    }
}

pub(crate) type Outcome = Result<(), Observed>;

/// Problems that fail the test whatever the table says.
pub(crate) type Problems = Vec<String>;

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// The decoders that receive a packet starting with `first`: a server decoder that knows
/// `version` for packets clients send (a fresh one for CONNECT, which names its own),
/// a client decoder for packets servers send, and both for packets that go both ways.
fn decoders(first: u8, version: ProtocolVersion) -> Vec<Decoder> {
    let server = || {
        let mut decoder = Decoder::server();
        decoder.set_version(version);
        decoder
    };
    match first >> 4 {
        1 => vec![Decoder::server()],
        // SUBSCRIBE, UNSUBSCRIBE, PINGREQ.
        8 | 10 | 12 => vec![server()],
        // CONNACK, SUBACK, UNSUBACK, PINGRESP.
        2 | 9 | 11 | 13 => vec![Decoder::client(version)],
        // DISCONNECT: only clients send it before 5.0.
        14 if !version.is_v5() => vec![server()],
        _ => vec![server(), Decoder::client(version)],
    }
}

/// The remaining length in the fixed header at the front of `buf`, if it is all there.
fn remaining_length(buf: &[u8]) -> Option<usize> {
    let mut value = 0;
    for (i, &byte) in buf.iter().skip(1).take(4).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// What a decoder made of some bytes: the packets as mqtt-packet objects, the error that
/// stopped it, and how many bytes it left waiting.
#[derive(Debug, PartialEq)]
struct Drained {
    packets: Vec<Value>,
    error: Option<DecodeError>,
    left: usize,
}

/// Decodes packets from the front of `buf` until it runs dry or fails.
fn drain(decoder: &mut Decoder, buf: &mut BytesMut) -> Drained {
    let mut packets = Vec::new();
    let error = loop {
        let length = remaining_length(buf);
        match decoder.decode(buf) {
            Ok(Some(packet)) => {
                let version = match &packet {
                    Packet::Connect(connect) => connect.protocol,
                    _ => decoder.version().expect("a decoded packet has a version"),
                };
                let length = length.expect("a decoded packet has a fixed header");
                packets.push(to_js(&packet, version, length));
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    Drained {
        packets,
        error,
        left: buf.len(),
    }
}

/// A read buffer holding `bytes` without copying them.
fn read_buffer(bytes: Vec<u8>) -> BytesMut {
    BytesMut::from(Bytes::from(bytes))
}

/// Decodes `bytes` with every decoder that receives them; they must all agree.
fn decode(problems: &mut Problems, id: u32, bytes: &Value, version: ProtocolVersion) -> Drained {
    let first = wire_bytes(bytes)
        .first()
        .copied()
        .expect("bytes are not empty");
    let mut results = decoders(first, version).into_iter().map(|mut decoder| {
        let mut buf = read_buffer(wire_bytes(bytes));
        drain(&mut decoder, &mut buf)
    });
    let drained = results.next().expect("at least one decoder");
    for other in results {
        if other != drained {
            problems.push(format!(
                "case {id}: the server and client decoders disagree: {drained:?} / {other:?}"
            ));
        }
    }
    drained
}

/// mqtt-packet's object as `to_js` writes it: buffers in canonical form, and the `topic`
/// and `payload` that mqtt-packet leaves as null on packets other than PUBLISH dropped.
fn expected_js(packet: &Value) -> Value {
    let mut packet = canonical(packet);
    if let Value::Object(object) = &mut packet {
        if object.get("cmd") != Some(&Value::from("publish")) {
            for key in ["topic", "payload"] {
                if object.get(key) == Some(&Value::Null) {
                    object.remove(key);
                }
            }
        }
    }
    packet
}

/// The members where two objects differ, for messages.
fn diff(expected: &Value, actual: &Value) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|key| e.get(*key) != a.get(*key))
                .map(|key| {
                    let show = |v: Option<&Value>| v.map_or("(absent)".to_owned(), short);
                    format!(
                        "{key}: mqtt-packet {} / Midge {}",
                        show(e.get(key)),
                        show(a.get(key))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        _ => format!("mqtt-packet {} / Midge {}", short(expected), short(actual)),
    }
}

fn short(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 160 {
        text.truncate(160);
        text.push('…');
    }
    text
}

fn short_hex(data: &[u8]) -> String {
    if data.len() > 80 {
        format!("{}… ({} bytes)", hex(&data[..80]), data.len())
    } else {
        hex(data)
    }
}

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

/// `bytes` decode to exactly one packet, equal to `packet`.
fn check_parse(problems: &mut Problems, case: &Case<'_>, packet: &Value) -> Outcome {
    let drained = decode(problems, case.id, case.get("bytes"), case.version);
    if let Some(error) = drained.error {
        return Err(Observed::Rejects(error));
    }
    let expected = expected_js(packet);
    match drained.packets.as_slice() {
        [actual] if drained.left == 0 && *actual == expected => Ok(()),
        [actual] if drained.left == 0 => Err(Observed::ParsesDifferently(diff(&expected, actual))),
        _ => Err(Observed::ParsesDifferently(format!(
            "{} packets, {} bytes left",
            drained.packets.len(),
            drained.left
        ))),
    }
}

/// The Midge error expected for mqtt-packet's parse error `message` in case `id`.
fn rule_for(problems: &mut Problems, id: u32, message: &str) -> Option<DecodeRule> {
    let rule = OTHER_RULE
        .iter()
        .find(|(case, ..)| *case == id)
        .map(|(_, rule, _)| *rule)
        .or_else(|| {
            SAME_RULE
                .iter()
                .find(|(text, _)| *text == message)
                .map(|(_, rule)| *rule)
        });
    if rule.is_none() {
        problems.push(format!(
            "case {id}: no Midge rule listed for mqtt-packet's {message:?}"
        ));
    }
    rule
}

fn check_rule(problems: &mut Problems, id: u32, message: &str, error: &DecodeError) {
    if let Some(rule) = rule_for(problems, id, message) {
        if !(rule.matches)(error) {
            problems.push(format!(
                "case {id}: mqtt-packet {message:?}; Midge {error:?}, expected {}",
                rule.text
            ));
        }
    }
}

/// The decoder fails on `bytes`, by the expected rule.
fn check_parse_error(problems: &mut Problems, case: &Case<'_>) -> Outcome {
    let drained = decode(problems, case.id, case.get("bytes"), case.version);
    match &drained.error {
        Some(error) => {
            check_rule(problems, case.id, case.error(), error);
            Ok(())
        }
        None => Err(Observed::Accepts(format!(
            "{} packets ({}), {} bytes left waiting",
            drained.packets.len(),
            drained
                .packets
                .iter()
                .map(short)
                .collect::<Vec<_>>()
                .join(", "),
            drained.left
        ))),
    }
}

/// One decoder, fed the chunks one by one, emits the packets and the error mqtt-packet's
/// parser emitted for each. After an error mqtt-packet drops the rest of the chunk, and so
/// does the test (Midge leaves unspecified how much of a failed packet it consumed).
fn check_tape_parse(problems: &mut Problems, case: &Case<'_>) -> Outcome {
    let chunks = case.get("chunks").as_array().expect("chunks");
    let first = wire_bytes(&chunks[0]["bytes"])[0];
    let mut decoder = decoders(first, case.version).remove(0);
    let mut buf = BytesMut::new();
    for (i, chunk) in chunks.iter().enumerate() {
        buf.extend_from_slice(&wire_bytes(&chunk["bytes"]));
        let drained = drain(&mut decoder, &mut buf);
        let expected: Vec<Value> = chunk["packets"]
            .as_array()
            .expect("packets")
            .iter()
            .map(expected_js)
            .collect();
        if drained.packets != expected {
            let detail = if drained.packets.len() == expected.len() {
                (expected.iter().zip(&drained.packets))
                    .map(|(e, a)| diff(e, a))
                    .collect::<Vec<_>>()
                    .join(" | ")
            } else {
                format!(
                    "{} packets, expected {}",
                    drained.packets.len(),
                    expected.len()
                )
            };
            return Err(Observed::ParsesDifferently(format!("chunk {i}: {detail}")));
        }
        let message = chunk["errors"].as_array().expect("errors").first();
        match (drained.error, message.and_then(Value::as_str)) {
            (Some(error), Some(message)) => {
                check_rule(problems, case.id, message, &error);
                buf.clear();
            }
            (Some(error), None) => return Err(Observed::Rejects(error)),
            (None, Some(message)) => {
                return Err(Observed::Accepts(format!("chunk {i}: {message:?}")));
            }
            (None, None) => {
                // mqtt-packet returns the bytes it still holds; Midge holds whole frames
                // where mqtt-packet has already taken the fixed header, so compare only
                // whether anything is left.
                let returned = chunk["returned"].as_u64().expect("returned");
                if (returned == 0) != buf.is_empty() {
                    return Err(Observed::ParsesDifferently(format!(
                        "chunk {i}: mqtt-packet holds {returned} bytes, Midge {}",
                        buf.len()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `packet` encodes to exactly `bytes`.
fn check_generate(case: &Case<'_>, packet: &Value) -> Outcome {
    let packet = from_js(packet, case.version).map_err(Observed::Unrepresentable)?;
    let mut ours = BytesMut::new();
    packet
        .encode(case.version, &mut ours)
        .map_err(Observed::EncodeFails)?;
    let theirs = wire_bytes(case.get("bytes"));
    if ours[..] == theirs[..] {
        return Ok(());
    }
    let detail = format!(
        "Midge {} / mqtt-packet {}",
        short_hex(&ours),
        short_hex(&theirs)
    );
    // The same packet to Midge's decoder? (The remaining lengths differ, of course.)
    let read_back = |bytes: Vec<u8>| {
        let mut decoder = decoders(bytes[0], case.version).remove(0);
        let drained = drain(&mut decoder, &mut read_buffer(bytes));
        let mut packets = drained.packets;
        for packet in &mut packets {
            packet.as_object_mut().expect("an object").remove("length");
        }
        (packets, drained.error, drained.left)
    };
    let (ours, theirs) = (read_back(ours.to_vec()), read_back(theirs));
    if ours == theirs && ours.0.len() == 1 && ours.1.is_none() && ours.2 == 0 {
        Err(Observed::EncodesEquivalent(detail))
    } else {
        Err(Observed::EncodesDifferently(detail))
    }
}

/// `packet` does not encode.
fn check_generate_error(problems: &mut Problems, case: &Case<'_>) -> Outcome {
    let packet = from_js(case.get("packet"), case.version).map_err(Observed::Unrepresentable)?;
    let mut dst = BytesMut::new();
    match packet.encode(case.version, &mut dst) {
        Ok(()) => Err(Observed::Encodes(short_hex(&dst))),
        Err(error) => {
            let message = case.error();
            match ENCODE_RULE.iter().find(|(text, _)| *text == message) {
                Some((_, rule)) if (rule.matches)(&error) => {}
                Some((_, rule)) => problems.push(format!(
                    "case {}: mqtt-packet {message:?}; Midge {error:?}, expected {}",
                    case.id, rule.text
                )),
                None => problems.push(format!(
                    "case {}: no Midge encode rule listed for mqtt-packet's {message:?}",
                    case.id
                )),
            }
            Ok(())
        }
    }
}

/// Runs every side of a case.
pub(crate) fn check(problems: &mut Problems, case: &Case<'_>) -> Vec<(Side, Outcome)> {
    use Side::{Generate, Parse};
    let packet = || case.get("packet");
    match case.kind {
        "parse_generate" | "parse_and_generate" => vec![
            (Parse, check_parse(problems, case, packet())),
            (Generate, check_generate(case, packet())),
        ],
        "parse_generate_defaults" => vec![
            (
                Parse,
                check_parse(problems, case, case.get("parsed_packet")),
            ),
            (Generate, check_generate(case, packet())),
        ],
        "parse_only" => vec![(Parse, check_parse(problems, case, packet()))],
        "generate_only" | "tape_generate" | "tape_write_to_stream" => {
            vec![(Generate, check_generate(case, packet()))]
        }
        "parse_error" => vec![(Parse, check_parse_error(problems, case))],
        "tape_parse" => vec![(Parse, check_tape_parse(problems, case))],
        "generate_error" | "write_to_stream_error" => {
            vec![(Generate, check_generate_error(problems, case))]
        }
        other => {
            problems.push(format!("case {}: unknown kind {other:?}", case.id));
            Vec::new()
        }
    }
}
