//! Midge's codec against the test vectors of mqtt-packet 9.0.2, the MQTT codec of MQTT.js.
//!
//! `fixtures/mqtt-packet-v9.json` holds all 177 cases of mqtt-packet's `test.js`, extracted by
//! `scripts/extract-mqtt-packet-vectors` (its README describes the format). Every case either
//! agrees with Midge, or is listed in [`DISAGREEMENTS`] with the reason Midge differs on
//! purpose. The test fails if a listed case agrees after all, or disagrees in another way
//! than listed, so the table cannot go stale.
//!
//! What "agrees" means for each kind of case:
//! * parse (`parse_generate`, `parse_only`, `parse_and_generate`, `parse_generate_defaults`,
//!   `tape_parse`): the decoder of the side that receives the packet decodes the bytes. That
//!   is a server decoder that knows the case's version for packets clients send (a fresh
//!   `Decoder::server()` for CONNECT), and `Decoder::client(version)` for packets servers
//!   send. Packets that travel both ways go through both decoders, which must agree. The
//!   packet, in mqtt-packet's object model (`js::to_js`), must equal the case's packet field
//!   by field. A `tape_parse` case feeds its chunks one by one to one decoder.
//! * generate (`parse_generate`, `generate_only`, `parse_and_generate`,
//!   `parse_generate_defaults`, `tape_generate`, `tape_write_to_stream`): `from_js` builds
//!   Midge's `Packet` from the case's object, and `Packet::encode` must write exactly `bytes`.
//! * `parse_error`: the decoder must fail with the Midge error of the same rule
//!   ([`SAME_RULE`]), or, where the bytes also break a rule that Midge checks first, with the
//!   error listed for the case in [`OTHER_RULE`].
//! * `generate_error`, `write_to_stream_error`: `Packet::encode` must fail ([`ENCODE_RULE`]
//!   names the error). Most of these packets hold values of the wrong JavaScript type (a
//!   keep alive of `"hello"`), which Midge's typed model cannot hold: they are listed as such.
//!
//! Run with `--nocapture` for the summary: agreements and disagreements per kind, and the
//! disagreements grouped by reason.
//!
//! Layout: this file holds the tables and the test; `mqtt_packet/checks.rs` the checks per
//! kind of case; `mqtt_packet/js.rs` mqtt-packet's object model for decoded packets and
//! buffers; `mqtt_packet/from_js.rs` Midge packets built from mqtt-packet's objects.

#[path = "mqtt_packet/checks.rs"]
mod checks;
#[path = "mqtt_packet/from_js.rs"]
mod from_js;
#[path = "mqtt_packet/js.rs"]
mod js;

use std::collections::BTreeMap;

use midge_codec::{DecodeError, EncodeError, PacketType, PropertyId};
use serde_json::Value;

use checks::{Case, Problems, check};

const FIXTURE: &str = include_str!("fixtures/mqtt-packet-v9.json");

// ---------------------------------------------------------------------------------------
// What Midge does differently, on purpose
// ---------------------------------------------------------------------------------------

/// Which half of a case: decoding its `bytes`, or encoding its `packet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Parse,
    Generate,
}

use Side::{Generate, Parse};

/// A [`DecodeError`] pattern, with its text for messages.
#[derive(Clone, Copy)]
struct DecodeRule {
    matches: fn(&DecodeError) -> bool,
    text: &'static str,
}

/// An [`EncodeError`] pattern, with its text for messages.
#[derive(Clone, Copy)]
struct EncodeRule {
    matches: fn(&EncodeError) -> bool,
    text: &'static str,
}

/// `decode_rule!(pattern)`: a [`DecodeRule`] matching `pattern`.
macro_rules! decode_rule {
    ($pattern:pat) => {{
        fn matches(error: &DecodeError) -> bool {
            matches!(error, $pattern)
        }
        DecodeRule {
            matches,
            text: stringify!($pattern),
        }
    }};
}

/// `encode_rule!(pattern)`: an [`EncodeRule`] matching `pattern`.
macro_rules! encode_rule {
    ($pattern:pat) => {{
        fn matches(error: &EncodeError) -> bool {
            matches!(error, $pattern)
        }
        EncodeRule {
            matches,
            text: stringify!($pattern),
        }
    }};
}

