//! The mosquitto.conf reader: every supported key, Mosquitto's defaults and quirks,
//! `include_dir`, and the errors and warnings with their file and line. Expected
//! behaviour was checked against Mosquitto 2.0.11 where it is not in mosquitto.conf(5).

use std::path::{Path, PathBuf};

use super::{keys, mosquitto_order, parse, parse_duration};
use crate::config::{
    Config, ConfigError, ConfigFormat, ListenerProtocol, LoadedConfig, LogLevel, TlsVersion,
};

fn load(text: &str) -> LoadedConfig {
    let loaded = parse(text, Path::new("mosquitto.conf")).expect("valid");
    assert_eq!(loaded.format, ConfigFormat::Mosquitto);
    loaded
}

fn config(text: &str) -> Config {
    load(text).config
}

fn error(text: &str) -> String {
    parse(text, Path::new("mosquitto.conf"))
        .expect_err("refused")
        .to_string()
}

fn binds(config: &Config) -> Vec<String> {
    config.listeners.iter().map(|l| l.name()).collect()
}

fn warnings(text: &str) -> Vec<String> {
    load(text).warnings.iter().map(|w| w.to_string()).collect()
}

#[test]
fn no_listener_is_local_only_with_anonymous_clients() {
    let loaded = load("# nothing but settings\nmax_queued_messages 10\n");
    assert!(!loaded.listeners_defined);
    assert_eq!(binds(&loaded.config), ["127.0.0.1:1883", "[::1]:1883"]);
    assert!(loaded.config.allow_anonymous);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn listener_without_address_binds_every_interface_and_refuses_anonymous() {
    let loaded = load("listener 1884\n");
    assert!(loaded.listeners_defined);
    assert_eq!(binds(&loaded.config), ["0.0.0.0:1884", "[::]:1884"]);
    assert!(!loaded.config.allow_anonymous);
}

#[test]
fn listener_with_address_binds_it() {
    let c = config("listener 1884 127.0.0.1\nlistener 1885 ::1\nlistener 1886 [::1]\n");
    assert_eq!(binds(&c), ["127.0.0.1:1884", "[::1]:1885", "[::1]:1886"]);
}

#[test]
fn listener_with_host_name_is_resolved() {
    let c = config("listener 1884 localhost\n");
    assert!(!c.listeners.is_empty());
    assert!(
        c.listeners
            .iter()
            .all(|l| l.bind.is_some_and(|b| b.ip().is_loopback()))
    );
}

#[test]
fn allow_anonymous_true_with_a_listener() {
    let c = config("listener 1884\nallow_anonymous true\n");
    assert!(c.allow_anonymous);
    // Global: its place in the file does not matter.
    let c = config("allow_anonymous true\nlistener 1884\n");
    assert!(c.allow_anonymous);
}

#[test]
fn port_and_bind_address_set_the_deprecated_default_listener() {
    let loaded = load("port 1885\n");
    assert_eq!(binds(&loaded.config), ["0.0.0.0:1885", "[::]:1885"]);
    assert!(!loaded.config.allow_anonymous);
    assert!(loaded.listeners_defined);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0]
            .to_string()
            .starts_with("mosquitto.conf:1: `port` is deprecated"),
        "{}",
        loaded.warnings[0]
    );

    let c = config("bind_address 127.0.0.1\n");
    assert_eq!(binds(&c), ["127.0.0.1:1883"]);
    assert!(!c.allow_anonymous);

    // Explicit listeners first, then the default listener, as Mosquitto opens them.
    let c = config("port 1885\nlistener 1886 127.0.0.1\n");
    assert_eq!(binds(&c), ["127.0.0.1:1886", "0.0.0.0:1885", "[::]:1885"]);
}

#[test]
fn socket_domain_limits_a_listener_to_one_family() {
    let c = config("listener 1884\nsocket_domain ipv4\nlistener 1885\nsocket_domain ipv6\n");
    assert_eq!(binds(&c), ["0.0.0.0:1884", "[::]:1885"]);
    let e = error("listener 1884 127.0.0.1\nsocket_domain ipv6\n");
    assert!(
        e.starts_with("mosquitto.conf:1: listener: `127.0.0.1` has no address"),
        "{e}"
    );
}

