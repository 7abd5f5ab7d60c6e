//! The mosquitto.conf keys of Mosquitto 2.0 (mosquitto.conf(5)) that Midge reads but
//! does not do yet. Each gets a warning naming it; a key in none of these lists and not
//! handled by the reader is unknown, and an error.

/// Keys of a bridge, valid only after a `connection` line. Bridges are not supported: the
/// `connection` line gets one warning for the whole section.
pub(super) const BRIDGE: &[&str] = &[
    "address",
    "addresses",
    "bridge_alpn",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_identity",
    "bridge_insecure",
    "bridge_keyfile",
    "bridge_max_packet_size",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "bridge_psk",
    "bridge_require_ocsp",
    "bridge_tls_version",
    "cleansession",
    "clientid",
    "idle_timeout",
    "keepalive_interval",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "notification_topic",
    "notifications",
    "notifications_local_only",
    "password",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "restart_timeout",
    "round_robin",
    "start_type",
    "threshold",
    "topic",
    "try_private",
    "username",
];

const TLS: &[&str] = &[
    "ciphers",
    "ciphers_tls1.3",
    "crlfile",
    "dhparamfile",
    "psk_file",
    "psk_hint",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "tls_keyform",
];

const AUTH: &[&str] = &["auth_plugin", "auth_plugin_deny_special_chars", "plugin"];

const WEBSOCKETS: &[&str] = &[
    "http_dir",
    "websockets_headers_size",
    "websockets_log_level",
];

const OTHER: &[&str] = &[
    "allow_duplicate_messages",
    "allow_zero_length_clientid",
    "auto_id_prefix",
    "bind_interface",
    "check_retain_source",
    "clientid_prefixes",
    "connection_messages",
    "log_facility",
    "log_timestamp",
    "log_timestamp_format",
    "max_inflight_bytes",
    "max_qos",
    "memory_limit",
    "mount_point",
    "pid_file",
    "retry_interval",
    "set_tcp_nodelay",
    "sys_interval",
    "use_username_as_clientid",
    "user",
];

/// Why a known Mosquitto key is ignored, or `None` if Mosquitto 2.0 has no such key.
pub(super) fn unsupported(key: &str) -> Option<&'static str> {
    if TLS.contains(&key) {
        Some("Midge does not support this TLS setting (rustls chooses the cipher suites)")
    } else if AUTH.contains(&key) || key.starts_with("auth_opt_") || key.starts_with("plugin_opt_")
    {
        Some(
            "authentication plugins are not supported by Midge yet (`password_file` and \
             `acl_file` are)",
        )
    } else if WEBSOCKETS.contains(&key) {
        Some("Midge does not support this WebSockets setting")
    } else if OTHER.contains(&key) {
        Some("Midge does not support it yet")
    } else {
        None
    }
}

/// Every key named here, for the tests.
#[cfg(test)]
pub(super) fn all_unsupported() -> impl Iterator<Item = &'static str> {
    [TLS, AUTH, WEBSOCKETS, OTHER]
        .into_iter()
        .flatten()
        .copied()
}
