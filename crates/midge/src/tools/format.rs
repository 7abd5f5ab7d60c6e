//! How `midge sub` and `midge rr` print a message: `-v`, `-N` and `-F` with
//! `mosquitto_sub`'s format codes, flags, widths and escapes
//! (`client/sub_client_output.c`), byte for byte.
//!
//! Supported: every code of mosquitto_sub 2.0, `%% %A %C %D %E %F %I %j %J %l %m %P %p
//! %q %R %r %S %t %U %x %X`, the `-`/`0` flags, field widths and precisions, `@@` and the
//! `@` strftime codes (`clock.rs`; the time codes only where local time is UTC), `%j`
//! and `%J` with `--pretty` (`json.rs`), and the escapes `\\ \0 \a \e \n \r \t \v`.

use midge_codec::Publish;

use super::{clock, json};

/// Validates a `-F` format as mosquitto_sub's `check_format` does (same messages), and
/// refuses the codes this printer does not support yet.
pub(super) fn check(format: &str) -> Result<(), String> {
    let s = format.as_bytes();
    let len = s.len();
    let incomplete = || Err("Error: Incomplete format specifier.\n".to_owned());
    let mut i = 0;
    while i < len {
        match s[i] {
            b'%' => {
                if i == len - 1 {
                    return incomplete();
                }
                for flag in [b'-', b'0'] {
                    if s[i + 1] == flag {
                        i += 1;
                        if i == len - 1 {
                            return incomplete();
                        }
                    }
                }
                while s[i + 1].is_ascii_digit() {
                    i += 1;
                    if i == len - 1 {
                        return incomplete();
                    }
                }
                if s[i + 1] == b'.' {
                    i += 1;
                    if i == len - 1 {
                        return incomplete();
                    }
                    while s[i + 1].is_ascii_digit() {
                        i += 1;
                        if i == len - 1 {
                            return incomplete();
                        }
                    }
                }
                match s[i + 1] {
                    b'%' | b'A' | b'C' | b'D' | b'E' | b'F' | b'l' | b'm' | b'P' | b'p' | b'q'
                    | b'R' | b'S' | b'r' | b't' | b'U' | b'x' | b'X' => {}
                    b'I' if clock::local_is_utc() => {}
                    b'I' => return Err(outside_utc("%I")),
                    b'j' | b'J' if clock::local_is_utc() => {}
                    code @ (b'j' | b'J') => return Err(outside_utc(&format!("%{}", code as char))),
                    code => {
                        return Err(format!(
                            "Error: Invalid format specifier '{}'.\n",
                            code as char
                        ));
                    }
                }
                i += 1;
            }
            b'@' => {
                if i == len - 1 {
                    return incomplete();
                }
                let code = s[i + 1];
                if code != b'@' {
                    if !clock::CODES.contains(&code) {
                        return Err(format!(
                            "Error: the format code @{} is not supported yet.\n",
                            code as char
                        ));
                    }
                    if !clock::local_is_utc() {
                        return Err(outside_utc(&format!("@{}", code as char)));
                    }
                }
                i += 1;
            }
            b'\\' => {
                if i == len - 1 {
                    return Err("Error: Incomplete escape specifier.\n".to_owned());
                }
                match s[i + 1] {
                    b'\\' | b'0' | b'a' | b'e' | b'n' | b'r' | b't' | b'v' => {}
                    c => {
                        return Err(format!(
                            "Error: Invalid escape specifier '{}'.\n",
                            c as char
                        ));
                    }
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn outside_utc(code: &str) -> String {
    format!(
        "Error: the format code {code} is only supported yet when local time is UTC (TZ=UTC).\n"
    )
}

/// One `%` conversion: `%[-][0][width][.precision]code`.
#[derive(Debug, Clone, Copy)]
struct Spec {
    left: bool,
    pad: u8,
    width: usize,
    precision: Option<usize>,
    code: u8,
}

/// Parses the conversion starting after a `%` at `start` as mosquitto does (its bounds
/// checks included); returns it (None at the end of the string) and the index of its
/// code.
fn spec(f: &[u8], start: usize) -> (Option<Spec>, usize) {
    let len = f.len();
    let mut i = start;
    let mut s = Spec {
        left: false,
        pad: b' ',
        width: 0,
        precision: None,
        code: 0,
    };
    if f[i] == b'-' {
        s.left = true;
        if i < len - 1 {
            i += 1;
        }
    }
    if f[i] == b'0' {
        s.pad = b'0';
        if i < len - 1 {
            i += 1;
        }
    }
    while i < len - 1 && f[i].is_ascii_digit() {
        s.width = s.width * 10 + usize::from(f[i] - b'0');
        i += 1;
    }
    if f[i] == b'.' && i < len - 1 {
        i += 1;
        let mut precision = 0;
        while i < len - 1 && f[i].is_ascii_digit() {
            precision = precision * 10 + usize::from(f[i] - b'0');
            i += 1;
        }
        s.precision = Some(precision);
    }
    s.code = f[i];
    (Some(s), i)
}

/// How messages are printed: `-F`, `-v`, `-N`, `--pretty`, and whether the
/// connection is MQTT 5.0 (`%j` shows properties only then).
#[derive(Debug, Clone, Copy)]
pub(super) struct Style<'a> {
    pub(super) format: Option<&'a str>,
    pub(super) verbose: bool,
    pub(super) eol: bool,
    pub(super) pretty: bool,
    pub(super) v5: bool,
}

/// Appends `message` as the style says; returns the error messages of codes that could
/// not print (`%J` of a payload that is not JSON), for standard error.
pub(super) fn print(out: &mut Vec<u8>, message: &Publish, style: Style<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let Style {
        format,
        verbose,
        eol,
        ..
    } = style;
    if let Some(format) = format {
        formatted(out, message, format, style, &mut errors);
        if eol {
            out.push(b'\n');
        }
    } else if verbose {
        out.extend_from_slice(message.topic.as_str().as_bytes());
        if message.payload.is_empty() {
            if eol {
                out.extend_from_slice(b" (null)\n");
            } else {
                out.truncate(out.len() - message.topic.as_str().len());
            }
        } else {
            out.push(b' ');
            out.extend_from_slice(&message.payload);
            if eol {
                out.push(b'\n');
            }
        }
    } else if !message.payload.is_empty() {
        out.extend_from_slice(&message.payload);
        if eol {
            out.push(b'\n');
        }
    }
    errors
}

fn formatted(
    out: &mut Vec<u8>,
    message: &Publish,
    format: &str,
    style: Style<'_>,
    errors: &mut Vec<String>,
) {
    let f = format.as_bytes();
    let len = f.len();
    let mut time = None;
    let mut i = 0;
    while i < len {
        match f[i] {
            b'%' => {
                if i < len - 1 {
                    let (s, end) = spec(f, i + 1);
                    if let Some(s) = s {
                        percent(out, message, s, style, errors);
                    }
                    i = end;
                }
            }
            b'@' => {
                if i < len - 1 {
                    i += 1;
                    if f[i] == b'@' {
                        out.push(b'@');
                    } else {
                        let tm = *time.get_or_insert_with(|| clock::Tm::at(now()));
                        let mut text = String::new();
                        tm.strftime(f[i], &mut text);
                        out.extend_from_slice(text.as_bytes());
                    }
                }
            }
            b'\\' => {
                if i < len - 1 {
                    i += 1;
                    let c = match f[i] {
                        b'\\' => Some(b'\\'),
                        b'0' => Some(0),
                        b'a' => Some(7),
                        b'e' => Some(0x1b),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'v' => Some(0x0b),
                        _ => None,
                    };
                    out.extend(c);
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
}

fn percent(out: &mut Vec<u8>, m: &Publish, s: Spec, style: Style<'_>, errors: &mut Vec<String>) {
    let p = &m.properties;
    match s.code {
        b'%' => out.push(b'%'),
        b'A' => int_or_blank(out, p.topic_alias.map(i64::from), s),
        b'C' => match &p.content_type {
            Some(v) => string(out, v.as_bytes(), s),
            None => blank(out, b' ', s.width),
        },
        b'D' => out.extend_from_slice(p.correlation_data.as_deref().unwrap_or_default()),
        b'E' => int_or_blank(out, p.message_expiry_interval.map(i64::from), s),
        b'F' => int_or_blank(out, p.payload_format_indicator.map(i64::from), s),
        b'l' => int(out, m.payload.len() as i64, s),
        b'm' => int(out, m.packet_id.map_or(0, |id| i64::from(id.get())), s),
        b'P' => {
            for (n, (name, value)) in p.user_properties.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(name.as_bytes());
                out.push(b':');
                out.extend_from_slice(value.as_bytes());
            }
        }
        b'p' => payload(out, &m.payload, Hex::No, s),
        b'q' => out.push(b'0' + m.qos as u8),
        b'R' => {
            if let Some(topic) = &p.response_topic {
                string(out, topic.as_str().as_bytes(), s);
            }
        }
        b'r' => out.push(if m.retain { b'1' } else { b'0' }),
        b'S' => int_or_blank(
            out,
            p.subscription_identifiers.first().map(|&id| i64::from(id)),
            s,
        ),
        b't' => string(out, m.topic.as_str().as_bytes(), s),
        b'U' => out.extend_from_slice(clock::Tm::at(now()).unix().as_bytes()),
        b'I' => string(out, clock::Tm::at(now()).iso8601().as_bytes(), s),
        b'j' | b'J' => {
            let has_properties = style.v5 && m.properties != Default::default();
            let kind = if s.code == b'j' {
                json::Payload::String
            } else {
                json::Payload::Parsed
            };
            let tm = clock::Tm::at(now());
            if json::print(out, m, &tm, has_properties, style.pretty, kind).is_err() {
                errors.push(format!(
                    "Error: Message payload is not valid JSON on topic {}.\n",
                    m.topic.as_str()
                ));
            }
        }
        b'x' => payload(out, &m.payload, Hex::Lower, s),
        b'X' => payload(out, &m.payload, Hex::Upper, s),
        _ => {}
    }
}

/// The one place these tools read the wall clock (`%U`, `--random-filter`'s seed).
#[allow(clippy::disallowed_methods)]
pub(super) fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

fn blank(out: &mut Vec<u8>, pad: u8, width: usize) {
    out.extend(std::iter::repeat_n(pad, width));
}

/// C's `%d`, `%-*d`, `%0*d`, `%*d`.
fn int(out: &mut Vec<u8>, value: i64, s: Spec) {
    let text = if s.left {
        format!("{value:<w$}", w = s.width)
    } else if s.pad == b'0' {
        format!("{value:0w$}", w = s.width)
    } else {
        format!("{value:>w$}", w = s.width)
    };
    out.extend_from_slice(text.as_bytes());
}

fn int_or_blank(out: &mut Vec<u8>, value: Option<i64>, s: Spec) {
    match value {
        Some(value) => int(out, value, s),
        None => blank(out, s.pad, s.width),
    }
}

/// C's `%*.*s` on bytes: the precision cuts, the width pads with spaces.
fn string(out: &mut Vec<u8>, value: &[u8], s: Spec) {
    let value = match s.precision {
        Some(p) if p < value.len() => &value[..p],
        _ => value,
    };
    let pad = s.width.saturating_sub(value.len());
    if !s.left {
        blank(out, b' ', pad);
    }
    out.extend_from_slice(value);
    if s.left {
        blank(out, b' ', pad);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hex {
    No,
    Lower,
    Upper,
}

/// mosquitto's `write_payload`, quirks included: a width also cuts the payload (to half
/// of it in hex), and the padding uses the `0` flag's character only on the left.
fn payload(out: &mut Vec<u8>, data: &[u8], hex: Hex, s: Spec) {
    let mut len = data.len() as i64;
    let width = s.width as i64;
    let padlen = if width > 0 {
        len = len.min(width);
        if hex != Hex::No {
            len /= 2;
            width - len * 2
        } else {
            width - len
        }
    } else {
        width - len
    };
    if !s.left {
        blank(out, s.pad, padlen.max(0) as usize);
    }
    let data = &data[..len as usize];
    match hex {
        Hex::No => out.extend_from_slice(data),
        Hex::Lower => data
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02x}").as_bytes())),
        Hex::Upper => data
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02X}").as_bytes())),
    }
    if s.left {
        blank(out, b' ', padlen.max(0) as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midge_codec::TopicName;

    fn render(format: &str, payload: &str) -> String {
        let message = Publish::new(TopicName::new("a/b").unwrap(), payload.to_owned());
        let mut out = Vec::new();
        let style = Style {
            format: Some(format),
            verbose: false,
            eol: false,
            pretty: false,
            v5: true,
        };
        print(&mut out, &message, style);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn widths_flags_and_escapes() {
        assert_eq!(render("%t|%5t|%-5t|%.1t", "x"), "a/b|  a/b|a/b  |a");
        assert_eq!(render("%05l|%-5l|%5l", "xyz"), "00003|3    |    3");
        assert_eq!(
            render("%x %X %4p", "\u{1}\u{ff}"),
            "01c3bf 01C3BF  \u{1}\u{ff}"
        );
        assert_eq!(render("\\t%%@@%q%r", "x"), "\t%@00");
    }

    #[test]
    fn unsupported_codes_refused() {
        assert!(check("%Q").is_err());
        assert!(check("@q").is_err());
        assert!(check("%t %p @@").is_ok());
    }
}