#[test]
fn max_connections_before_any_listener_starts_the_default_listener() {
    // Mosquitto 2.0 does so, on every interface, and still allows anonymous clients
    // (no `listener` or `port` was given).
    let loaded = load("max_connections 10\n");
    assert_eq!(binds(&loaded.config), ["0.0.0.0:1883", "[::]:1883"]);
    assert_eq!(loaded.config.max_connections, 10);
    assert!(loaded.config.allow_anonymous);
    assert!(loaded.listeners_defined);
    // -1 is Mosquitto's "unlimited", and starts nothing.
    let loaded = load("max_connections -1\n");
    assert!(!loaded.listeners_defined);
    assert_eq!(loaded.config.max_connections, 0);
}

#[test]
fn every_global_key_is_read() {
    let c = config(
        "listener 1884
allow_anonymous true
per_listener_settings false
max_connections 50
max_topic_alias 3
max_packet_size 1000
message_size_limit 500
max_inflight_messages 5
max_queued_messages 6
max_queued_bytes 7
queue_qos0_messages true
max_keepalive 60
persistent_client_expiration 2h
retain_available false
upgrade_outgoing_qos true
protocol mqtt
persistence false
",
    );
    assert!(c.allow_anonymous);
    assert!(!c.per_listener_settings);
    assert_eq!(c.max_connections, 50);
    assert_eq!(c.max_topic_alias, 3);
    assert_eq!(c.max_packet_size, 1000);
    assert_eq!(c.message_size_limit, 500);
    assert_eq!(c.max_inflight_messages, 5);
    assert_eq!(c.max_queued_messages, 6);
    assert_eq!(c.max_queued_bytes, 7);
    assert!(c.queue_qos0_messages);
    assert_eq!(c.max_keepalive, 60);
    assert_eq!(c.persistent_client_expiration, Some(7200));
    assert!(!c.retain_available);
    assert!(c.upgrade_outgoing_qos);
}

#[test]
fn mosquitto_zero_values_mean_no_limit() {
    let c = config("max_inflight_messages 0\nmax_queued_messages 0\nmax_connections 0\n");
    assert_eq!(c.max_inflight_messages, u16::MAX);
    assert_eq!(c.max_queued_messages, 0);
    assert_eq!(c.max_connections, 0);
    // Above MQTT's maximum is no limit at all.
    let c = config("max_packet_size 4294967295\n");
    assert_eq!(c.max_packet_size, midge_codec::MAX_PACKET_SIZE as u32);
}

#[test]
fn unset_keys_keep_mosquittos_defaults() {
    let c = config("listener 1884\n");
    let d = Config::default();
    assert_eq!(c.max_inflight_messages, 20);
    assert_eq!(c.max_queued_messages, 1000);
    assert_eq!(c.max_topic_alias, 10);
    assert_eq!(c.max_keepalive, 65535);
    assert_eq!(c.log, d.log);
    assert_eq!(
        Config {
            listeners: d.listeners.clone(),
            allow_anonymous: true,
            ..c
        },
        d
    );
}

#[test]
fn durations() {
    for (value, seconds) in [
        ("2h", 7200),
        ("14d", 14 * 86_400),
        ("1w", 7 * 86_400),
        ("1m", 30 * 86_400),
        ("1y", 365 * 86_400),
        ("136y", 136 * 365 * 86_400),
    ] {
        assert_eq!(parse_duration(value), Ok(seconds), "{value}");
    }
    for value in [
        "10",
        "5s",
        "0d",
        "h",
        "-1d",
        "1.5d",
        "d1",
        "137y",
        "99999999999999999999y",
    ] {
        assert!(parse_duration(value).is_err(), "{value}");
    }
    assert_eq!(
        error("persistent_client_expiration 3600\n"),
        "mosquitto.conf:1: persistent_client_expiration: `3600` is not a duration: a whole \
         number followed by h, d, w, m or y (2h, 14d, 1w, 1m, 1y)"
    );
}

