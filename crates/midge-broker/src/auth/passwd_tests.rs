//! Tests of `auth::passwd`: vectors written by Debian 12's `mosquitto_passwd` 2.0.11 and
//! libargon2's `argon2` tool, round trips, and every way a file is refused.

use std::path::Path;

use super::*;

/// Written by Debian 12's mosquitto_passwd 2.0.11:
/// ```sh
/// mosquitto_passwd -c -b -H sha512 F alice wonderland
/// mosquitto_passwd -b F bob builder
/// mosquitto_passwd -b -I 1000 F carol 'pässwörd ✓'
/// mosquitto_passwd -b -H sha512 F 'dave smith' 'p@ss:word with spaces'
/// mosquitto_passwd -b F erin ''
/// ```
const MOSQUITTO_2_0_11: &str = include_str!("testdata/mosquitto-2.0.11.passwd");

/// `echo -n hunter2 | argon2 "$(printf 'salt%.0s' 1 2 .. 16)" -id -t 1 -k 47104 -p 1 -l 64 -e`:
/// libargon2 (which Mosquitto 2.1 links) at Mosquitto 2.1's parameters, 64-byte salt.
const ARGON2ID_MOSQUITTO_PARAMS: &str = "$argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA$0Ht+oQe1zQHApcolQRyOyCe2R6crGQX9v3MC34TqU+ei5kfExh3iEUlyA7V1MDsE34H5lfJAaU02YGADrJuIjg";

/// `echo -n 'correct horse' | argon2 'sixteen byte salt' -id -t 2 -k 64 -p 2 -l 32 -e`.
const ARGON2ID_SMALL: &str = "$argon2id$v=19$m=64,t=2,p=2$c2l4dGVlbiBieXRlIHNhbHQ$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ";

fn parse(text: &str) -> Result<PasswordFile, PasswdError> {
    PasswordFile::parse(text, Path::new("pw.txt"))
}

