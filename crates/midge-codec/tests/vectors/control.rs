//! Vectors for PINGREQ, PINGRESP, DISCONNECT and AUTH.

use super::*;

// ---------------------------------------------------------------------------------------
// PINGREQ, PINGRESP (§3.12, §3.13)
// ---------------------------------------------------------------------------------------

#[test]
fn pingreq_every_version() {
    for version in [V31, V311, V5] {
        client_vector(version, &[0xc0, 0x00], Packet::PingReq);
    }
}

#[test]
fn pingresp_every_version() {
    for version in [V31, V311, V5] {
        server_vector(version, &[0xd0, 0x00], Packet::PingResp);
    }
}

// ---------------------------------------------------------------------------------------
// DISCONNECT (3.1.1 §3.14, 5.0 §3.14)
// ---------------------------------------------------------------------------------------

#[test]
fn disconnect_v3_from_client() {
    for version in [V31, V311] {
        client_vector(
            version,
            &[0xe0, 0x00],
            Packet::Disconnect(Disconnect::default()),
        );
    }
}

/// 5.0: remaining length 0 means Normal disconnection (§3.14.2.1); either side sends it.
#[test]
fn disconnect_v5_empty() {
    both_ways_vector(V5, &[0xe0, 0x00], Packet::Disconnect(Disconnect::default()));
}

#[test]
fn disconnect_v5_reason_code_only() {
    let bytes = wire! {
        [0xe0, 0x01], // DISCONNECT, remaining length 1
        [0x04],       // reason code: Disconnect with Will Message
    };
    let disconnect = Disconnect::new(ReasonCode::DisconnectWithWillMessage);
    client_vector(V5, &bytes, Packet::Disconnect(disconnect));
    let bytes = wire! {
        [0xe0, 0x01], // DISCONNECT, remaining length 1
        [0x8b],       // reason code: Server shutting down
    };
    let disconnect = Disconnect::new(ReasonCode::ServerShuttingDown);
    server_vector(V5, &bytes, Packet::Disconnect(disconnect));
}

#[test]
fn disconnect_v5_from_client_with_session_expiry() {
    let bytes = wire! {
        [0xe0, 0x07],                   // DISCONNECT, remaining length 7
        [0x00],                         // reason code: Normal disconnection
        [0x05],                         // property length 5
        [0x11, 0x00, 0x00, 0x00, 0x3c], // session expiry interval 60
    };
    let disconnect = Disconnect {
        reason_code: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..DisconnectProperties::default()
        },
    };
    client_vector(V5, &bytes, Packet::Disconnect(disconnect));
}

#[test]
fn disconnect_v5_from_server_with_properties() {
    let bytes = wire! {
        [0xe0, 0x18],                                 // DISCONNECT, remaining length 24
        [0x9c],                                       // reason code: Use another server
        [0x16],                                       // property length 22
        [0x1f, 0x00, 0x04], b"move",                  //   reason string
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
        [0x1c, 0x00, 0x05], b"other",                 //   server reference
    };
    let disconnect = Disconnect {
        reason_code: ReasonCode::UseAnotherServer,
        properties: DisconnectProperties {
            session_expiry_interval: None,
            reason_string: Some(s("move")),
            user_properties: vec![pair("a", "b")],
            server_reference: Some(s("other")),
        },
    };
    server_vector(V5, &bytes, Packet::Disconnect(disconnect));
}

#[test]
fn disconnect_v5_long_forms_decode_to_the_short_ones() {
    let normal = Packet::Disconnect(Disconnect::default());
    long_form_vector(V5, &[0xe0, 0x01, 0x00], &[0xe0, 0x00], normal.clone());
    long_form_vector(V5, &[0xe0, 0x02, 0x00, 0x00], &[0xe0, 0x00], normal);
}

// ---------------------------------------------------------------------------------------
// AUTH (5.0 §3.15)
// ---------------------------------------------------------------------------------------

#[test]
fn auth_v5_empty_is_success() {
    both_ways_vector(V5, &[0xf0, 0x00], Packet::Auth(Auth::default()));
}

#[test]
fn auth_v5_continue_with_method_and_data() {
    let bytes = wire! {
        [0xf0, 0x11],                         // AUTH, remaining length 17
        [0x18],                               // reason code: Continue authentication
        [0x0f],                               // property length 15
        [0x15, 0x00, 0x05], b"scram",         //   authentication method
        [0x16, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04], // authentication data
    };
    let auth = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(s("scram")),
            authentication_data: Some(b(&[1, 2, 3, 4])),
            ..AuthProperties::default()
        },
    };
    both_ways_vector(V5, &bytes, Packet::Auth(auth));
}

#[test]
fn auth_v5_reauthenticate_from_client() {
    let bytes = wire! {
        [0xf0, 0x0a],                 // AUTH, remaining length 10
        [0x19],                       // reason code: Re-authenticate
        [0x08],                       // property length 8
        [0x15, 0x00, 0x05], b"scram", //   authentication method
    };
    let auth = Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: AuthProperties {
            authentication_method: Some(s("scram")),
            ..AuthProperties::default()
        },
    };
    client_vector(V5, &bytes, Packet::Auth(auth));
}

#[test]
fn auth_v5_success_with_reason_string_and_user_property() {
    let bytes = wire! {
        [0xf0, 0x0e],                                 // AUTH, remaining length 14
        [0x00],                                       // reason code: Success
        [0x0c],                                       // property length 12
        [0x1f, 0x00, 0x02], b"ok",                    //   reason string
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
    };
    let auth = Auth {
        reason_code: ReasonCode::Success,
        properties: AuthProperties {
            reason_string: Some(s("ok")),
            user_properties: vec![pair("a", "b")],
            ..AuthProperties::default()
        },
    };
    server_vector(V5, &bytes, Packet::Auth(auth));
}