#[test]
fn log_dest_and_log_type() {
    let log = |text: &str| config(text).log;
    let default = log("");
    assert_eq!(default.level, LogLevel::Info);
    assert!(default.stderr && !default.stdout && default.file.is_none());

    // The first log_dest replaces the default destination; later ones add to it.
    let l = log("log_dest stdout\n");
    assert!(l.stdout && !l.stderr);
    let l = log("log_dest stdout\nlog_dest file /var/log/mosquitto/a b.log\nlog_dest stderr\n");
    assert!(l.stdout && l.stderr);
    assert_eq!(
        l.file.as_deref(),
        Some(Path::new("/var/log/mosquitto/a b.log"))
    );
    let l = log("log_dest none\n");
    assert!(!l.stdout && !l.stderr && l.file.is_none());

    // The most verbose type sets the level; `none` clears what came before.
    assert_eq!(log("log_type error\n").level, LogLevel::Error);
    assert_eq!(
        log("log_type warning\nlog_type error\n").level,
        LogLevel::Warn
    );
    assert_eq!(log("log_type notice\n").level, LogLevel::Info);
    assert_eq!(log("log_type information\n").level, LogLevel::Info);
    assert_eq!(log("log_type subscribe\n").level, LogLevel::Info);
    assert_eq!(
        log("log_type error\nlog_type debug\n").level,
        LogLevel::Debug
    );
    assert_eq!(log("log_type all\n").level, LogLevel::Debug);
    assert_eq!(log("log_type none\n").level, LogLevel::Off);
    assert_eq!(
        log("log_type debug\nlog_type none\nlog_type error\n").level,
        LogLevel::Error
    );
}

#[test]
fn unsupported_log_dest_is_a_warning_and_falls_back_to_stderr() {
    let loaded = load("log_dest syslog\n");
    assert!(loaded.config.log.stderr);
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "mosquitto.conf:1: `log_dest syslog` is ignored: Midge does not support it yet",
            "mosquitto.conf:1: no `log_dest` that Midge supports: logging to stderr",
        ]
    );
    let loaded = load("log_dest topic\nlog_dest file /tmp/m.log\n");
    assert!(!loaded.config.log.stderr);
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn log_errors() {
    assert_eq!(
        error("log_dest file\n"),
        "mosquitto.conf:1: log_dest: `file` needs a path: log_dest file /var/log/midge.log"
    );
    assert!(error("log_dest printer\n").starts_with("mosquitto.conf:1: log_dest: expected"));
    assert!(error("log_type verbose\n").starts_with("mosquitto.conf:1: log_type: expected"));
}

#[test]
fn per_listener_security_settings() {
    let c = config(
        "per_listener_settings true\nlistener 1884 127.0.0.1\nallow_anonymous true\n\
         password_file /etc/m/passwd-a\nlistener 1885 127.0.0.1\nacl_file /etc/m/acl-b\n",
    );
    assert!(c.per_listener_settings);
    let a = c.listener_security(0);
    assert!(a.allow_anonymous);
    assert_eq!(
        a.password_file.as_deref(),
        Some(Path::new("/etc/m/passwd-a"))
    );
    assert_eq!(a.acl_file, None);
    // Unset: Mosquitto 2's default once listeners are defined.
    let b = c.listener_security(1);
    assert!(!b.allow_anonymous);
    assert_eq!(b.password_file, None);
    assert_eq!(b.acl_file.as_deref(), Some(Path::new("/etc/m/acl-b")));
    // Every address of a listener gets its settings.
    let c = config("per_listener_settings true\nlistener 1884\nallow_anonymous true\n");
    assert_eq!(c.listeners.len(), 2);
    assert!((0..2).all(|i| c.listener_security(i).allow_anonymous));
    // Above the first listener it is the (unstarted) default listener's.
    let loaded = load("per_listener_settings true\nallow_anonymous true\nlistener 1884\n");
    assert!(!loaded.config.listener_security(0).allow_anonymous);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "mosquitto.conf:2: `allow_anonymous` is ignored: above the first `listener` it sets \
         Mosquitto's default listener, which this file does not start"
    );
    // Without per_listener_settings: one setting for all.
    let c = config("listener 1884 127.0.0.1\nallow_anonymous true\nlistener 1885 127.0.0.1\n");
    assert!(c.listener_security(0).allow_anonymous && c.listener_security(1).allow_anonymous);
}

