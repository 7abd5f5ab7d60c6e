//! The model, its validation, format detection, and `midge.example.toml`.

use std::path::Path;

use serde::Deserialize;

use super::{Config, ConfigFormat, ListenerConfig, LogConfig, parse};

const EXAMPLE: &str = include_str!("../../../../midge.example.toml");

fn listeners(binds: &[&str]) -> Vec<ListenerConfig> {
    binds
        .iter()
        .map(|b| ListenerConfig::new(b.parse().unwrap()))
        .collect()
}

#[test]
fn example_file_is_the_defaults() {
    let loaded = parse(EXAMPLE, Path::new("midge.example.toml")).expect("example parses");
    assert_eq!(loaded.format, ConfigFormat::Toml);
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn example_file_names_every_key() {
    let keys = |fields: &[&str], table: Option<&str>| {
        for field in fields {
            let written = EXAMPLE.lines().any(|line| {
                let line = line.trim_start_matches(['#', ' ']);
                line.strip_prefix(field)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            }) || table.is_none()
                && EXAMPLE
                    .lines()
                    .any(|l| l == format!("[{field}]") || l == format!("[[{field}]]"));
            assert!(
                written,
                "midge.example.toml does not document {}{field}",
                table.map(|t| format!("{t}.")).unwrap_or_default()
            );
        }
    };
    keys(field_names::<Config>(), None);
    keys(field_names::<ListenerConfig>(), Some("listener"));
    keys(field_names::<LogConfig>(), Some("log"));
}

#[test]
fn example_file_commented_values_parse() {
    // The optional keys the file shows commented out are valid when uncommented.
    let uncommented = EXAMPLE
        .replace(
            "# persistent_client_expiration = ",
            "persistent_client_expiration = ",
        )
        .replace("# file = ", "file = ")
        .replacen("# password_file = ", "password_file = ", 1)
        .replacen("# acl_file = ", "acl_file = ", 1);
    let config = parse(&uncommented, Path::new("example")).unwrap().config;
    assert_eq!(config.persistent_client_expiration, Some(14 * 86_400));
    assert_eq!(
        config.password_file.as_deref(),
        Some(Path::new("/etc/midge/passwd"))
    );
    assert_eq!(
        config.acl_file.as_deref(),
        Some(Path::new("/etc/midge/acl"))
    );
    assert_eq!(
        config.log.file.as_deref(),
        Some(Path::new("/var/log/midge.log"))
    );
}

#[test]
fn example_file_listener_keys_parse() {
    // The listener keys shown commented out after the last [[listener]] are valid there.
    let mut in_listener_keys = false;
    let uncommented: Vec<String> = EXAMPLE
        .lines()
        .map(|line| {
            in_listener_keys |= line.starts_with("# Every listener also takes");
            in_listener_keys &= !line.starts_with('[');
            let assignment = line.strip_prefix("# ").filter(|rest| {
                rest.split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' '))
            });
            match assignment {
                Some(rest) if in_listener_keys => rest.to_string(),
                _ => line.to_string(),
            }
        })
        .collect();
    // websockets_path goes with a WebSocket listener.
    let text = uncommented
        .join("\n")
        .replace("\nprotocol = \"mqtt\"", "\nprotocol = \"websockets\"")
        .replace(
            "per_listener_settings = false",
            "per_listener_settings = true",
        );
    let config = parse(&text, Path::new("example")).unwrap().config;
    let listener = &config.listeners[1];
    assert!(listener.is_tls());
    assert_eq!(
        listener.capath.as_deref(),
        Some(Path::new("/etc/midge/ca.d"))
    );
    assert_eq!(listener.tls_version, Some(super::TlsVersion::Tls12));
    assert_eq!(listener.websockets_path.as_deref(), Some("/mqtt"));
    assert_eq!(listener.allow_anonymous, Some(false));
    assert_eq!(
        config.listener_security(1).acl_file.as_deref(),
        Some(Path::new("/etc/midge/acl-tls"))
    );
}

