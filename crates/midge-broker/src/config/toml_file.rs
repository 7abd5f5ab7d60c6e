//! The reader of Midge's own TOML: serde with `deny_unknown_fields`, then
//! [`Config::validate`]. toml reports a byte span; this turns it into `file:line:column`
//! and names the key (`[log]`'s `level` is `log.level`).

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Config, ConfigError, ConfigFormat, InvalidValue, LoadedConfig, Location};

pub(super) fn parse(text: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
    /// Whether `listener` is given (else the defaults stand, and `-p` may replace them),
    /// and `allow_anonymous`.
    #[derive(Deserialize)]
    struct Given {
        listener: Option<IgnoredAny>,
        allow_anonymous: Option<IgnoredAny>,
    }
    let given = toml::from_str::<Given>(text).map_err(|e| syntax_error(text, path, &e))?;
    let listeners_defined = given.listener.is_some();
    if listeners_defined && given.allow_anonymous.is_none() {
        // As Mosquitto 2: once listeners are defined, anonymous clients are refused
        // unless allowed.
        config.allow_anonymous = false;
    }
    config
        .validate()
        .map_err(|invalid| locate(text, path, invalid))?;
    let warnings = Vec::new();
    Ok(LoadedConfig {
        config,
        format: ConfigFormat::Toml,
        warnings,
        listeners_defined,
    })
}

fn syntax_error(text: &str, path: &Path, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim_end().to_string();
    let Some(span) = error.span() else {
        return ConfigError::Syntax {
            at: Location::new(path, 1),
            message,
        };
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_index = text[..start].matches('\n').count();
    let at = Location {
        path: path.to_path_buf(),
        line: line_index + 1,
        column: Some(text[line_start..start].chars().count() + 1),
    };
    // serde's "unknown field `x`" already names the key.
    let message = match key_at(text, line_index) {
        Some(key) if !message.starts_with("unknown field") => format!("{key}: {message}"),
        _ => message,
    };
    ConfigError::Syntax { at, message }
}

/// The key assigned on line `line_index` (from 0), prefixed with its table: `log.level`.
fn key_at(text: &str, line_index: usize) -> Option<String> {
    let mut table = None;
    let mut key = None;
    for (i, line) in text.lines().enumerate().take(line_index + 1) {
        let line = line.trim();
        if let Some(header) = table_header(line) {
            table = Some(header);
        } else if i == line_index {
            key = line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| is_bare_key(k));
        }
    }
    let key = key?;
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    })
}