#[test]
fn per_listener_limits_are_merged_with_a_warning() {
    let loaded = load(
        "listener 1884\nmax_connections 10\nmax_topic_alias 5\nlistener 1885\n\
         max_connections 20\n",
    );
    assert_eq!(loaded.config.max_connections, 30);
    assert_eq!(loaded.config.max_topic_alias, 5);
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("mosquitto.conf:2: `max_connections` limits each listener"));
    assert!(w[1].starts_with("mosquitto.conf:3: `max_topic_alias` differs"));

    let loaded = load("listener 1884\nmax_connections 10\nlistener 1885\n");
    assert_eq!(loaded.config.max_connections, 0);
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn unsupported_keys_are_warnings_naming_key_and_line() {
    let w = warnings("listener 1884\nauth_plugin /usr/lib/auth.so\n");
    assert_eq!(
        w,
        [
            "mosquitto.conf:2: `auth_plugin` is ignored: authentication plugins are not \
          supported by Midge yet (`password_file` and `acl_file` are)"
        ]
    );
    for key in keys::all_unsupported() {
        let w = warnings(&format!("listener 1884\n{key} x\n"));
        assert_eq!(w.len(), 1, "{key}");
        assert!(w[0].starts_with(&format!("mosquitto.conf:2: `{key}` is ignored")));
    }
    let w = warnings("auth_opt_backend postgres\nplugin_opt_x y\n");
    assert_eq!(w.len(), 2);
    let w = warnings("persistence true\npersistence_location /var/lib/mosquitto/\n");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn tls_keys_belong_to_their_listener() {
    let c = config(
        "listener 8883 127.0.0.1\ncertfile /etc/m/server.pem\nkeyfile /etc/m/server key.pem\n\
         cafile /etc/m/ca.pem\ncapath /etc/m/cas\nrequire_certificate true\n\
         use_identity_as_username true\ntls_version tlsv1.3\nlistener 1883 127.0.0.1\n",
    );
    let tls = &c.listeners[0];
    assert_eq!(
        tls.certfile.as_deref(),
        Some(Path::new("/etc/m/server.pem"))
    );
    // A path is the rest of the line, spaces included.
    assert_eq!(
        tls.keyfile.as_deref(),
        Some(Path::new("/etc/m/server key.pem"))
    );
    assert_eq!(tls.cafile.as_deref(), Some(Path::new("/etc/m/ca.pem")));
    assert_eq!(tls.capath.as_deref(), Some(Path::new("/etc/m/cas")));
    assert!(tls.require_certificate && tls.use_identity_as_username);
    assert!(!tls.use_subject_as_username);
    assert_eq!(tls.tls_version, Some(TlsVersion::Tls13));
    assert!(!c.listeners[1].is_tls());
    // Every address of a listener gets its settings.
    let c = config(
        "listener 8883\ncertfile c.pem\nkeyfile k.pem\ncafile ca.pem\nuse_subject_as_username true\n",
    );
    assert_eq!(c.listeners.len(), 2);
    assert!(
        c.listeners
            .iter()
            .all(|l| l.is_tls() && l.use_subject_as_username)
    );
    // Before any listener: the default listener's.
    let c = config("port 8883\ncertfile c.pem\nkeyfile k.pem\n");
    assert!(c.listeners.iter().all(|l| l.is_tls()));
    let c = config("listener 8080\nprotocol websockets\nlistener 1883\nprotocol mqtt\n");
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Websockets);
    assert_eq!(c.listeners[2].protocol, ListenerProtocol::Mqtt);
}