/// The field names serde knows a struct by (after renames): a deserializer that only
/// records what `deserialize_struct` is given.
fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    #[derive(Default)]
    struct Probe(Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for &mut Probe {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("probe"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut probe = Probe::default();
    let _ = T::deserialize(&mut probe);
    probe.0.expect("a struct")
}

#[test]
fn default_is_local_only_and_valid() {
    let config = Config::default();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        config.listeners,
        listeners(&["127.0.0.1:1883", "[::1]:1883"])
    );
}

#[test]
fn validation_refuses_out_of_range_values() {
    let refused = |change: fn(&mut Config), key: &str| {
        let mut config = Config::default();
        change(&mut config);
        let invalid = config.validate().expect_err(key);
        assert_eq!(invalid.key, key);
    };
    refused(|c| c.max_inflight_messages = 0, "max_inflight_messages");
    refused(|c| c.max_packet_size = 19, "max_packet_size");
    refused(|c| c.max_packet_size = u32::MAX, "max_packet_size");
    refused(|c| c.message_size_limit = 268_435_456, "message_size_limit");
    refused(|c| c.max_keepalive = 9, "max_keepalive");
    refused(
        |c| c.persistent_client_expiration = Some(0),
        "persistent_client_expiration",
    );
    refused(|c| c.connect_timeout = 0, "connect_timeout");
    refused(|c| c.listeners.clear(), "listener");
    refused(|c| c.log.file = Some("".into()), "log.file");
    refused(|c| c.listeners[0].bind = None, "listener.bind");
    refused(
        |c| c.listeners[0].unix_socket = Some("/run/m.sock".into()),
        "listener.unix_socket",
    );
    refused(
        |c| c.listeners[0] = ListenerConfig::unix(""),
        "listener.unix_socket",
    );
    refused(
        |c| c.listeners[0].websockets_path = Some("/mqtt".into()),
        "listener.websockets_path",
    );
    refused(
        |c| c.listeners[0].certfile = Some("c".into()),
        "listener.certfile",
    );
    refused(
        |c| c.listeners[0].keyfile = Some("k".into()),
        "listener.keyfile",
    );
    refused(
        |c| c.listeners[0].require_certificate = true,
        "listener.require_certificate",
    );
    refused(
        |c| c.listeners[0].use_identity_as_username = true,
        "listener.use_identity_as_username",
    );
    refused(
        |c| {
            c.listeners[0].certfile = Some("c".into());
            c.listeners[0].keyfile = Some("k".into());
            c.listeners[0].require_certificate = true;
        },
        "listener.require_certificate",
    );
    refused(
        |c| {
            c.listeners[0].certfile = Some("c".into());
            c.listeners[0].keyfile = Some("k".into());
            c.listeners[0].cafile = Some("ca".into());
            c.listeners[0].use_identity_as_username = true;
            c.listeners[0].use_subject_as_username = true;
        },
        "listener.use_subject_as_username",
    );
    refused(
        |c| {
            c.listeners[0].certfile = Some("c".into());
            c.listeners[0].keyfile = Some("k".into());
            c.listeners[0].use_identity_as_username = true;
        },
        "listener.use_identity_as_username",
    );
}

#[test]
fn validation_accepts_the_edges() {
    let mut config = Config {
        max_packet_size: 20,
        message_size_limit: 268_435_455,
        max_inflight_messages: u16::MAX,
        max_keepalive: 0,
        ..Config::default()
    };
    assert_eq!(config.validate(), Ok(()));
    config.max_keepalive = 10;
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn validation_refuses_overlapping_listeners() {
    let check = |binds: &[&str]| {
        let config = Config {
            listeners: listeners(binds),
            ..Config::default()
        };
        config.validate().map_err(|e| (e.listener, e.to_string()))
    };
    assert_eq!(
        check(&["127.0.0.1:1883", "127.0.0.1:1883"]),
        Err((
            Some(1),
            "listener[1].bind: 127.0.0.1:1883 is already a listener".to_string()
        ))
    );
    assert!(check(&["0.0.0.0:1883", "10.0.0.1:1883"]).is_err());
    assert!(check(&["[::1]:1883", "[::]:1883"]).is_err());
    // IPv6 listeners are IPv6-only: both wildcards bind together.
    assert_eq!(check(&["0.0.0.0:1883", "[::]:1883"]), Ok(()));
    assert_eq!(check(&["127.0.0.1:1883", "127.0.0.2:1883"]), Ok(()));
    // Port 0 picks a free port each time.
    assert_eq!(check(&["127.0.0.1:0", "127.0.0.1:0"]), Ok(()));
}

#[test]
fn detects_mosquitto_conf_by_its_syntax() {
    use ConfigFormat::{Mosquitto, Toml};
    let cases = [
        ("", Toml),
        ("# only a comment\n\n", Toml),
        ("listener 1883\nallow_anonymous true\n", Mosquitto),
        ("  # indented comment\n\tport 1883\r\n", Mosquitto),
        ("per_listener_settings true", Mosquitto),
        // A bare key with no value is still mosquitto syntax (and its reader's error).
        ("allow_anonymous\n", Mosquitto),
        ("allow_anonymous = true\n", Toml),
        ("allow_anonymous=true\n", Toml),
        ("[[listener]]\nbind = \"127.0.0.1:1883\"\n", Toml),
        ("[log]\n", Toml),
        ("\"quoted key\" = 1\n", Toml),
        // Mixed: TOML wins, so that the TOML reader names the stray line.
        ("listener 1883\nmax_connections = 5\n", Toml),
        // An `=` in a mosquitto value does not make it TOML.
        ("auth_opt_uri postgres://h/db?a=b\n", Mosquitto),
        ("log_timestamp_format %Y-%m-%dT%H:%M:%S # =\n", Mosquitto),
    ];
    for (text, format) in cases {
        assert_eq!(ConfigFormat::detect(text), format, "{text:?}");
    }
}

#[test]
fn load_reports_an_unreadable_file() {
    let e = super::load("/nonexistent/midge.toml").expect_err("no such file");
    assert!(
        e.to_string()
            .starts_with("cannot read configuration file /nonexistent/midge.toml: "),
        "{e}"
    );
}