fn line_error(text: &str) -> (usize, LineError, String) {
    match parse(text) {
        Err(e @ PasswdError::Line { .. }) => {
            let shown = e.to_string();
            let PasswdError::Line { line, reason, .. } = e else {
                unreachable!()
            };
            (line, reason, shown)
        }
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn mosquitto_passwd_2_0_11_file_verifies() {
    let file = parse(MOSQUITTO_2_0_11).unwrap();
    assert_eq!(file.len(), 5);
    for (user, password) in [
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("carol", "pässwörd ✓"),
        ("dave smith", "p@ss:word with spaces"),
        ("erin", ""),
    ] {
        assert!(file.verify(user, password.as_bytes()), "{user}");
        assert!(!file.verify(user, b"wrong"), "{user}");
        assert!(
            !file.verify(user, format!("{password}x").as_bytes()),
            "{user}"
        );
    }
    assert_eq!(
        file.get("alice").unwrap().algorithm(),
        HashAlgorithm::Sha512
    );
    assert_eq!(
        file.get("bob").unwrap().algorithm(),
        HashAlgorithm::Sha512Pbkdf2
    );
    assert!(!file.verify("mallory", b"wonderland"));
    assert!(
        !file.verify("Alice", b"wonderland"),
        "usernames are case-sensitive"
    );
}

#[test]
fn mosquitto_hashes_re_encode_byte_for_byte() {
    for line in MOSQUITTO_2_0_11.lines() {
        let (_, hash) = line.split_once(':').unwrap();
        assert_eq!(PasswordHash::parse(hash).unwrap().encode(), hash);
    }
}

/// Same algorithm as Mosquitto: SHA-512(password ‖ salt) and PBKDF2-HMAC-SHA512, checked
/// against Python's hashlib (`hashlib.sha512(b"pw" + salt)`, `hashlib.pbkdf2_hmac`).
#[test]
fn deterministic_hashes_match_reference_values() {
    let salt = b"0123456789ab";
    assert_eq!(
        PasswordHash::sha512_with_salt(b"pw", salt).encode(),
        "$6$MDEyMzQ1Njc4OWFi$8/vLlIBNWDWQNrOsnABF7HBJVefyJvNB1+8wiFDgRR4kb+nKGzWaXywQa+GaVEC8ptdoroDyOZKpi4iEm1M3Ww=="
    );
    assert_eq!(
        PasswordHash::sha512_pbkdf2_with_salt(b"pw", salt, 101).encode(),
        "$7$101$MDEyMzQ1Njc4OWFi$vFbTB7Kf+gJLaly5vZjJVEn8l0QbC4MOGo84CxUMylg93aIeQWQJMp9tQfk5VldCj2oBULOWKYvvn1FCLgTk5g=="
    );
}

/// Mosquitto 2.1 writes 64-byte salts for `$7$`; they are read too.
#[test]
fn long_salt_of_mosquitto_2_1_is_accepted() {
    let hash = PasswordHash::parse("$7$101$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==$Cpku0ux36qKEI5Rw+9ZokoMjrq5j+BoaUD+7gpoJ7/k+za+3EeE9hi0NI+kSj2Z6XJuHVsLvgrsl5JYIHREnPA==").unwrap();
    assert!(hash.verify(b"long salt"));
    assert!(!hash.verify(b"long salt "));
}

#[test]
fn argon2id_phc_strings_of_libargon2_verify() {
    let small = PasswordHash::parse(ARGON2ID_SMALL).unwrap();
    assert!(small.verify(b"correct horse"));
    assert!(!small.verify(b"correct horse battery"));
    assert_eq!(small.encode(), ARGON2ID_SMALL);

    let file = parse(&format!("zoe:{ARGON2ID_MOSQUITTO_PARAMS}\n")).unwrap();
    assert!(file.verify("zoe", b"hunter2"));
    assert_eq!(file.get("zoe").unwrap().encode(), ARGON2ID_MOSQUITTO_PARAMS);
}

#[test]
fn generated_hashes_verify_and_have_mosquittos_shape() {
    let pbkdf2 = PasswordHash::generate(HashAlgorithm::Sha512Pbkdf2, b"s3cret", None).unwrap();
    let encoded = pbkdf2.encode();
    let fields: Vec<&str> = encoded.split('$').collect();
    assert_eq!(fields[..3], ["", "7", "101"]);
    assert_eq!(
        fields[3].len(),
        16,
        "12-byte salt, as Mosquitto 2.0 requires"
    );
    assert_eq!(fields[4].len(), 88, "64-byte hash");
    assert!(pbkdf2.verify(b"s3cret") && !pbkdf2.verify(b"s3cre"));
    assert_eq!(PasswordHash::parse(&encoded).unwrap(), pbkdf2);

    let iterated = PasswordHash::generate(HashAlgorithm::Sha512Pbkdf2, b"x", Some(5)).unwrap();
    assert!(iterated.encode().starts_with("$7$5$"));

    let sha = PasswordHash::generate(HashAlgorithm::Sha512, b"s3cret", None).unwrap();
    assert!(sha.encode().starts_with("$6$") && sha.verify(b"s3cret"));

    let again = PasswordHash::generate(HashAlgorithm::Sha512, b"s3cret", None).unwrap();
    assert_ne!(sha.encode(), again.encode(), "salts are random");
}

#[test]
fn generated_argon2id_uses_mosquitto_2_1_parameters() {
    let hash = PasswordHash::generate(HashAlgorithm::Argon2id, b"s3cret", None).unwrap();
    let encoded = hash.encode();
    assert!(
        encoded.starts_with("$argon2id$v=19$m=47104,t=1,p=1$"),
        "{encoded}"
    );
    let fields: Vec<&str> = encoded.split('$').collect();
    assert_eq!(fields[4].len(), 86, "64-byte salt, unpadded");
    assert_eq!(fields[5].len(), 86, "64-byte hash, unpadded");
    assert!(hash.verify(b"s3cret"));
    assert!(!hash.verify(b"s3cret!"));
}

#[test]
fn algorithm_names_are_mosquitto_passwds() {
    for algorithm in [
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha512Pbkdf2,
        HashAlgorithm::Argon2id,
    ] {
        assert_eq!(algorithm.name().parse::<HashAlgorithm>(), Ok(algorithm));
    }
    assert_eq!(
        "md5".parse::<HashAlgorithm>().unwrap_err().to_string(),
        "Unknown hash type 'md5'"
    );
    assert_eq!(HashAlgorithm::DEFAULT, HashAlgorithm::Sha512Pbkdf2);
}

#[test]
fn comments_blank_lines_crlf_and_blanks_around_fields_are_accepted() {
    let line = MOSQUITTO_2_0_11.lines().nth(1).unwrap();
    let (user, hash) = line.split_once(':').unwrap();
    let text = format!("# users\n\n   \r\n  # indented comment\r\n {user} : {hash} \r\n");
    let file = parse(&text).unwrap();
    assert!(file.verify("bob", b"builder"));
    assert_eq!(file.len(), 1);
    assert!(parse("").unwrap().is_empty());
}

#[test]
fn plain_text_password_is_refused_without_showing_it() {
    let (line, reason, shown) = line_error("# header\nalice:opensesame\n");
    assert_eq!(line, 2);
    assert_eq!(reason, LineError::PlainText("alice".into()));
    assert!(shown.starts_with("pw.txt:2: "), "{shown}");
    assert!(!shown.contains("opensesame"), "{shown}");
}

#[test]
fn duplicate_user_is_refused_with_its_line() {
    let bob = MOSQUITTO_2_0_11.lines().nth(1).unwrap();
    let (line, reason, _) = line_error(&format!("{bob}\n\n{bob}\n"));
    assert_eq!((line, reason), (3, LineError::DuplicateUser("bob".into())));
}

#[test]
fn malformed_lines_are_refused_with_file_and_line() {
    let cases: &[(&str, LineError)] = &[
        ("just-a-name", LineError::NoColon),
        (":$6$x$y", LineError::EmptyUsername),
        ("amy:", LineError::MissingHash("amy".into())),
        ("amy:   ", LineError::MissingHash("amy".into())),
    ];
    for (text, expected) in cases {
        let (line, reason, shown) = line_error(text);
        assert_eq!((line, &reason), (1, expected), "{text}");
        assert!(shown.starts_with("pw.txt:1: "), "{shown}");
    }
}

#[test]
fn undecodable_hashes_are_refused() {
    let salt = "MDEyMzQ1Njc4OWFi";
    let hash =
        "vFbTB7Kf+gJLaly5vZjJVEn8l0QbC4MOGo84CxUMylg93aIeQWQJMp9tQfk5VldCj2oBULOWKYvvn1FCLgTk5g==";
    let cases: Vec<(String, HashError)> = vec![
        ("$5$abc$def".into(), HashError::UnknownScheme),
        (
            "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            HashError::UnknownScheme,
        ),
        (format!("$6${salt}"), HashError::Fields("$6$")),
        (format!("$6${salt}${hash}$extra"), HashError::Fields("$6$")),
        (format!("$7${salt}${hash}"), HashError::Fields("$7$")),
        (format!("$7$0${salt}${hash}"), HashError::Iterations),
        (format!("$7$-5${salt}${hash}"), HashError::Iterations),
        (format!("$7$10x${salt}${hash}"), HashError::Iterations),
        (
            format!("$7$99999999999${salt}${hash}"),
            HashError::Iterations,
        ),
        (format!("$7$101$!!!${hash}"), HashError::Base64("salt")),
        (
            format!("$7$101${salt}$not base64"),
            HashError::Base64("hash"),
        ),
        (format!("$7$101$MDEy${hash}"), HashError::SaltLength(3)),
        (format!("$7$101${salt}$MDEy"), HashError::HashLength(3)),
    ];
    for (encoded, expected) in cases {
        assert_eq!(
            PasswordHash::parse(&encoded),
            Err(expected.clone()),
            "{encoded}"
        );
        let (_, reason, _) = line_error(&format!("u:{encoded}"));
        assert_eq!(
            reason,
            LineError::Hash {
                user: "u".into(),
                error: expected
            }
        );
    }
}

#[test]
fn malformed_argon2id_parameters_are_refused_at_parse_time() {
    for encoded in [
        "$argon2id$v=19$m=64,t=2$c2l4dGVlbiBieXRlIHNhbHQ$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ",
        "$argon2id$v=19$m=64,t=2,p=2,p=2$c2l4dGVlbiBieXRlIHNhbHQ$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ",
        "$argon2id$v=19$m=64,t=0,p=2$c2l4dGVlbiBieXRlIHNhbHQ$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ",
        "$argon2id$v=18$m=64,t=2,p=2$c2l4dGVlbiBieXRlIHNhbHQ$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ",
        "$argon2id$v=19$m=64,t=2,p=2$c2FsdA$O/0Ww8aGoWLuu9/oYN9nTpfc4QA6b9IFxw7TWNlzICQ",
        "$argon2id$v=19$m=64,t=2,p=2$c2l4dGVlbiBieXRlIHNhbHQ",
    ] {
        assert!(PasswordHash::parse(encoded).is_err(), "{encoded}");
    }
}

#[test]
fn load_names_the_file_when_it_cannot_be_read() {
    let missing = Path::new("/nonexistent/midge/pw.txt");
    let error = PasswordFile::load(missing).unwrap_err();
    assert!(matches!(error, PasswdError::Io { .. }));
    assert!(error.to_string().starts_with("/nonexistent/midge/pw.txt: "));
}

/// STYLE rule 15: no salt, hash or password in `Debug` output.
#[test]
fn debug_output_is_redacted() {
    let file = parse(MOSQUITTO_2_0_11).unwrap();
    assert_eq!(format!("{file:?}"), "PasswordFile { users: 5 }");
    let hash = file.get("bob").unwrap();
    let shown = format!("{hash:?}");
    assert_eq!(
        shown,
        "PasswordHash::Sha512Pbkdf2(iterations=101, <REDACTED>)"
    );
    let small = PasswordHash::parse(ARGON2ID_SMALL).unwrap();
    assert_eq!(
        format!("{small:?}"),
        "PasswordHash::Argon2id(m=64,t=2,p=2, <REDACTED>)"
    );
}