#[test]
fn unix_socket_and_proxy_protocol_listeners() {
    let c = config(
        "listener 0 /run/midge/mqtt.sock\nallow_anonymous true\nlistener 1883 127.0.0.1\n\
         enable_proxy_protocol 2\n",
    );
    assert_eq!(binds(&c), ["unix:/run/midge/mqtt.sock", "127.0.0.1:1883"]);
    assert_eq!(
        c.listeners[0].unix_socket.as_deref(),
        Some(Path::new("/run/midge/mqtt.sock"))
    );
    assert!(!c.listeners[0].proxy_protocol);
    assert!(c.listeners[1].proxy_protocol);
    assert_eq!(
        error("listener 0\n"),
        "mosquitto.conf:1: listener: port 0 needs a path: `listener 0 /path/to/socket` is a \
         Unix socket listener"
    );
    assert_eq!(
        error("listener 1883\nenable_proxy_protocol 3\n"),
        "mosquitto.conf:2: enable_proxy_protocol: expected 1 or 2, not `3`"
    );
}

#[test]
fn tls_errors_name_the_line() {
    assert_eq!(
        error("listener 8883\ncertfile c.pem\n"),
        "mosquitto.conf:1: listener: a TLS listener needs both certfile and keyfile: keyfile \
         is missing"
    );
    assert_eq!(
        error("listener 8883\ncafile ca.pem\n"),
        "mosquitto.conf:1: listener: is a TLS setting: give certfile and keyfile too"
    );
    assert_eq!(
        error("listener 8883\ncertfile c\nkeyfile k\nrequire_certificate true\n"),
        "mosquitto.conf:1: listener: needs cafile or capath to check client certificates against"
    );
    assert_eq!(
        error("listener 8883\ntls_version tlsv1.1\n"),
        "mosquitto.conf:2: tls_version: TLS 1.1 and older are not supported by Midge: use \
         tlsv1.2 or tlsv1.3"
    );
    assert_eq!(
        error("listener 8883\ncertfile\n"),
        "mosquitto.conf:2: certfile: missing path"
    );
}

#[test]
fn a_bridge_is_one_warning() {
    let w = warnings(
        "connection upstream\naddress 10.0.0.1:1883\ntopic # both 0\nremote_username u\n\
         listener 1884\n",
    );
    assert_eq!(
        w,
        [
            "mosquitto.conf:1: bridge `upstream` is ignored with all its settings: bridges are \
          not supported by Midge yet"
        ]
    );
    assert_eq!(
        error("topic # both 0\n"),
        "mosquitto.conf:1: topic: is a bridge setting: only allowed after `connection`"
    );
}

#[test]
fn extra_words_are_ignored_with_a_warning_but_comments_are_not() {
    let loaded = load("listener 1884\nallow_anonymous true # open\nmax_keepalive 60 120\n");
    assert!(loaded.config.allow_anonymous);
    assert_eq!(loaded.config.max_keepalive, 60);
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        ["mosquitto.conf:3: `max_keepalive`: extra text `120` after the value is ignored"]
    );
}

#[test]
fn comments_blank_lines_indentation_and_crlf() {
    let c =
        config("# comment\r\n\r\n   \t\r\n  listener 1884 127.0.0.1\r\n\tallow_anonymous true\r\n");
    assert_eq!(binds(&c), ["127.0.0.1:1884"]);
    assert!(c.allow_anonymous);
}

