//! `-F %j` and `%J`: the message as one JSON object, as mosquitto_sub 2.0 prints it
//! through cJSON (`json_print` in `client/sub_client_output.c`): `tst`, `topic`, `qos`,
//! `retain`, `payloadlen`, `mid` (QoS > 0), `properties` (5.0, when the message has
//! any), and the payload: with `%j` as a JSON string (cut at its first NUL byte, as a C
//! string is); with `%J` parsed as JSON and embedded as a value (`null` when empty),
//! the message refused when it is not JSON. Parsing and printing follow cJSON 1.7's
//! (Debian's) rules: numbers through `strtod` and `%1.15g` (or `%1.17g` when that does
//! not read back the same), keys in order and duplicates kept, any byte below 33 as
//! white space. `--pretty` gives cJSON's indented layout.

use midge_codec::Publish;

use super::clock::Tm;

/// `%j`'s payload (a string) or `%J`'s (the payload parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    String,
    Parsed,
}

/// Why `%J` printed nothing.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NotJson;

/// Appends `message` as `%j` or `%J` prints it; `%J` of a payload that is not JSON
/// appends nothing.
pub(super) fn print(
    out: &mut Vec<u8>,
    message: &Publish,
    tm: &Tm,
    has_properties: bool,
    pretty: bool,
    kind: Payload,
) -> Result<(), NotJson> {
    let mut fields: Vec<(&str, Value)> = vec![
        ("tst", Value::Str(tm.json_timestamp().into_bytes())),
        (
            "topic",
            Value::Str(message.topic.as_str().as_bytes().to_vec()),
        ),
        ("qos", Value::Int(message.qos as i64)),
        ("retain", Value::Int(i64::from(message.retain))),
        ("payloadlen", Value::Int(message.payload.len() as i64)),
    ];
    if let Some(id) = message.packet_id {
        fields.push(("mid", Value::Int(i64::from(id.get()))));
    }
    if has_properties {
        fields.push(("properties", Value::Object(properties(message))));
    }
    let payload = &message.payload[..];
    let value = match kind {
        Payload::String => {
            let cut = payload
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(payload.len());
            Value::Str(payload[..cut].to_vec())
        }
        Payload::Parsed if payload.is_empty() => Value::Null,
        Payload::Parsed => parse(payload).ok_or(NotJson)?,
    };
    fields.push(("payload", value));
    write(out, &Value::Object(fields), pretty, 1);
    Ok(())
}