/// `log` for `[log]`, `listener` for `[[listener]]`.
fn table_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(inner[..end].trim_matches(['[', ' ']))
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Names the line where the refused key is set, if it is in the file (it may be a
/// default).
fn locate(text: &str, path: &Path, invalid: InvalidValue) -> ConfigError {
    let (table, key) = match invalid.key.split_once('.') {
        Some((table, key)) => (Some(table), key),
        None => (None, invalid.key),
    };
    match find_key_line(text, table, invalid.listener, key) {
        Some(line) => ConfigError::BadValue {
            at: Location::new(path, line),
            key: invalid.key_path(),
            problem: invalid.problem,
        },
        None => ConfigError::Invalid {
            path: path.to_path_buf(),
            invalid,
        },
    }
}

/// The line (from 1) that sets `key` in `table` (the `index`th of an array of tables),
/// or failing that the line that opens that table; `None` if neither is in the file.
fn find_key_line(
    text: &str,
    table: Option<&str>,
    index: Option<usize>,
    key: &str,
) -> Option<usize> {
    let mut current: Option<(&str, usize)> = None;
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut table_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = table_header(line) {
            let count = match seen.iter_mut().find(|(name, _)| *name == header) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    seen.push((header, 0));
                    0
                }
            };
            current = Some((header, count));
            if table == Some(header) && index.unwrap_or(0) == count {
                table_line = Some(i + 1);
            }
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let in_table = match (table, current) {
            (None, None) => true,
            (Some(t), Some((name, count))) => t == name && index.unwrap_or(0) == count,
            _ => false,
        };
        let dotted = table.is_some_and(|t| current.is_none() && k == format!("{t}.{key}"));
        if (in_table && k == key) || dotted {
            return Some(i + 1);
        }
        // `listener = [{ bind = … }]`, `log = { … }`: the line of the table's key.
        if current.is_none() && table == Some(k) && table_line.is_none() {
            table_line = Some(i + 1);
        }
    }
    table_line
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::parse;
    use crate::config::{Config, ConfigError, LogLevel};

    fn error(text: &str) -> ConfigError {
        parse(text, Path::new("midge.toml")).expect_err("refused")
    }

    #[test]
    fn empty_file_is_the_defaults_and_defines_no_listener() {
        let loaded = parse("", Path::new("midge.toml")).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(!loaded.listeners_defined);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn defined_listeners_refuse_anonymous_clients_unless_allowed() {
        let listener = "[[listener]]\nbind = \"127.0.0.1:1884\"\n";
        let c = parse(listener, Path::new("midge.toml")).unwrap().config;
        assert!(!c.allow_anonymous);
        let text = format!("allow_anonymous = true\n{listener}");
        assert!(
            parse(&text, Path::new("midge.toml"))
                .unwrap()
                .config
                .allow_anonymous
        );
        // No listener: the local-only defaults, anonymous clients allowed.
        let c = parse("max_connections = 3\n", Path::new("midge.toml"))
            .unwrap()
            .config;
        assert!(c.allow_anonymous);
    }

    #[test]
    fn per_listener_security_settings() {
        let text = r#"
per_listener_settings = true
password_file = "/etc/midge/passwd"

[[listener]]
bind = "127.0.0.1:1884"
allow_anonymous = true
acl_file = "/etc/midge/acl-1884"

[[listener]]
bind = "127.0.0.1:1885"
password_file = "/etc/midge/passwd-1885"
"#;
        let c = parse(text, Path::new("midge.toml")).unwrap().config;
        let first = c.listener_security(0);
        assert!(first.allow_anonymous);
        assert_eq!(
            first.password_file.as_deref(),
            Some(Path::new("/etc/midge/passwd"))
        );
        assert_eq!(
            first.acl_file.as_deref(),
            Some(Path::new("/etc/midge/acl-1884"))
        );
        let second = c.listener_security(1);
        assert!(!second.allow_anonymous);
        assert_eq!(
            second.password_file.as_deref(),
            Some(Path::new("/etc/midge/passwd-1885"))
        );
        assert_eq!(second.acl_file, None);
        // Without per_listener_settings a listener may not set them.
        let e = error("[[listener]]\nbind = \"127.0.0.1:1884\"\nallow_anonymous = true\n");
        assert_eq!(
            e.to_string(),
            "midge.toml:3: listener[0].allow_anonymous: is a per-listener setting: set \
             per_listener_settings = true (or set it globally)"
        );
    }

    #[test]
    fn unix_socket_and_proxy_protocol_listeners() {
        let text = r#"
[[listener]]
unix_socket = "/run/midge/mqtt.sock"

[[listener]]
bind = "127.0.0.1:1883"
proxy_protocol = true
"#;
        let c = parse(text, Path::new("midge.toml")).unwrap().config;
        assert_eq!(c.listeners[0].bind, None);
        assert_eq!(c.listeners[0].name(), "unix:/run/midge/mqtt.sock");
        assert!(c.listeners[1].proxy_protocol && !c.listeners[0].proxy_protocol);
        let e = error("[[listener]]\nproxy_protocol = true\n");
        assert_eq!(
            e.to_string(),
            "midge.toml:1: listener[0].bind: missing: give an address and port, or a unix_socket"
        );
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
allow_anonymous = false
per_listener_settings = true
max_connections = 7
max_packet_size = 1000
message_size_limit = 500
max_inflight_messages = 3
max_queued_messages = 4
max_queued_bytes = 5
queue_qos0_messages = true
max_keepalive = 60
persistent_client_expiration = 3600
retain_available = false
upgrade_outgoing_qos = true
max_topic_alias = 0
connect_timeout = 2
persistence = true
persistence_location = "/var/lib/midge"
max_retained_messages = 1000000
max_retained_bytes = 1073741824

[[listener]]
bind = "0.0.0.0:1884"

[[listener]]
bind = "[::]:1884"

[log]
level = "debug"
stderr = false
stdout = true
file = "/tmp/midge.log"
"#;
        let loaded = parse(text, Path::new("midge.toml")).unwrap();
        assert!(loaded.listeners_defined);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        let binds: Vec<String> = c.listeners.iter().map(|l| l.name()).collect();
        assert_eq!(binds, ["0.0.0.0:1884", "[::]:1884"]);
        assert!(!c.allow_anonymous);
        assert!(c.per_listener_settings);
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.max_packet_size, 1000);
        assert_eq!(c.message_size_limit, 500);
        assert_eq!(c.max_inflight_messages, 3);
        assert_eq!(c.max_queued_messages, 4);
        assert_eq!(c.max_queued_bytes, 5);
        assert!(c.queue_qos0_messages);
        assert_eq!(c.max_keepalive, 60);
        assert_eq!(c.persistent_client_expiration, Some(3600));
        assert!(!c.retain_available);
        assert!(c.upgrade_outgoing_qos);
        assert_eq!(c.max_topic_alias, 0);
        assert_eq!(c.connect_timeout, 2);
        assert!(c.persistence);
        assert_eq!(
            c.persistence_location.as_deref(),
            Some(Path::new("/var/lib/midge"))
        );
        assert_eq!(c.max_retained_messages, 1_000_000);
        assert_eq!(c.max_retained_bytes, 1 << 30);
        assert_eq!(c.log.level, LogLevel::Debug);
        assert!(!c.log.stderr);
        assert!(c.log.stdout);
        assert_eq!(c.log.file.as_deref(), Some(Path::new("/tmp/midge.log")));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = error("max_connections = 1\nmax_inflight = 5\n");
        let text = e.to_string();
        assert!(
            text.starts_with("midge.toml:2:1: unknown field `max_inflight`"),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_in_a_table_is_refused() {
        let e = error("[log]\nlevel = \"info\"\ncolour = true\n");
        assert_eq!(e.location().map(|l| l.line), Some(3));
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key_and_column() {
        let e = error("# comment\nmax_inflight_messages = \"many\"\n");
        let text = e.to_string();
        assert!(
            text.starts_with("midge.toml:2:25: max_inflight_messages: invalid type"),
            "{text}"
        );
    }

    #[test]
    fn bad_value_in_a_table_names_the_dotted_key() {
        let e = error("[log]\nlevel = \"loud\"\n");
        let text = e.to_string();
        assert!(text.starts_with("midge.toml:2:9: log.level: "), "{text}");
    }

    #[test]
    fn bad_listener_address_names_its_line() {
        let e = error("[[listener]]\nbind = \"127.0.0.1:70000\"\n");
        let text = e.to_string();
        assert!(
            text.starts_with("midge.toml:2:8: listener.bind: "),
            "{text}"
        );
    }

    #[test]
    fn validation_error_names_the_line_of_the_key() {
        let e = error("max_connections = 1\n\nmax_inflight_messages = 0\n");
        assert_eq!(
            e.to_string(),
            "midge.toml:3: max_inflight_messages: must be at least 1 (65535: as many as MQTT allows)"
        );
    }

    #[test]
    fn duplicate_listener_names_the_second_one() {
        let text =
            "[[listener]]\nbind = \"127.0.0.1:1883\"\n\n[[listener]]\nbind = \"0.0.0.0:1883\"\n";
        let e = error(text);
        assert_eq!(
            e.to_string(),
            "midge.toml:5: listener[1].bind: 0.0.0.0:1883 overlaps the listener on 127.0.0.1:1883"
        );
    }

    #[test]
    fn empty_listener_list_is_refused() {
        let e = error("listener = []\n");
        assert_eq!(
            e.to_string(),
            "midge.toml:1: listener: at least one listener is needed"
        );
    }

    #[test]
    fn empty_persistence_location_is_refused() {
        let e = error("persistence = true\npersistence_location = \"\"\n");
        assert_eq!(
            e.to_string(),
            "midge.toml:2: persistence_location: the directory name is empty (leave it out for \
             the working directory)"
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = error("max_connections = 1\nlistener 1883\n");
        assert_eq!(e.location().map(|l| l.line), Some(2));
    }
}