#[test]
fn errors_name_file_line_and_problem() {
    let cases = [
        (
            "listener 1884\nlisten 1885\n",
            "mosquitto.conf:2: unknown configuration key `listen`",
        ),
        (
            "allow_anonymous yes\n",
            "mosquitto.conf:1: allow_anonymous: expected true or false, not `yes`",
        ),
        (
            "allow_anonymous True\n",
            "mosquitto.conf:1: allow_anonymous: expected true or false, not `True`",
        ),
        (
            "\nallow_anonymous\n",
            "mosquitto.conf:2: allow_anonymous: missing value",
        ),
        ("listener\n", "mosquitto.conf:1: listener: missing port"),
        (
            "listener 70000\n",
            "mosquitto.conf:1: listener: `70000` is not a port (1 to 65535)",
        ),
        (
            "port 0\n",
            "mosquitto.conf:1: port: 0 is out of range (1 to 65535)",
        ),
        (
            "max_inflight_messages 70000\n",
            "mosquitto.conf:1: max_inflight_messages: 70000 is out of range (0 to 65535)",
        ),
        (
            "max_queued_messages 10x\n",
            "mosquitto.conf:1: max_queued_messages: `10x` is not a whole number",
        ),
        (
            "max_queued_bytes -1\n",
            "mosquitto.conf:1: max_queued_bytes: -1 is out of range (0 to 9223372036854775807)",
        ),
        (
            "max_keepalive 5\n",
            "mosquitto.conf:1: max_keepalive: 5 is out of range (10 to 65535)",
        ),
        (
            "max_packet_size 10\n",
            "mosquitto.conf:1: max_packet_size: 10 is out of range (20 to 4294967295)",
        ),
        (
            "message_size_limit 268435456\n",
            "mosquitto.conf:1: message_size_limit: 268435456 is out of range (0 to 268435455)",
        ),
        (
            "max_topic_alias 65536\n",
            "mosquitto.conf:1: max_topic_alias: 65536 is out of range (0 to 65535)",
        ),
        (
            "socket_domain ipv5\n",
            "mosquitto.conf:1: socket_domain: expected ipv4 or ipv6, not `ipv5`",
        ),
        (
            "protocol http\n",
            "mosquitto.conf:1: protocol: expected mqtt or websockets, not `http`",
        ),
        (
            "listener 0 /tmp/m.sock\nlistener 0 /tmp/m.sock\n",
            "mosquitto.conf:2: listener: /tmp/m.sock is already a listener",
        ),
        (
            "listener 1884\nlistener 1884\n",
            "mosquitto.conf:2: listener: 0.0.0.0:1884 is already a listener",
        ),
        (
            "listener 1884 127.0.0.1\nlistener 1884\n",
            "mosquitto.conf:2: listener: 0.0.0.0:1884 overlaps the listener on 127.0.0.1:1884",
        ),
        (
            "listener 1884\nport 1884\n",
            "mosquitto.conf:2: port: 0.0.0.0:1884 is already a listener",
        ),
    ];
    for (text, expected) in cases {
        let e = error(text);
        assert!(
            e.starts_with(expected),
            "{text:?}:\n  {e}\n  expected {expected}"
        );
    }
}

#[test]
fn include_dir_reads_conf_files_in_mosquittos_order() {
    let dir = TempDir::new("include");
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    // Later files override earlier ones: the last in Mosquitto's order wins.
    for (name, value) in [
        ("b.conf", 6),
        ("A.conf", 3),
        ("01.conf", 2),
        ("a.conf", 4),
        ("B.conf", 5),
        ("00.conf", 1),
        ("z.txt", 99),
    ] {
        std::fs::write(conf_d.join(name), format!("max_queued_messages {value}\n")).unwrap();
    }
    std::fs::write(conf_d.join("00.conf"), "listener 1884 127.0.0.1\n").unwrap();
    std::fs::write(conf_d.join("a.conf"), "allow_anonymous true\n").unwrap();
    let main = dir.path().join("mosquitto.conf");
    let text = format!(
        "max_queued_messages 100\ninclude_dir {}\n",
        conf_d.display()
    );
    std::fs::write(&main, &text).unwrap();

    let loaded = crate::config::load(&main).unwrap();
    assert_eq!(loaded.config.max_queued_messages, 6);
    assert_eq!(binds(&loaded.config), ["127.0.0.1:1884"]);
    assert!(loaded.config.allow_anonymous);
}

#[test]
fn include_dir_errors_and_warnings_name_the_included_file() {
    let dir = TempDir::new("include-errors");
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(
        conf_d.join("a.conf"),
        "# ok\ninclude_dir /etc\nauth_plugin p\n",
    )
    .unwrap();
    let main = dir.path().join("mosquitto.conf");
    std::fs::write(&main, format!("include_dir {}\n", conf_d.display())).unwrap();
    let loaded = crate::config::load(&main).unwrap();
    let included = conf_d.join("a.conf");
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with(&format!(
        "{}:2: `include_dir` is ignored: Mosquitto reads it only in the main",
        included.display()
    )));
    assert!(w[1].starts_with(&format!("{}:3: `auth_plugin`", included.display())));

    std::fs::write(conf_d.join("b.conf"), "\n\nmax_keepalive 1\n").unwrap();
    let e = crate::config::load(&main).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: max_keepalive: 1 is out of range (10 to 65535)",
            conf_d.join("b.conf").display()
        )
    );
}