fn properties(message: &Publish) -> Vec<(&'static str, Value)> {
    let p = &message.properties;
    let mut fields = Vec::new();
    if let Some(v) = p.payload_format_indicator {
        fields.push(("payload-format-indicator", Value::Int(i64::from(v))));
    }
    if let Some(v) = p.message_expiry_interval {
        fields.push(("message-expiry-interval", Value::Int(i64::from(v))));
    }
    if let Some(v) = &p.response_topic {
        fields.push(("response-topic", Value::Str(v.as_str().as_bytes().to_vec())));
    }
    if let Some(v) = &p.correlation_data {
        let v = &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())];
        fields.push(("correlation-data", Value::Str(v.to_vec())));
    }
    if !p.user_properties.is_empty() {
        let users = p
            .user_properties
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.as_bytes().to_vec())))
            .collect();
        fields.push(("user-properties", Value::Named(users)));
    }
    for id in &p.subscription_identifiers {
        fields.push(("subscription-identifier", Value::Int(i64::from(*id))));
    }
    if let Some(v) = &p.content_type {
        fields.push(("content-type", Value::Str(v.as_bytes().to_vec())));
    }
    fields
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Str(Vec<u8>),
    Object(Vec<(&'static str, Value)>),
    Named(Vec<(String, Value)>),
    /// A parsed object: keys are bytes (escapes may make any), in order, duplicates kept.
    Members(Vec<(Vec<u8>, Value)>),
    Array(Vec<Value>),
    Number(f64),
    Bool(bool),
    Null,
}

/// cJSON's printer: `cJSON_PrintUnformatted`, or `cJSON_Print` (tabs) when `pretty`.
fn write(out: &mut Vec<u8>, value: &Value, pretty: bool, depth: usize) {
    match value {
        Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Str(s) => string(out, s),
        Value::Object(fields) => {
            let fields: Vec<(&[u8], &Value)> =
                fields.iter().map(|(k, v)| (k.as_bytes(), v)).collect();
            object(out, &fields, pretty, depth);
        }
        Value::Named(fields) => {
            let fields: Vec<(&[u8], &Value)> =
                fields.iter().map(|(k, v)| (k.as_bytes(), v)).collect();
            object(out, &fields, pretty, depth);
        }
        Value::Members(fields) => {
            let fields: Vec<(&[u8], &Value)> =
                fields.iter().map(|(k, v)| (k.as_slice(), v)).collect();
            object(out, &fields, pretty, depth);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                write(out, item, pretty, depth + 1);
                if n + 1 < items.len() {
                    out.push(b',');
                    if pretty {
                        out.push(b' ');
                    }
                }
            }
            out.push(b']');
        }
        Value::Number(d) => out.extend_from_slice(number(*d).as_bytes()),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

fn object(out: &mut Vec<u8>, fields: &[(&[u8], &Value)], pretty: bool, depth: usize) {
    out.push(b'{');
    if pretty {
        out.push(b'\n');
    }
    for (n, (key, value)) in fields.iter().enumerate() {
        if pretty {
            out.extend(std::iter::repeat_n(b'\t', depth));
        }
        string(out, key);
        out.push(b':');
        if pretty {
            out.push(b'\t');
        }
        write(out, value, pretty, depth + 1);
        if n + 1 < fields.len() {
            out.push(b',');
        }
        if pretty {
            out.push(b'\n');
        }
    }
    if pretty {
        out.extend(std::iter::repeat_n(b'\t', depth - 1));
    }
    out.push(b'}');
}

/// cJSON's `print_string_ptr`: `"` `\` and control characters escaped, the rest raw.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 32 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// cJSON's `print_number`: `null` for what is not finite, else `%1.15g`, or `%1.17g`
/// when the shorter form does not read back as the same double (cJSON's
/// `compare_double`: equal within one epsilon of the larger).
fn number(d: f64) -> String {
    if !d.is_finite() {
        return "null".to_owned();
    }
    let short = format_g(d, 15);
    let back: f64 = short.parse().unwrap_or(f64::NAN);
    let max = back.abs().max(d.abs());
    if (back - d).abs() <= max * f64::EPSILON {
        short
    } else {
        format_g(d, 17)
    }
}

/// C's `%1.{precision}g`.
fn format_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let exp_form = format!("{:.*e}", precision - 1, d);
    let (mantissa, exp) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{d:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// cJSON's `cJSON_ParseWithOpts(payload, &end, true)` with mosquitto's check that the
/// whole payload was taken: `None` unless the payload is one JSON value (white space
/// around it allowed; a NUL byte ends the text, as in C).
fn parse(payload: &[u8]) -> Option<Value> {
    let text = &payload[..payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len())];
    if text.len() != payload.len() {
        // mosquitto compares the end of the parse with the end of the payload.
        return None;
    }
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut parser = Parser { s: text, i: 0 };
    parser.skip_white();
    let value = parser.value(0)?;
    parser.skip_white();
    (parser.i == text.len()).then_some(value)
}

/// cJSON's nesting limit.
const NESTING_LIMIT: usize = 1000;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// cJSON's white space: every byte up to 32.
    fn skip_white(&mut self) {
        while self.peek().is_some_and(|b| b <= 32) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'n' => self.literal(b"null", Value::Null),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'"' => self.string().map(Value::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' if depth < NESTING_LIMIT => self.array(depth + 1),
            b'{' if depth < NESTING_LIMIT => self.object(depth + 1),
            _ => None,
        }
    }

    /// cJSON takes the run of `0-9 + - e E .` and gives it to `strtod`, which reads
    /// the longest number at its start.
    fn number(&mut self) -> Option<Value> {
        let run = self.s[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'e' | b'E' | b'.'))
            .count();
        let run = &self.s[self.i..self.i + run];
        let len = strtod_prefix(run)?;
        let text = std::str::from_utf8(&run[..len]).ok()?;
        let d: f64 = text.parse().ok()?;
        self.i += len;
        Some(Value::Number(d))
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_white();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(Value::Array(items));
        }
        loop {
            self.skip_white();
            items.push(self.value(depth)?);
            self.skip_white();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        self.i += 1;
        let mut members = Vec::new();
        self.skip_white();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(Value::Members(members));
        }
        loop {
            self.skip_white();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_white();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.skip_white();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_white();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(Value::Members(members));
                }
                _ => return None,
            }
        }
    }

    /// A string: cJSON's escapes (`\b \f \n \r \t \" \\ \/ \uXXXX` with surrogate
    /// pairs); other bytes, control characters included, taken as they are.
    fn string(&mut self) -> Option<Vec<u8>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'u' => {
                            let c = self.unicode()?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        let n = u32::from_str_radix(text, 16).ok()?;
        self.i += 4;
        Some(n)
    }

    /// `\uXXXX` (the `\u` taken), a surrogate pair joined.
    fn unicode(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xDC00..0xE000).contains(&first) {
            return None;
        }
        if (0xD800..0xDC00).contains(&first) {
            if self.s.get(self.i..self.i + 2)? != b"\\u" {
                return None;
            }
            self.i += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            return char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00));
        }
        char::from_u32(first)
    }
}

