//! `-D command identifier value` (`--property`): MQTT 5.0 properties for the packets the
//! tools send, with Mosquitto's names, the commands each property is allowed in, and
//! its error messages (`cfg_parse_property` in `client/client_shared.c`).
//!
//! Supported: every property a client may send in CONNECT, PUBLISH, SUBSCRIBE,
//! UNSUBSCRIBE, DISCONNECT and the will, except `topic-alias` (the client assigns
//! aliases itself). `authentication-method` and `authentication-data` go in the CONNECT
//! as they are, as with mosquitto_pub: a method that completes in CONNECT and CONNACK
//! (these tools answer no AUTH challenge); unlike mosquitto, data without a method is
//! refused (a protocol error, §3.1.2.11.10).

use bytes::Bytes;
use midge_codec::{
    ByteString, ConnectProperties, DisconnectProperties, PublishProperties, SubscribeProperties,
    TopicName, UnsubscribeProperties, WillProperties,
};

/// The properties given with `-D`, per packet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Properties {
    pub(crate) connect: ConnectProperties,
    pub(crate) publish: PublishProperties,
    pub(crate) subscribe: SubscribeProperties,
    pub(crate) unsubscribe: UnsubscribeProperties,
    pub(crate) disconnect: DisconnectProperties,
    pub(crate) will: WillProperties,
}

fn error(message: &str) -> String {
    format!("Error: {message}\n\n")
}

impl Properties {
    /// Parses one `-D` from `args[0..]` (command, identifier, value[, value]); returns
    /// how many words it took.
    pub(crate) fn parse(&mut self, args: &[String]) -> Result<usize, String> {
        let not_enough = || error("--property argument given but not enough arguments specified.");
        let (Some(command), Some(name)) = (args.first(), args.get(1)) else {
            return Err(not_enough());
        };
        let command = command.as_str();
        if !matches!(
            command,
            "connect"
                | "publish"
                | "puback"
                | "pubrec"
                | "pubrel"
                | "pubcomp"
                | "subscribe"
                | "suback"
                | "unsubscribe"
                | "unsuback"
                | "disconnect"
                | "auth"
                | "will"
        ) {
            return Err(error("Invalid command given in --property argument."));
        }
        let allowed: &[&str] = match name.as_str() {
            "payload-format-indicator"
            | "message-expiry-interval"
            | "content-type"
            | "response-topic"
            | "correlation-data" => &["publish", "will"],
            "session-expiry-interval" => &["connect", "disconnect"],
            "receive-maximum"
            | "maximum-packet-size"
            | "topic-alias-maximum"
            | "request-response-information"
            | "request-problem-information" => &["connect"],
            "subscription-identifier" => &["subscribe"],
            "will-delay-interval" => &["will"],
            "reason-string" => &["disconnect"],
            "user-property" => &[
                "connect",
                "publish",
                "subscribe",
                "unsubscribe",
                "disconnect",
                "will",
            ],
            "authentication-method" | "authentication-data" => &["connect"],
            "topic-alias" => {
                return Err(format!(
                    "Error: the {name} property is not supported yet.\n"
                ));
            }
            "assigned-client-identifier"
            | "server-keep-alive"
            | "response-information"
            | "server-reference"
            | "maximum-qos"
            | "retain-available"
            | "wildcard-subscription-available"
            | "subscription-identifier-available"
            | "shared-subscription-available" => &[],
            _ => return Err(error("Invalid property name given in --property argument.")),
        };
        if !allowed.contains(&command) {
            return Err(error(&format!(
                "{name} property not allowed for {command} in --property argument."
            )));
        }
        let Some(value) = args.get(2) else {
            return Err(not_enough());
        };
        if name == "user-property" {
            let Some(second) = args.get(3) else {
                return Err(not_enough());
            };
            let pair = (
                ByteString::from(value.as_str()),
                ByteString::from(second.as_str()),
            );
            match command {
                "connect" => self.connect.user_properties.push(pair),
                "publish" => self.publish.user_properties.push(pair),
                "subscribe" => self.subscribe.user_properties.push(pair),
                "unsubscribe" => self.unsubscribe.user_properties.push(pair),
                "disconnect" => self.disconnect.user_properties.push(pair),
                _ => self.will.user_properties.push(pair),
            }
            return Ok(4);
        }
        self.set(command, name, value)?;
        Ok(3)
    }

    fn set(&mut self, command: &str, name: &str, value: &str) -> Result<(), String> {
        let number = |max: u64| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| error(&format!("Invalid value for property {name}: {value}")))
        };
        let will = command == "will";
        match name {
            "payload-format-indicator" => {
                let v = Some(number(1)? == 1);
                if will {
                    self.will.payload_format_indicator = v;
                } else {
                    self.publish.payload_format_indicator = v;
                }
            }
            "message-expiry-interval" => {
                let v = Some(number(u32::MAX.into())? as u32);
                if will {
                    self.will.message_expiry_interval = v;
                } else {
                    self.publish.message_expiry_interval = v;
                }
            }
            "content-type" => {
                let v = Some(ByteString::from(value));
                if will {
                    self.will.content_type = v;
                } else {
                    self.publish.content_type = v;
                }
            }
            "response-topic" => {
                let topic = TopicName::new(value)
                    .map_err(|_| error(&format!("Invalid value for property {name}: {value}")))?;
                if will {
                    self.will.response_topic = Some(topic);
                } else {
                    self.publish.response_topic = Some(topic);
                }
            }
            "correlation-data" => {
                let v = Some(Bytes::from(value.to_owned().into_bytes()));
                if will {
                    self.will.correlation_data = v;
                } else {
                    self.publish.correlation_data = v;
                }
            }
            "session-expiry-interval" => {
                let v = Some(number(u32::MAX.into())? as u32);
                if command == "connect" {
                    self.connect.session_expiry_interval = v;
                } else {
                    self.disconnect.session_expiry_interval = v;
                }
            }
            "receive-maximum" => self.connect.receive_maximum = Some(number(65535)? as u16),
            "maximum-packet-size" => {
                self.connect.maximum_packet_size = Some(number(u32::MAX.into())? as u32)
            }
            "topic-alias-maximum" => self.connect.topic_alias_maximum = Some(number(65535)? as u16),
            "request-response-information" => {
                self.connect.request_response_information = Some(number(1)? == 1)
            }
            "request-problem-information" => {
                self.connect.request_problem_information = Some(number(1)? == 1)
            }
            "subscription-identifier" => {
                self.subscribe.subscription_identifier = Some(number(268_435_455)? as u32)
            }
            "will-delay-interval" => {
                self.will.will_delay_interval = Some(number(u32::MAX.into())? as u32)
            }
            "reason-string" => self.disconnect.reason_string = Some(ByteString::from(value)),
            "authentication-method" => {
                self.connect.authentication_method = Some(ByteString::from(value))
            }
            "authentication-data" => {
                self.connect.authentication_data = Some(Bytes::from(value.to_owned().into_bytes()))
            }
            _ => {}
        }
        Ok(())
    }
}