#[test]
fn include_dir_must_exist_and_not_hold_the_main_file() {
    let e = error("listener 1884\ninclude_dir /nonexistent/conf.d\n");
    assert!(
        e.starts_with(
            "mosquitto.conf:2: include_dir: cannot open directory `/nonexistent/conf.d`: "
        ),
        "{e}"
    );
    let dir = TempDir::new("include-self");
    let main = dir.path().join("main.conf");
    std::fs::write(&main, format!("include_dir {}\n", dir.path().display())).unwrap();
    let e = crate::config::load(&main).unwrap_err();
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e}");
    assert!(
        e.to_string().contains("holds the main configuration file"),
        "{e}"
    );
}

#[test]
fn include_order_is_mosquittos() {
    let mut names = [
        "b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf", "_.conf",
    ];
    names.sort_by(|a, b| mosquitto_order(a, b));
    // Case-insensitive first (as upper case: `_` sorts after the letters), then upper
    // case before lower case.
    assert_eq!(
        names,
        [
            "00.conf", "01.conf", "A.conf", "a.conf", "B.conf", "b.conf", "_.conf"
        ]
    );
}

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("midge-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `password_file` and `acl_file` are read, not ignored (a broker that ignored them would
/// be open), with their paths as given: Mosquitto opens them from the working directory.
#[test]
fn password_and_acl_files_are_read_as_given() {
    let loaded = load("listener 1884\npassword_file /etc/mosquitto/passwd\nacl_file acl.txt\n");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(
        c.password_file.as_deref(),
        Some(std::path::Path::new("/etc/mosquitto/passwd"))
    );
    assert_eq!(c.acl_file.as_deref(), Some(std::path::Path::new("acl.txt")));
    assert!(!c.allow_anonymous);

    // With per_listener_settings each listener has its own.
    let c = config(
        "per_listener_settings true\nlistener 1884\npassword_file p\nlistener 1885\n\
         password_file q\n",
    );
    assert_eq!(c.password_file, None);
    let files: Vec<_> = (0..4)
        .map(|i| c.listener_security(i).password_file)
        .collect();
    let (p, q) = (Some("p".into()), Some("q".into()));
    assert_eq!(files, [p.clone(), p, q.clone(), q]);
    // Without it, a second, different file is refused.
    let e = error("listener 1884\nacl_file a\nlistener 1885\nacl_file b\n");
    assert!(
        e.starts_with("mosquitto.conf:4: acl_file: a different file (`a`) is already set"),
        "{e}"
    );
    let e = error("password_file\n");
    assert_eq!(e, "mosquitto.conf:1: password_file: missing value");
}

#[test]
fn persistence_keys_are_read_and_autosave_is_explained() {
    let loaded = load(
        "persistence true\npersistence_location /var/lib/mosquitto/\nautosave_interval 1800\n\
         persistence_file mosquitto.db\n",
    );
    let c = &loaded.config;
    assert!(c.persistence);
    assert_eq!(
        c.persistence_location.as_deref(),
        Some(Path::new("/var/lib/mosquitto/"))
    );
    assert_eq!(c.store_dir(), PathBuf::from("/var/lib/mosquitto/"));
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with(
            "mosquitto.conf:3: `autosave_interval` is ignored: Midge does not save \
             snapshots"
        ),
        "{w:?}"
    );
    assert!(w[0].contains("before acknowledging it"), "{w:?}");
    assert!(
        w[1].contains("`midge.redb` in `persistence_location`"),
        "{w:?}"
    );
    // Mosquitto 2's synonym, and the default.
    assert!(config("retained_persistence true\n").persistence);
    assert!(!config("max_queued_messages 5\n").persistence);
    assert_eq!(
        config("max_queued_messages 5\n").store_dir(),
        PathBuf::from(".")
    );
    assert_eq!(
        error("persistence_location\n"),
        "mosquitto.conf:1: persistence_location: missing directory"
    );
    assert!(error("persistence maybe\n").starts_with("mosquitto.conf:1: persistence:"));
}