/// The length of the longest prefix of `s` that C's `strtod` reads as a decimal number:
/// a sign, digits with at most one point (at least one digit), then an exponent if it
/// has digits. `None` when there is no number.
fn strtod_prefix(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        frac = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if int + frac > 0 {
            i += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let digits = s[j.min(s.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            i = j + digits;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reprint(text: &str, pretty: bool) -> Option<String> {
        let value = parse(text.as_bytes())?;
        let mut out = Vec::new();
        // At the depth of the payload inside the message object.
        write(&mut out, &value, pretty, 2);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn numbers_as_cjson_prints_them() {
        for (d, text) in [
            (1e10, "10000000000"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (1.5e300, "1.5e+300"),
            (3.0, "3"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (f64::INFINITY, "null"),
        ] {
            assert_eq!(number(d), text, "{d}");
        }
    }

    #[test]
    fn parse_and_print_keep_order_duplicates_and_layout() {
        assert_eq!(
            reprint(
                r#" {"b":1, "a":[true,false,null,"x\u00e9\n"], "b":{}} "#,
                false
            )
            .unwrap(),
            "{\"b\":1,\"a\":[true,false,null,\"x\u{e9}\\n\"],\"b\":{}}"
        );
        assert_eq!(
            reprint(r#"[{},[],{"a":{}}]"#, true).unwrap(),
            "[{\n\t\t}, [], {\n\t\t\t\"a\":\t{\n\t\t\t}\n\t\t}]"
        );
        assert_eq!(reprint("01", false).unwrap(), "1");
        assert_eq!(reprint("1.", false).unwrap(), "1");
        assert_eq!(
            reprint("\"\\ud83d\\ude00\"", false).unwrap(),
            "\"\u{1f600}\""
        );
        for bad in [
            "",
            "not json",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "1.5e",
            ".5",
            "-",
            "tru",
            "\"\\x\"",
            "\"\\udc00\"",
            "1 2",
            "{\"a\":1}}",
        ] {
            assert_eq!(reprint(bad, false), None, "{bad:?}");
        }
        assert_eq!(parse(b"1\x00"), None);
        let deep = "[".repeat(NESTING_LIMIT + 1) + &"]".repeat(NESTING_LIMIT + 1);
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
