//! Vectors for CONNECT and CONNACK.

use super::*;

// ---------------------------------------------------------------------------------------
// CONNECT (3.1.1 §3.1, 5.0 §3.1)
// ---------------------------------------------------------------------------------------

#[test]
fn connect_v31_minimal() {
    connect_vector(&minimal_connect(V31), Connect::new(V31, "x"));
}

#[test]
fn connect_v31_with_will_username_and_password() {
    let bytes = wire! {
        [0x10, 0x29],             // CONNECT, remaining length 41
        [0x00, 0x06], b"MQIsdp",  // protocol name of MQTT 3.1
        [0x03],                   // protocol level 3
        [0xee],                   // flags: user name, password, will retain, will QoS 1, will, clean
        [0x00, 0x0a],             // keep alive 10
        [0x00, 0x05], b"midge",   // client identifier
        [0x00, 0x03], b"w/t",     // will topic
        [0x00, 0x03], b"bye",     // will message
        [0x00, 0x04], b"user",    // user name
        [0x00, 0x04], b"pass",    // password
    };
    let connect = Connect {
        keep_alive: 10,
        will: Some(LastWill {
            topic: topic("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        ..Connect::new(V31, "midge")
    };
    connect_vector(&bytes, connect);
}

#[test]
fn connect_v311_minimal_with_empty_client_id() {
    let bytes = wire! {
        [0x10, 0x0c],           // CONNECT, remaining length 12
        [0x00, 0x04], b"MQTT",  // protocol name
        [0x04],                 // protocol level 4
        [0x02],                 // flags: clean session
        [0x00, 0x3c],           // keep alive 60
        [0x00, 0x00],           // client identifier: empty
    };
    connect_vector(&bytes, Connect::new(V311, ""));
}

/// The variable header of 3.1.1 figure 3.6 (flags 0xCE, keep alive 10) with its payload.
///
/// conformance: v3.1.1 MQTT-3.1.2-9
/// conformance: v3.1.1 MQTT-3.1.2-19
/// conformance: v3.1.1 MQTT-3.1.2-21
/// conformance: v3.1.1 MQTT-3.1.3-1
#[test]
fn connect_v311_figure_3_6_with_will_username_and_password() {
    let bytes = wire! {
        [0x10, 0x27],           // CONNECT, remaining length 39
        [0x00, 0x04], b"MQTT",  // protocol name
        [0x04],                 // protocol level 4
        [0xce],                 // flags: user name, password, will QoS 1, will, clean session
        [0x00, 0x0a],           // keep alive 10
        [0x00, 0x05], b"midge", // client identifier
        [0x00, 0x03], b"w/t",   // will topic
        [0x00, 0x03], b"bye",   // will message
        [0x00, 0x04], b"user",  // user name
        [0x00, 0x04], b"pass",  // password
    };
    let connect = Connect {
        keep_alive: 10,
        will: Some(LastWill {
            topic: topic("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        ..Connect::new(V311, "midge")
    };
    connect_vector(&bytes, connect);
}

/// conformance: v3.1.1 MQTT-3.1.2-14
/// conformance: v3.1.1 MQTT-3.1.2-20
#[test]
fn connect_v311_will_qos2_retained_username_only_no_clean_session() {
    let bytes = wire! {
        [0x10, 0x19],           // CONNECT, remaining length 25
        [0x00, 0x04], b"MQTT",  // protocol name
        [0x04],                 // protocol level 4
        [0xb4],                 // flags: user name, will retain, will QoS 2, will
        [0x00, 0x00],           // keep alive 0 (off)
        [0x00, 0x02], b"c1",    // client identifier
        [0x00, 0x01], b"t",     // will topic
        [0x00, 0x00],           // will message: empty
        [0x00, 0x04], b"user",  // user name
    };
    let connect = Connect {
        clean_start: false,
        keep_alive: 0,
        will: Some(LastWill {
            topic: topic("t"),
            payload: Bytes::new(),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        ..Connect::new(V311, "c1")
    };
    connect_vector(&bytes, connect);
}

/// conformance: v5 MQTT-2.2.2-1
#[test]
fn connect_v5_minimal() {
    connect_vector(&minimal_connect(V5), Connect::new(V5, "x"));
}

/// The variable header example of 5.0 §3.1.2.12 (flags 0xCE, keep alive 10, Session
/// Expiry Interval 10) with its payload.
#[test]
fn connect_v5_spec_example_with_will_username_and_password() {
    let bytes = wire! {
        [0x10, 0x2e],                   // CONNECT, remaining length 46
        [0x00, 0x04], b"MQTT",          // protocol name
        [0x05],                         // protocol level 5
        [0xce],                         // flags: user name, password, will QoS 1, will, clean start
        [0x00, 0x0a],                   // keep alive 10
        [0x05],                         // property length 5
        [0x11, 0x00, 0x00, 0x00, 0x0a], //   session expiry interval 10
        [0x00, 0x05], b"midge",         // client identifier
        [0x00],                         // will property length 0
        [0x00, 0x03], b"w/t",           // will topic
        [0x00, 0x03], b"bye",           // will payload
        [0x00, 0x04], b"user",          // user name
        [0x00, 0x04], b"pass",          // password
    };
    let connect = Connect {
        keep_alive: 10,
        will: Some(LastWill {
            topic: topic("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        properties: ConnectProperties {
            session_expiry_interval: Some(10),
            ..ConnectProperties::default()
        },
        ..Connect::new(V5, "midge")
    };
    connect_vector(&bytes, connect);
}

/// Every CONNECT property and every will property, user properties in order.
///
/// conformance: v5 MQTT-1.5.5-1
/// conformance: v5 MQTT-3.1.2-9
/// conformance: v5 MQTT-3.1.2-17
/// conformance: v5 MQTT-3.1.2-19
/// conformance: v5 MQTT-3.1.3-1
#[test]
fn connect_v5_with_every_connect_and_will_property() {
    let bytes = wire! {
        [0x10, 0x84, 0x01],                               // CONNECT, remaining length 132 (two-byte varint)
        [0x00, 0x04], b"MQTT",                            // protocol name
        [0x05],                                           // protocol level 5
        [0xce],                                           // flags: user name, password, will QoS 1, will, clean start
        [0x00, 0x1e],                                     // keep alive 30
        [0x2f],                                           // property length 47
        [0x11, 0x00, 0x00, 0x00, 0x78],                   //   session expiry interval 120
        [0x21, 0x00, 0x14],                               //   receive maximum 20
        [0x27, 0x00, 0x00, 0x04, 0x00],                   //   maximum packet size 1024
        [0x22, 0x00, 0x0a],                               //   topic alias maximum 10
        [0x19, 0x01],                                     //   request response information 1
        [0x17, 0x00],                                     //   request problem information 0
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b",     //   user property a=b
        [0x26, 0x00, 0x01], b"c", [0x00, 0x01], b"d",     //   user property c=d
        [0x15, 0x00, 0x05], b"scram",                     //   authentication method
        [0x16, 0x00, 0x02, 0x01, 0x02],                   //   authentication data
        [0x00, 0x05], b"midge",                           // client identifier
        [0x2c],                                           // will property length 44
        [0x18, 0x00, 0x00, 0x00, 0x05],                   //   will delay interval 5
        [0x01, 0x01],                                     //   payload format indicator: UTF-8
        [0x02, 0x00, 0x00, 0x00, 0x3c],                   //   message expiry interval 60
        [0x03, 0x00, 0x0a], b"text/plain",                //   content type
        [0x08, 0x00, 0x04], b"resp",                      //   response topic
        [0x09, 0x00, 0x02, 0xca, 0xfe],                   //   correlation data
        [0x26, 0x00, 0x01], b"k", [0x00, 0x01], b"v",     //   user property k=v
        [0x00, 0x03], b"w/t",                             // will topic
        [0x00, 0x03], b"bye",                             // will payload
        [0x00, 0x04], b"user",                            // user name
        [0x00, 0x04], b"pass",                            // password
    };
    let connect = Connect {
        keep_alive: 30,
        will: Some(LastWill {
            topic: topic("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(60),
                content_type: Some(s("text/plain")),
                response_topic: Some(topic("resp")),
                correlation_data: Some(b(&[0xca, 0xfe])),
                user_properties: vec![pair("k", "v")],
            },
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        properties: ConnectProperties {
            session_expiry_interval: Some(120),
            receive_maximum: Some(20),
            maximum_packet_size: Some(1024),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: vec![pair("a", "b"), pair("c", "d")],
            authentication_method: Some(s("scram")),
            authentication_data: Some(b(&[0x01, 0x02])),
        },
        ..Connect::new(V5, "midge")
    };
    connect_vector(&bytes, connect);
}

/// 5.0 drops the 3.1.1 rule that a password needs a user name (§3.1.2.9).
///
/// conformance: v5 MQTT-3.1.2-16
/// conformance: v5 MQTT-3.1.2-19
#[test]
fn connect_v5_password_without_username() {
    let bytes = wire! {
        [0x10, 0x12],             // CONNECT, remaining length 18
        [0x00, 0x04], b"MQTT",    // protocol name
        [0x05],                   // protocol level 5
        [0x42],                   // flags: password, clean start
        [0x00, 0x3c],             // keep alive 60
        [0x00],                   // property length 0
        [0x00, 0x01], b"x",       // client identifier
        [0x00, 0x02, 0xff, 0x00], // password: binary data, not UTF-8
    };
    let connect = Connect {
        password: Some(b(&[0xff, 0x00])),
        ..Connect::new(V5, "x")
    };
    connect_vector(&bytes, connect);
}

// ---------------------------------------------------------------------------------------
// CONNACK (3.1.1 §3.2, 5.0 §3.2)
// ---------------------------------------------------------------------------------------

#[test]
fn connack_v3_return_codes_0_to_5() {
    let codes = [
        (0x00, ReasonCode::Success),
        (0x01, ReasonCode::UnsupportedProtocolVersion),
        (0x02, ReasonCode::ClientIdentifierNotValid),
        (0x03, ReasonCode::ServerUnavailable),
        (0x04, ReasonCode::BadUserNameOrPassword),
        (0x05, ReasonCode::NotAuthorized),
    ];
    for version in [V31, V311] {
        for (byte, reason_code) in codes {
            let bytes = wire! {
                [0x20, 0x02], // CONNACK, remaining length 2
                [0x00],       // acknowledge flags: no session present
                [byte],       // return code
            };
            let connack = ConnAck {
                reason_code,
                ..ConnAck::default()
            };
            server_vector(version, &bytes, Packet::ConnAck(Box::new(connack)));
        }
    }
}

#[test]
fn connack_v311_session_present() {
    let bytes = wire! {
        [0x20, 0x02], // CONNACK, remaining length 2
        [0x01],       // acknowledge flags: session present
        [0x00],       // return code 0: accepted
    };
    let connack = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    server_vector(V311, &bytes, Packet::ConnAck(Box::new(connack)));
}

/// conformance: v5 MQTT-2.2.2-1
#[test]
fn connack_v5_success_without_properties() {
    let bytes = wire! {
        [0x20, 0x03], // CONNACK, remaining length 3
        [0x00],       // acknowledge flags
        [0x00],       // reason code: Success
        [0x00],       // property length 0
    };
    server_vector(V5, &bytes, Packet::ConnAck(Box::default()));
}

#[test]
fn connack_v5_refused_not_authorized() {
    let bytes = wire! {
        [0x20, 0x03], // CONNACK, remaining length 3
        [0x00],       // acknowledge flags
        [0x87],       // reason code: Not authorized
        [0x00],       // property length 0
    };
    let connack = ConnAck {
        reason_code: ReasonCode::NotAuthorized,
        ..ConnAck::default()
    };
    server_vector(V5, &bytes, Packet::ConnAck(Box::new(connack)));
}

/// Every CONNACK property (5.0 §3.2.2.3).
#[test]
fn connack_v5_with_every_property() {
    let bytes = wire! {
        [0x20, 0x4c],                                 // CONNACK, remaining length 76
        [0x01],                                       // acknowledge flags: session present
        [0x00],                                       // reason code: Success
        [0x49],                                       // property length 73
        [0x11, 0x00, 0x00, 0x0e, 0x10],               //   session expiry interval 3600
        [0x21, 0x00, 0x64],                           //   receive maximum 100
        [0x24, 0x01],                                 //   maximum QoS 1
        [0x25, 0x00],                                 //   retain available 0
        [0x27, 0x00, 0x01, 0x00, 0x00],               //   maximum packet size 65536
        [0x12, 0x00, 0x04], b"auto",                  //   assigned client identifier
        [0x22, 0x00, 0x05],                           //   topic alias maximum 5
        [0x1f, 0x00, 0x02], b"ok",                    //   reason string
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
        [0x28, 0x01],                                 //   wildcard subscription available 1
        [0x29, 0x00],                                 //   subscription identifiers available 0
        [0x2a, 0x01],                                 //   shared subscription available 1
        [0x13, 0x00, 0x3c],                           //   server keep alive 60
        [0x1a, 0x00, 0x04], b"resp",                  //   response information
        [0x1c, 0x00, 0x03], b"srv",                   //   server reference
        [0x15, 0x00, 0x05], b"scram",                 //   authentication method
        [0x16, 0x00, 0x01, 0xff],                     //   authentication data
    };
    let connack = ConnAck {
        session_present: true,
        reason_code: ReasonCode::Success,
        properties: ConnAckProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(100),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(65536),
            assigned_client_identifier: Some(s("auto")),
            topic_alias_maximum: Some(5),
            reason_string: Some(s("ok")),
            user_properties: vec![pair("a", "b")],
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(60),
            response_information: Some(s("resp")),
            server_reference: Some(s("srv")),
            authentication_method: Some(s("scram")),
            authentication_data: Some(b(&[0xff])),
        },
    };
    server_vector(V5, &bytes, Packet::ConnAck(Box::new(connack)));
}
