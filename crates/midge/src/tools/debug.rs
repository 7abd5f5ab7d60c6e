//! `-d`: the packet log of libmosquitto 2.0 (`log__printf(…, MOSQ_LOG_DEBUG, …)` in
//! its `send_*.c` and `handle_*.c`), one line per packet on standard output, word for
//! word: `Client ID sending PUBLISH (d0, q1, r0, m1, 'topic', ... (5 bytes))`. `midge
//! sub` adds mosquitto_sub's `Subscribed (mid: 1): 1, 1` after each SUBACK.
//!
//! Two differences are libmosquitto's numbering, reproduced here: it gives every
//! outgoing PUBLISH a message id, QoS 0 included (which never goes on the wire), from
//! the same counter as its packet ids; and it words a SUBSCRIBE with one line per filter.

use std::io::Write as _;
use std::sync::Mutex;

use midge_client::Direction;
use midge_codec::Packet;

/// Formats and prints the packet log; shared with the connection task.
#[derive(Debug)]
pub(super) struct DebugLog {
    /// Whether the SUBACK is followed by mosquitto_sub's `Subscribed` line.
    subscribed_line: bool,
    /// Whether the connection is MQTT 5.0: subscription options are shown, and codes
    /// are reason codes (3.x: CONNACK return codes).
    v5: bool,
    /// libmosquitto's message id counter: the last id used.
    // A std mutex: locked only for one line, on the connection task.
    last_mid: Mutex<u16>,
}

impl DebugLog {
    pub(super) fn new(subscribed_line: bool, v5: bool) -> Self {
        DebugLog {
            subscribed_line,
            v5,
            last_mid: Mutex::new(0),
        }
    }

    /// Prints the lines for one packet.
    pub(super) fn packet(&self, direction: Direction, id: &str, packet: &Packet) {
        let lines = self.lines(direction, id, packet);
        if lines.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }

    /// The lines mosquitto prints for `packet`.
    pub(super) fn lines(&self, direction: Direction, id: &str, packet: &Packet) -> Vec<String> {
        let client = format!("Client {id}");
        match direction {
            Direction::Sent => self.sent(&client, packet),
            Direction::Received => self.received(&client, packet),
        }
    }

    fn next_mid(&self, used: Option<u16>) -> u16 {
        let mut last = self.last_mid.lock().unwrap_or_else(|e| e.into_inner());
        *last = match used {
            Some(id) => id,
            None => last.checked_add(1).unwrap_or(1),
        };
        *last
    }

    fn sent(&self, client: &str, packet: &Packet) -> Vec<String> {
        let line = match packet {
            Packet::Connect(_) => format!("{client} sending CONNECT"),
            Packet::Publish(p) => {
                let mid = self.next_mid(p.packet_id.map(|id| id.get()));
                format!(
                    "{client} sending PUBLISH (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
                    u8::from(p.dup),
                    p.qos as u8,
                    u8::from(p.retain),
                    p.topic.as_str(),
                    p.payload.len()
                )
            }
            Packet::PubAck(a) => format!(
                "{client} sending PUBACK (m{}, rc{})",
                a.packet_id.get(),
                a.reason_code as u8
            ),
            Packet::PubRec(a) => format!(
                "{client} sending PUBREC (m{}, rc{})",
                a.packet_id.get(),
                a.reason_code as u8
            ),
            Packet::PubRel(a) => format!("{client} sending PUBREL (m{})", a.packet_id.get()),
            Packet::PubComp(a) => format!("{client} sending PUBCOMP (m{})", a.packet_id.get()),
            Packet::Subscribe(s) => {
                let mid = self.next_mid(Some(s.packet_id.get()));
                return s
                    .filters
                    .iter()
                    .map(|(filter, o)| {
                        let options = if self.v5 {
                            u8::from(o.no_local) << 2
                                | u8::from(o.retain_as_published) << 3
                                | (o.retain_handling as u8) << 4
                        } else {
                            0
                        };
                        format!(
                            "{client} sending SUBSCRIBE (Mid: {mid}, Topic: {}, QoS: {}, Options: 0x{options:02x})",
                            filter.as_str(),
                            o.qos as u8
                        )
                    })
                    .collect();
            }
            Packet::Unsubscribe(u) => {
                let mid = self.next_mid(Some(u.packet_id.get()));
                return u
                    .filters
                    .iter()
                    .map(|f| {
                        format!(
                            "{client} sending UNSUBSCRIBE (Mid: {mid}, Topic: {})",
                            f.as_str()
                        )
                    })
                    .collect();
            }
            Packet::PingReq => format!("{client} sending PINGREQ"),
            Packet::Disconnect(_) => format!("{client} sending DISCONNECT"),
            Packet::Auth(_) => format!("{client} sending AUTH"),
            other => format!("{client} sending {}", other.packet_type()),
        };
        vec![line]
    }