/// How a listed case disagrees: what the test must observe.
#[derive(Clone, Copy)]
enum Expect {
    /// Midge's decoder rejects bytes that mqtt-packet parses, with this error.
    Rejects(DecodeRule),
    /// Midge's typed model cannot hold mqtt-packet's object; `from_js`'s reason names this
    /// member.
    Unrepresentable(&'static str),
    /// Midge encodes a packet that mqtt-packet refuses to generate.
    Encodes,
    /// Midge writes other bytes than mqtt-packet, which Midge's decoder reads back as the
    /// same packet.
    EncodesEquivalent,
}

use Expect::{Encodes, EncodesEquivalent, Rejects, Unrepresentable};

/// One side of one case where Midge differs from mqtt-packet on purpose.
struct Disagreement {
    id: u32,
    side: Side,
    expect: Expect,
    why: &'static str,
}

const fn d(id: u32, side: Side, expect: Expect, why: &'static str) -> Disagreement {
    Disagreement {
        id,
        side,
        expect,
        why,
    }
}

use DecodeError as E;
use PacketType as T;

const BRIDGE: &str = "bridgeMode (protocol level 0x83 or 0x84: bit 7 set) is a Mosquitto \
    bridge extension that no MQTT specification has. Midge refuses the level \
    ([MQTT-3.1.2-2]), and its ProtocolVersion has no bridge flag. Case 12 also pairs \
    \"MQIsdp\" with level 4.";
const CONNACK_V4_IN_V5: &str = "0x01 is a 3.1.1 return code. As a 5.0 Connect Reason Code it \
    is not one of the allowed values ([MQTT-3.2.2-8]), and the Property Length is missing \
    as well.";
const CONNACK_V5_LAYOUT: &str = "a 5.0 CONNACK always carries its Connect Reason Code and \
    its Property Length (§3.2.2). Only the PUBACK family, DISCONNECT and AUTH may omit them \
    (§3.4.2.1, §3.14.2.1, §3.15.2.1). mqtt-packet reads a missing code or length as 0.";
const MAXIMUM_QOS_2: &str = "Maximum QoS 2 in a CONNACK. The spec says: \"It is a Protocol \
    Error to include Maximum QoS more than once, or to have a value other than 0 or 1\" \
    (§3.2.2.3.4). An absent Maximum QoS means 2. mqtt-packet writes and accepts 2. Midge's \
    encoder also writes the 2 it is given, so the generate half of these cases agrees.";
const SHORT_DISCONNECT: &str = "Midge writes the shorter encoding: a 5.0 DISCONNECT with \
    reason 0x00 and no properties has remaining length 0 (§3.14.2.1). mqtt-packet writes \
    the reason code and an empty Property Length. Midge decodes both to the same packet.";
const SHORT_ACK: &str = "Midge writes the shorter encoding: a 5.0 PUBACK with a reason code \
    and no properties has remaining length 3 (\"If the Remaining Length is less than 4 \
    there is no Property Length\", §3.4.2.2.1). mqtt-packet adds an empty Property Length. \
    Midge decodes both to the same packet.";
const CLIENT_ID_3_1: &str = "the 1 to 23 character client identifier of 3.1 is the \
    server's check (CONNACK 0x02, identifier rejected), not part of the wire format. The \
    codec writes and reads an empty one; the decoder has to accept it so that a broker can \
    answer it.";
const CLIENT_ID_CLEAN: &str = "an empty client identifier with CleanSession 0 breaks a \
    client rule ([MQTT-3.1.3-7]), and the server answers it with CONNACK 0x02 \
    ([MQTT-3.1.3-8]). The bytes are well-formed, so the codec writes and reads them; the \
    policy belongs to the client and the broker.";
const NO_TYPE: &str = "a Packet always has one of the packet types. mqtt-packet's object \
    with no cmd, or with cmd \"invalid\", has no Packet to become.";
const JS_TYPES: &str = "mqtt-packet checks JavaScript types at run time. In Midge's typed \
    model the value cannot exist: a string or a fraction where a u16 goes, a negative \
    number for a u32, \"a\" as a PacketId, a protocol name outside ProtocolVersion, 42 as \
    a will, user name or password.";
const WILL_TOPIC_REQUIRED: &str = "LastWill::topic is required, so a will without a topic \
    cannot be built.";

/// Every side of a case where Midge differs from mqtt-packet, and why. Keyed on the case id
/// (names repeat in the fixture).
#[rustfmt::skip]
const DISAGREEMENTS: &[Disagreement] = &[
    // Mosquitto's bridge protocol levels.
    d(11, Parse, Rejects(decode_rule!(E::UnsupportedProtocolLevel(131))), BRIDGE),
    d(11, Generate, Unrepresentable("bridgeMode"), BRIDGE),
    d(12, Parse, Rejects(decode_rule!(E::UnsupportedProtocolLevel(132))), BRIDGE),
    d(12, Generate, Unrepresentable("bridgeMode"), BRIDGE),
    // The specification is stricter than mqtt-packet's parser.
    d(22, Parse, Rejects(decode_rule!(E::InvalidReasonCode { packet: T::ConnAck, code: 1 })), CONNACK_V4_IN_V5),
    d(27, Parse, Rejects(decode_rule!(E::Truncated)), CONNACK_V5_LAYOUT),
    d(28, Parse, Rejects(decode_rule!(E::Truncated)), CONNACK_V5_LAYOUT),
    d(63, Parse, Rejects(decode_rule!(E::InvalidPropertyValue { property: PropertyId::MaximumQoS, value: 2 })), MAXIMUM_QOS_2),
    d(64, Parse, Rejects(decode_rule!(E::InvalidPropertyValue { property: PropertyId::MaximumQoS, value: 2 })), MAXIMUM_QOS_2),
    // Midge's encoder writes the shorter of two valid encodings.
    d(32, Generate, EncodesEquivalent, SHORT_DISCONNECT),
    d(134, Generate, EncodesEquivalent, SHORT_DISCONNECT),
    d(89, Generate, EncodesEquivalent, SHORT_ACK),
    // mqtt-packet's encoder enforces client policy that Midge leaves to client and broker.
    d(140, Generate, Encodes, CLIENT_ID_3_1),
    d(141, Generate, Encodes, CLIENT_ID_CLEAN),
    // Generate errors about values that Midge's types cannot hold.
    d(1, Generate, Unrepresentable("cmd"), NO_TYPE),
    d(162, Generate, Unrepresentable("cmd"), NO_TYPE),
    d(69, Generate, Unrepresentable("returnCode"), JS_TYPES),
    d(120, Generate, Unrepresentable("unsubscriptions"), JS_TYPES),
    d(121, Generate, Unrepresentable("unsubscription 1"), JS_TYPES),
    d(138, Generate, Unrepresentable("protocolId"), JS_TYPES),
    d(139, Generate, Unrepresentable("level 1"), JS_TYPES),
    d(142, Generate, Unrepresentable("keepalive"), JS_TYPES),
    d(143, Generate, Unrepresentable("keepalive"), JS_TYPES),
    d(144, Generate, Unrepresentable("will"), JS_TYPES),
    d(145, Generate, Unrepresentable("will without a topic"), WILL_TOPIC_REQUIRED),
    d(146, Generate, Unrepresentable("will payload"), JS_TYPES),
    d(147, Generate, Unrepresentable("username"), JS_TYPES),
    d(148, Generate, Unrepresentable("password"), JS_TYPES),
    d(150, Generate, Unrepresentable("messageExpiryInterval"), JS_TYPES),
    d(151, Generate, Unrepresentable("topicAlias"), JS_TYPES),
    d(152, Generate, Unrepresentable("subscriptionIdentifier"), JS_TYPES),
    d(163, Generate, Unrepresentable("protocolId"), JS_TYPES),
    d(169, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(170, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(171, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(172, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(173, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(174, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(175, Generate, Unrepresentable("messageId"), JS_TYPES),
    d(176, Generate, Unrepresentable("messageId"), JS_TYPES),
];

/// mqtt-packet's parse error messages, and the Midge error for the same rule.
#[rustfmt::skip]
const SAME_RULE: &[(&str, DecodeRule)] = &[
    ("Not supported", decode_rule!(E::ReservedPacketType(0))),
    ("Not supported auth packet for this version MQTT", decode_rule!(E::ReservedPacketType(15))),
    ("Invalid variable byte integer", decode_rule!(E::VarIntTooLong)),
    // A field runs past the remaining length.
    ("Packet too short", decode_rule!(E::Truncated)),
    ("Cannot parse protocolId", decode_rule!(E::Truncated)),
    ("Cannot parse username", decode_rule!(E::Truncated)),
    ("Cannot parse property code type", decode_rule!(E::Truncated)),
    ("Malformed subscribe, no payload specified", decode_rule!(E::Truncated)),
    ("Malformed suback, no payload specified", decode_rule!(E::Truncated)),
    ("Malformed unsubscribe, no payload specified", decode_rule!(E::Truncated)),
    ("Malformed unsuback, no payload specified", decode_rule!(E::Truncated)),
    ("Malformed unsuback, payload length must be 2", decode_rule!(E::Truncated)),
    // Reserved fixed-header flags ([MQTT-2.1.3-1], [MQTT-2.2.2-1] in 3.1.1).
    ("Invalid header flag bits, must be 0x0 for connect packet", decode_rule!(E::ReservedFlags { packet: T::Connect, .. })),
    ("Invalid header flag bits, must be 0x0 for connack packet", decode_rule!(E::ReservedFlags { packet: T::ConnAck, .. })),
    ("Invalid header flag bits, must be 0x0 for puback packet", decode_rule!(E::ReservedFlags { packet: T::PubAck, .. })),
    ("Invalid header flag bits, must be 0x0 for pubrec packet", decode_rule!(E::ReservedFlags { packet: T::PubRec, .. })),
    ("Invalid header flag bits, must be 0x2 for pubrel packet", decode_rule!(E::ReservedFlags { packet: T::PubRel, .. })),
    ("Invalid header flag bits, must be 0x0 for pubcomp packet", decode_rule!(E::ReservedFlags { packet: T::PubComp, .. })),
    ("Invalid header flag bits, must be 0x2 for subscribe packet", decode_rule!(E::ReservedFlags { packet: T::Subscribe, .. })),
    ("Invalid header flag bits, must be 0x2 for unsubscribe packet", decode_rule!(E::ReservedFlags { packet: T::Unsubscribe, .. })),
    ("Invalid header flag bits, must be 0x0 for unsuback packet", decode_rule!(E::ReservedFlags { packet: T::UnsubAck, .. })),
    ("Invalid header flag bits, must be 0x0 for pingreq packet", decode_rule!(E::ReservedFlags { packet: T::PingReq, .. })),
    ("Invalid header flag bits, must be 0x0 for pingresp packet", decode_rule!(E::ReservedFlags { packet: T::PingResp, .. })),
    ("Invalid header flag bits, must be 0x0 for disconnect packet", decode_rule!(E::ReservedFlags { packet: T::Disconnect, .. })),
    ("Packet must not have both QoS bits set to 1", decode_rule!(E::InvalidQoS)),
    // CONNECT and CONNACK.
    ("Invalid protocolId", decode_rule!(E::InvalidProtocolName(_))),
    ("Invalid protocol version", decode_rule!(E::UnsupportedProtocolLevel(1))),
    ("Invalid connack flags, bits 7-1 must be set to 0", decode_rule!(E::ConnAckReservedFlags(0x02))),
    // Subscription options.
    ("Invalid subscribe QoS, must be <= 2", decode_rule!(E::InvalidQoS)),
    ("Invalid subscribe topic flag bits, bits 7-2 must be 0", decode_rule!(E::SubscriptionOptionsReserved(0x08))),
    ("Invalid subscribe topic flag bits, bits 7-6 must be 0", decode_rule!(E::SubscriptionOptionsReserved(0x80))),
    ("Invalid retain handling, must be <= 2", decode_rule!(E::InvalidRetainHandling)),
    // Reason codes (5.0) and return codes (3.1.1).
    ("Invalid suback QoS, must be 0, 1, 2 or 128", decode_rule!(E::InvalidReturnCode { packet: T::SubAck, code: 3 })),
    ("Invalid puback reason code", decode_rule!(E::InvalidReasonCode { packet: T::PubAck, code: 0x11 })),
    ("Invalid pubrel reason code", decode_rule!(E::InvalidReasonCode { packet: T::PubRel, code: 0x10 | 0x11 })),
    ("Invalid pubcomp reason code", decode_rule!(E::InvalidReasonCode { packet: T::PubComp, code: 0x10 })),
    ("Invalid suback code", decode_rule!(E::InvalidReasonCode { packet: T::SubAck, code: 0x79 })),
    ("Invalid unsuback code", decode_rule!(E::InvalidReasonCode { packet: T::UnsubAck, code: 0x84 })),
    ("Invalid disconnect reason code", decode_rule!(E::InvalidReasonCode { packet: T::Disconnect, code: 0x05 })),
    ("Invalid auth reason code", decode_rule!(E::InvalidReasonCode { packet: T::Auth, code: 0x17 })),
    // Properties.
    ("Unknown property", decode_rule!(E::UnknownProperty(0x7e))),
];

const MQTT_LEVEL_3: &str = "the CONNECT says \"MQTT\" level 3, but \"MQTT\" is level 4 or 5 \
    and level 3 is \"MQIsdp\". Midge refuses the name and level ([MQTT-3.1.2-2]) before it \
    reads the flags that mqtt-packet's test is about.";
const NUL_STRING: &str = "a string in the packet contains U+0000 ([MQTT-1.5.4-2], \
    [MQTT-1.5.3-2] in 3.1.1). Midge rejects it as soon as it reads the string; mqtt-packet \
    accepts the string and fails on the next field.";

/// Parse errors where Midge stops at an earlier problem in the same bytes, by case id: the
/// error Midge reports, and the problem. Both reject the bytes, so these cases agree.
#[rustfmt::skip]
const OTHER_RULE: &[(u32, DecodeRule, &str)] = &[
    (46, decode_rule!(E::NullCharacter), NUL_STRING), // client identifier "\0\0"
    (47, decode_rule!(E::NullCharacter), NUL_STRING), // will topic "\0\0"
    (49, decode_rule!(E::NullCharacter), NUL_STRING), // user name "\0\0"
    (160, decode_rule!(E::NullCharacter), NUL_STRING), // topic filter "hijkl/mno\0"
    (51, decode_rule!(E::UnsupportedProtocolLevel(3)), MQTT_LEVEL_3),
    (52, decode_rule!(E::UnsupportedProtocolLevel(3)), MQTT_LEVEL_3),
    (53, decode_rule!(E::UnsupportedProtocolLevel(3)), MQTT_LEVEL_3),
    (54, decode_rule!(E::UnsupportedProtocolLevel(3)), MQTT_LEVEL_3),
];

/// mqtt-packet's generate error messages, and the Midge error for the same rule.
#[rustfmt::skip]
const ENCODE_RULE: &[(&str, EncodeRule)] = &[
    ("Invalid variable byte integer: 268435456", encode_rule!(EncodeError::PacketTooLarge(268_435_456))),
    // Midge reports a Variable Byte Integer property over the maximum as PacketTooLarge too.
    ("Invalid subscriptionIdentifier: 268435456", encode_rule!(EncodeError::PacketTooLarge(268_435_456))),
    ("Username is required to use password", encode_rule!(EncodeError::PasswordWithoutUsername)),
];

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

/// Per kind: cases, cases that agree on every side, cases with a listed disagreement.
#[derive(Default)]
struct Tally {
    cases: usize,
    agree: usize,
    disagree: usize,
}

/// Every case of mqtt-packet's test suite either agrees with Midge's decoder and encoder,
/// or is a disagreement listed in [`DISAGREEMENTS`], observed as listed.
#[test]
fn every_mqtt_packet_case_agrees_or_is_a_listed_disagreement() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    let mut problems = Problems::new();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut rows_checked = vec![false; DISAGREEMENTS.len()];

    for (index, json) in cases.iter().enumerate() {
        let case = Case::new(json);
        assert_eq!(case.id as usize, index, "case ids are their index");
        for (side, verdict) in case.json["check"].as_object().expect("check") {
            if verdict != "ok" {
                problems.push(format!(
                    "case {}: mqtt-packet itself fails its {side} check: {verdict}",
                    case.id
                ));
            }
        }
        let mut disagrees = false;
        for (side, outcome) in check(&mut problems, &case) {
            let mut rows = (DISAGREEMENTS.iter().enumerate())
                .filter(|(_, row)| row.id == case.id && row.side == side);
            let listed = rows.next();
            if rows.next().is_some() {
                problems.push(format!("case {} {side:?} is listed twice", case.id));
            }
            match (outcome, listed) {
                (Ok(()), None) => {}
                (Ok(()), Some((index, _))) => {
                    rows_checked[index] = true;
                    problems.push(format!(
                        "case {} {side:?}: listed as a disagreement, but Midge agrees",
                        case.id
                    ));
                }
                (Err(observed), None) => problems.push(format!(
                    "case {} ({}, {}) {side:?}: {}",
                    case.id,
                    case.kind,
                    case.json["name"],
                    observed.describe()
                )),
                (Err(observed), Some((index, row))) => {
                    rows_checked[index] = true;
                    disagrees = true;
                    if !observed.is(&row.expect) {
                        problems.push(format!(
                            "case {} {side:?}: listed as {}, but {}",
                            case.id,
                            expect_text(&row.expect),
                            observed.describe()
                        ));
                    }
                }
            }
        }
        let tally = tallies.entry(case.kind).or_default();
        tally.cases += 1;
        if disagrees {
            tally.disagree += 1;
        } else {
            tally.agree += 1;
        }
    }
    for (row, checked) in DISAGREEMENTS.iter().zip(&rows_checked) {
        if !checked {
            problems.push(format!(
                "DISAGREEMENTS lists case {} {:?}, which is not checked",
                row.id, row.side
            ));
        }
    }
    check_rule_tables(cases, &mut problems);

    print_summary(&tallies);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every entry of the rule tables is used by some case, so that they cannot go stale.
fn check_rule_tables(cases: &[Value], problems: &mut Problems) {
    let parse_errors: Vec<(u32, &str)> = cases
        .iter()
        .map(Case::new)
        .filter(|case| matches!(case.kind, "parse_error" | "tape_parse"))
        .filter_map(|case| Some((case.id, case.json["error"].as_str()?)))
        .collect();
    for (message, _) in SAME_RULE {
        let used = parse_errors.iter().any(|(id, error)| {
            error == message && !OTHER_RULE.iter().any(|(other, ..)| other == id)
        });
        if !used {
            problems.push(format!("SAME_RULE: no case reports {message:?} alone"));
        }
    }
    for (id, ..) in OTHER_RULE {
        if !parse_errors.iter().any(|(case, _)| case == id) {
            problems.push(format!("OTHER_RULE: case {id} has no parse error"));
        }
    }
    for (message, _) in ENCODE_RULE {
        let used = cases.iter().map(Case::new).any(|case| {
            case.kind == "generate_error" && case.json["error"].as_str() == Some(message)
        });
        if !used {
            problems.push(format!("ENCODE_RULE: no generate error {message:?}"));
        }
    }
}

fn expect_text(expect: &Expect) -> String {
    let text = match expect {
        Expect::Rejects(rule) => format!("rejected with {}", rule.text),
        Expect::Unrepresentable(_) => "unrepresentable".to_owned(),
        Expect::Encodes => "encoded".to_owned(),
        Expect::EncodesEquivalent => "encoded to equivalent bytes".to_owned(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print_summary(tallies: &BTreeMap<&str, Tally>) {
    println!("mqtt-packet 9.0.2 vectors against Midge:");
    let mut total = Tally::default();
    for (kind, tally) in tallies {
        println!(
            "  {kind:<24} {:>3} cases: {:>3} agree, {:>3} disagree on purpose",
            tally.cases, tally.agree, tally.disagree
        );
        total.cases += tally.cases;
        total.agree += tally.agree;
        total.disagree += tally.disagree;
    }
    println!(
        "  {:<24} {:>3} cases: {:>3} agree, {:>3} disagree on purpose",
        "all", total.cases, total.agree, total.disagree
    );
    println!("Disagreements on purpose, by reason:");
    let mut reasons: Vec<&str> = Vec::new();
    for row in DISAGREEMENTS {
        if !reasons.contains(&row.why) {
            reasons.push(row.why);
        }
    }
    for why in reasons {
        println!("  {why}");
        let mut groups: Vec<(Side, String, Vec<u32>)> = Vec::new();
        for row in DISAGREEMENTS.iter().filter(|row| row.why == why) {
            let expect = expect_text(&row.expect);
            match groups
                .iter_mut()
                .find(|(s, e, _)| *s == row.side && *e == expect)
            {
                Some((.., ids)) => ids.push(row.id),
                None => groups.push((row.side, expect, vec![row.id])),
            }
        }
        groups.sort_by_key(|(side, ..)| *side);
        for (side, expect, ids) in groups {
            println!("    {side:?}, {expect}: cases {ids:?}");
        }
    }
}