    fn received(&self, client: &str, packet: &Packet) -> Vec<String> {
        let line = match packet {
            Packet::ConnAck(a) => {
                let code = if self.v5 {
                    a.reason_code as u8
                } else {
                    a.reason_code.to_connack_return_code()
                };
                format!("{client} received CONNACK ({code})")
            }
            Packet::Publish(p) => format!(
                "{client} received PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                u8::from(p.dup),
                p.qos as u8,
                u8::from(p.retain),
                p.packet_id.map_or(0, |id| id.get()),
                p.topic.as_str(),
                p.payload.len()
            ),
            Packet::PubAck(a) => format!(
                "{client} received PUBACK (Mid: {}, RC:{})",
                a.packet_id.get(),
                a.reason_code as u8
            ),
            Packet::PubComp(a) => format!(
                "{client} received PUBCOMP (Mid: {}, RC:{})",
                a.packet_id.get(),
                a.reason_code as u8
            ),
            Packet::PubRec(a) => format!("{client} received PUBREC (Mid: {})", a.packet_id.get()),
            Packet::PubRel(a) => format!("{client} received PUBREL (Mid: {})", a.packet_id.get()),
            Packet::SubAck(a) => {
                let mut lines = vec![format!("{client} received SUBACK")];
                if self.subscribed_line {
                    let codes: Vec<String> = a
                        .reason_codes
                        .iter()
                        .map(|c| (*c as u8).to_string())
                        .collect();
                    lines.push(format!(
                        "Subscribed (mid: {}): {}",
                        a.packet_id.get(),
                        codes.join(", ")
                    ));
                }
                return lines;
            }
            Packet::UnsubAck(_) => format!("{client} received UNSUBACK"),
            Packet::PingResp => format!("{client} received PINGRESP"),
            Packet::Disconnect(d) => format!("Received DISCONNECT ({})", d.reason_code as u8),
            Packet::Auth(_) => format!("{client} received AUTH"),
            other => format!("{client} received {}", other.packet_type()),
        };
        vec![line]
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use midge_codec::{Ack, PacketId, Publish, TopicName};

    use super::*;

    #[test]
    fn qos0_publications_take_a_message_id_as_in_libmosquitto() {
        let log = DebugLog::new(false, false);
        let publish = Publish::new(TopicName::new("a/b").unwrap(), Bytes::from_static(b"hi"));
        let first = log.lines(Direction::Sent, "x", &Packet::Publish(publish.clone()));
        let second = log.lines(Direction::Sent, "x", &Packet::Publish(publish));
        assert_eq!(
            first,
            ["Client x sending PUBLISH (d0, q0, r0, m1, 'a/b', ... (2 bytes))"]
        );
        assert!(second[0].contains(", m2, "));
        let ack = Ack::new(PacketId::new(7).unwrap());
        assert_eq!(
            log.lines(Direction::Received, "x", &Packet::PubAck(ack)),
            ["Client x received PUBACK (Mid: 7, RC:0)"]
        );
    }
}
