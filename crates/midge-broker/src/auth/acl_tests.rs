//! Tests of `auth::acl`: every rule form, with the negative cases that matter (no `$SYS`
//! or another user's `%u` topics through wildcards, deny precedence, anonymous section).

use std::path::Path;

use super::*;

fn acl(text: &str) -> Acl {
    Acl::parse(text, Path::new("acl.txt")).unwrap()
}

fn user<'a>(client_id: &'a str, username: &'a str) -> ClientIdentity<'a> {
    ClientIdentity {
        client_id,
        username: Some(username),
        address: None,
    }
}

fn anonymous(client_id: &str) -> ClientIdentity<'_> {
    ClientIdentity {
        client_id,
        username: None,
        address: None,
    }
}

fn can(acl: &Acl, client: &ClientIdentity<'_>, access: Access, topic: &str) -> bool {
    acl.check(client, access, topic)
}

fn line_error(text: &str) -> (usize, AclLineError, String) {
    match Acl::parse(text, Path::new("acl.txt")) {
        Err(e @ AclError::Line { .. }) => {
            let shown = e.to_string();
            let AclError::Line { line, reason, .. } = e else {
                unreachable!()
            };
            (line, reason, shown)
        }
        other => panic!("expected a line error, got {other:?}"),
    }
}

const EXAMPLE: &str = "\
# general section: anonymous clients
topic read public/#
topic write anon/in

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read $SYS/broker/uptime

user bob
topic bob/#
topic read shared/+/status

pattern write clients/%c/status
pattern read users/%u/#
";

#[test]
fn access_words_grant_what_they_say() {
    let acl = acl("user u\ntopic read r\ntopic write w\ntopic readwrite rw\ntopic plain\n");
    let u = user("c", "u");
    for (topic, read, write) in [
        ("r", true, false),
        ("w", false, true),
        ("rw", true, true),
        ("plain", true, true),
        ("other", false, false),
    ] {
        assert_eq!(can(&acl, &u, Access::Read, topic), read, "read {topic}");
        assert_eq!(can(&acl, &u, Access::Write, topic), write, "write {topic}");
    }
}

#[test]
fn general_section_applies_to_anonymous_clients_only() {
    let acl = acl(EXAMPLE);
    let anon = anonymous("x");
    assert!(can(&acl, &anon, Access::Read, "public/news"));
    assert!(can(&acl, &anon, Access::Read, "public"));
    assert!(!can(&acl, &anon, Access::Write, "public/news"));
    assert!(can(&acl, &anon, Access::Write, "anon/in"));
    assert!(!can(&acl, &anon, Access::Read, "alice/x"));
    // A user, even one without a section, does not get the general section.
    assert!(!can(&acl, &user("x", "alice"), Access::Read, "public/news"));
    assert!(!can(&acl, &user("x", "carol"), Access::Read, "public/news"));
}

#[test]
fn user_sections_are_by_username() {
    let acl = acl(EXAMPLE);
    let alice = user("a1", "alice");
    let bob = user("b1", "bob");
    assert!(can(&acl, &alice, Access::Write, "alice/x/y"));
    assert!(can(&acl, &alice, Access::Read, "alice"));
    assert!(!can(&acl, &alice, Access::Write, "bob/x"));
    assert!(can(&acl, &bob, Access::Write, "bob/x"));
    assert!(can(&acl, &bob, Access::Read, "shared/k/status"));
    assert!(!can(&acl, &bob, Access::Read, "shared/k/l/status"));
    assert!(!can(&acl, &bob, Access::Write, "shared/k/status"));
    // The client id is not the username.
    assert!(!can(
        &acl,
        &user("alice", "mallory"),
        Access::Read,
        "alice/x"
    ));
}

#[test]
fn deny_wins_over_grants_in_the_same_section_whatever_the_order() {
    let acl = acl(EXAMPLE);
    let alice = user("a1", "alice");
    assert!(!can(&acl, &alice, Access::Read, "alice/secret"));
    assert!(!can(&acl, &alice, Access::Write, "alice/secret/plans"));
    assert!(can(&acl, &alice, Access::Read, "alice/secrets"));

    let grant_after_deny = self::acl("user u\ntopic deny a/b\ntopic a/#\n");
    assert!(!can(
        &grant_after_deny,
        &user("c", "u"),
        Access::Read,
        "a/b"
    ));
    assert!(can(&grant_after_deny, &user("c", "u"), Access::Read, "a/c"));
}

/// Mosquitto's order: the section decides first, so a `pattern deny` cannot take back a
/// section's grant; but it refuses what only another pattern grants.
#[test]
fn pattern_deny_applies_after_the_section() {
    let acl = acl("user u\ntopic t/#\npattern deny t/%c/#\npattern read p/#\npattern deny p/%u\n");
    let u = user("c", "u");
    assert!(can(&acl, &u, Access::Read, "t/c/x"), "section grant stands");
    assert!(!can(&acl, &u, Access::Read, "p/u"), "pattern deny first");
    assert!(can(&acl, &u, Access::Read, "p/other"));
    let v = user("c", "v");
    assert!(!can(&acl, &v, Access::Read, "t/c/x"));
}

#[test]
fn patterns_substitute_client_id_and_username() {
    let acl = acl(EXAMPLE);
    let alice = user("sensor-1", "alice");
    assert!(can(&acl, &alice, Access::Write, "clients/sensor-1/status"));
    assert!(!can(&acl, &alice, Access::Write, "clients/sensor-2/status"));
    assert!(!can(&acl, &alice, Access::Read, "clients/sensor-1/status"));
    assert!(can(&acl, &alice, Access::Read, "users/alice/inbox"));
    assert!(!can(&acl, &alice, Access::Write, "users/alice/inbox"));
    // Patterns apply to users without a section and to anonymous clients too.
    let carol = user("c9", "carol");
    assert!(can(&acl, &carol, Access::Read, "users/carol/x"));
    assert!(can(
        &acl,
        &anonymous("c9"),
        Access::Write,
        "clients/c9/status"
    ));
}

/// The delivery check is what protects other users' topics: alice may subscribe to
/// `users/#`, and then receives only her own messages.
#[test]
fn no_other_users_topics_through_wildcard_subscriptions() {
    let acl = acl(EXAMPLE);
    let alice = user("a1", "alice");
    assert!(can(&acl, &alice, Access::Subscribe, "users/#"));
    assert!(can(&acl, &alice, Access::Subscribe, "#"));
    assert!(can(&acl, &alice, Access::Read, "users/alice/x"));
    assert!(!can(&acl, &alice, Access::Read, "users/bob/x"));
    assert!(!can(&acl, &alice, Access::Read, "users/alice%u/x"));
    // A pattern with %u is not for anonymous clients (no literal "%u" either).
    let anon = anonymous("a2");
    assert!(!can(&acl, &anon, Access::Read, "users/%u/x"));
    assert!(!can(&acl, &anon, Access::Read, "users//x"));
}

#[test]
fn wildcards_never_reach_sys_topics() {
    let acl = acl("topic #\nuser u\ntopic readwrite #\ntopic +/broker/#\npattern read #\n");
    for client in [anonymous("c"), user("c", "u"), user("c", "v")] {
        assert!(can(&acl, &client, Access::Read, "any/topic"));
        assert!(!can(&acl, &client, Access::Read, "$SYS/broker/uptime"));
        assert!(!can(&acl, &client, Access::Read, "$SYS"));
        assert!(!can(&acl, &client, Access::Read, "$other/x"));
        assert!(!can(&acl, &client, Access::Write, "$SYS/broker/uptime"));
    }
    // Only a rule that names $SYS grants it.
    let explicit = self::acl(EXAMPLE);
    let alice = user("a1", "alice");
    assert!(can(&explicit, &alice, Access::Read, "$SYS/broker/uptime"));
    assert!(!can(&explicit, &alice, Access::Read, "$SYS/broker/clients"));
}

#[test]
fn nobody_writes_sys_even_when_a_rule_says_so() {
    let acl = acl("user root\ntopic readwrite $SYS/#\n");
    let root = user("c", "root");
    assert!(can(&acl, &root, Access::Read, "$SYS/broker/load"));
    assert!(!can(&acl, &root, Access::Write, "$SYS/broker/load"));
    assert!(!check_dollar(
        Access::Write,
        "$SYS/broker/connection/x/state"
    ));
    assert!(check_dollar(Access::Write, "$SYSTEM/x"));
    assert!(check_dollar(Access::Subscribe, "$share/g/#"));
    assert!(!check_dollar(Access::Write, "$share/g/t"));
    assert!(!check_dollar(Access::Read, "$share/g/t"));
    assert!(check_dollar(Access::Read, "$SYS/x"));
}

#[test]
fn subscriptions_are_allowed_and_deliveries_checked() {
    let acl = acl(EXAMPLE);
    let alice = user("a1", "alice");
    assert!(can(&acl, &alice, Access::Subscribe, "alice/secret/#"));
    assert!(can(&acl, &alice, Access::Subscribe, "$SYS/#"));
    assert!(can(&acl, &alice, Access::Subscribe, "$share/g/bob/#"));
    assert!(!can(&acl, &alice, Access::Read, "alice/secret/x"));
    assert!(can(&acl, &anonymous("z"), Access::Subscribe, "#"));
}

#[test]
fn clients_with_wildcards_in_their_names_get_no_pattern_access() {
    let acl = acl("user a+b\ntopic own/#\npattern read users/%u/#\npattern read c/%c\n");
    assert!(!can(&acl, &user("c", "a+b"), Access::Read, "users/a+b/x"));
    assert!(!can(&acl, &user("x#", "v"), Access::Read, "c/x#"));
    assert!(!can(&acl, &user("x#", "v"), Access::Read, "users/v/x"));
    // Their own section still applies, as in Mosquitto.
    assert!(can(&acl, &user("c", "a+b"), Access::Read, "own/x"));
    // A `/` in a client id is allowed and expands into levels.
    assert!(can(&acl, &user("x/y", "v"), Access::Read, "c/x/y"));
}

#[test]
fn empty_acl_refuses_reads_and_writes() {
    let acl = acl("# nothing\n\n");
    assert!(acl.is_empty());
    assert!(!can(&acl, &anonymous("c"), Access::Read, "a"));
    assert!(!can(&acl, &user("c", "u"), Access::Write, "a"));
    assert!(can(&acl, &user("c", "u"), Access::Subscribe, "a"));
    assert!(!self::acl(EXAMPLE).is_empty());
}

#[test]
fn repeated_user_sections_add_up() {
    let acl = acl("user u\ntopic read a\nuser v\ntopic b\nuser u\ntopic write c\n");
    let u = user("c", "u");
    assert!(can(&acl, &u, Access::Read, "a"));
    assert!(can(&acl, &u, Access::Write, "c"));
    assert!(!can(&acl, &u, Access::Read, "b"));
}

#[test]
fn usernames_and_filters_may_contain_spaces() {
    let acl = acl("user  dave smith \ntopic read  rooms/living room/# \n");
    let dave = user("c", "dave smith");
    assert!(can(&acl, &dave, Access::Read, "rooms/living room/lamp"));
    assert!(!can(
        &acl,
        &user("c", "dave"),
        Access::Read,
        "rooms/living room/lamp"
    ));
}

#[test]
fn blanks_tabs_comments_and_crlf_are_tolerated() {
    let acl = acl("  # indented comment\r\n\t\r\nuser\tu\r\n  topic\tread\ta/+\r\n");
    assert!(can(&acl, &user("c", "u"), Access::Read, "a/b"));
}

#[test]
fn topic_matching_follows_mqtt() {
    for (filter, topic, expected) in [
        ("a/#", "a", true),
        ("a/#", "a/b/c", true),
        ("a/+", "a/b", true),
        ("a/+", "a/b/c", false),
        ("a/+", "a", false),
        ("+/+", "/x", true),
        ("+", "", true),
        ("#", "$SYS/x", false),
        ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true),
        ("$SYS/#", "SYS/x", false),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
    ] {
        assert_eq!(
            midge_codec::topic_matches(filter, topic),
            expected,
            "{filter} vs {topic}"
        );
    }
}

#[test]
fn expand_substitutes_like_mosquitto() {
    let c = user("id", "name");
    assert_eq!(
        expand("a/%c/%u/%x/%%c/%", &c).unwrap(),
        "a/id/name/%x/%id/%"
    );
    assert_eq!(expand("a/%c", &anonymous("id")).unwrap(), "a/id");
    assert_eq!(expand("a/%u", &anonymous("id")), None);
}

#[test]
fn invalid_lines_are_refused_with_file_and_line() {
    let cases: &[(&str, AclLineError)] = &[
        ("topic", AclLineError::EmptyTopic),
        ("pattern   ", AclLineError::EmptyTopic),
        ("topic rw a/b", AclLineError::InvalidAccess("rw".into())),
        (
            "topic read a/#/b",
            AclLineError::InvalidFilter("a/#/b".into()),
        ),
        ("pattern a+", AclLineError::InvalidFilter("a+".into())),
        ("user", AclLineError::MissingUsername),
        ("user   ", AclLineError::MissingUsername),
        (
            "users alice",
            AclLineError::UnknownDirective("users".into()),
        ),
        ("Topic a", AclLineError::UnknownDirective("Topic".into())),
    ];
    for (text, expected) in cases {
        let (line, reason, shown) = line_error(&format!("# c\ntopic ok\n{text}\n"));
        assert_eq!((line, &reason), (3, expected), "{text}");
        assert!(shown.starts_with("acl.txt:3: "), "{shown}");
    }
}

/// Mosquitto reads `topic read` as the topic "read" with readwrite access; so does Midge.
#[test]
fn single_word_after_topic_is_the_filter() {
    let acl = acl("topic read\n");
    assert!(can(&acl, &anonymous("c"), Access::Write, "read"));
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("midge-acl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acl");
    std::fs::write(&path, "user u\ntopic read a\nbogus\n").unwrap();
    let error = load(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3: unknown directive \"bogus\" (expected topic, pattern, user or address)",
            path.display()
        )
    );
    std::fs::write(&path, "user u\ntopic read a\n").unwrap();
    let acl = load(&path).unwrap();
    assert!(check(&acl, &user("c", "u"), Access::Read, "a"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(load(&path), Err(AclError::Io { .. })));
}

// ---- `address` sections: the Midge extension ----

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn from<'a>(client: ClientIdentity<'a>, address: &str) -> ClientIdentity<'a> {
    ClientIdentity {
        address: Some(ip(address)),
        ..client
    }
}

fn cidr(text: &str) -> Cidr {
    text.parse().unwrap()
}

#[test]
fn ranges_parse_in_every_form() {
    for (text, shown) in [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3", "10.1.2.3/32"),
        ("10.1.2.3/32", "10.1.2.3/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8::7", "2001:db8::7/128"),
        ("::/0", "::/0"),
        // The IPv4-mapped form is the IPv4 range it is.
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:10.1.2.3", "10.1.2.3/32"),
    ] {
        assert_eq!(cidr(text).to_string(), shown, "{text}");
    }
}

#[test]
fn malformed_ranges_say_what_is_wrong() {
    let host_bits = |network: &str| CidrError::HostBits {
        network: cidr(network),
    };
    for (text, expected) in [
        ("10.0.0.0/33", CidrError::Prefix { max: 32 }),
        ("2001:db8::/129", CidrError::Prefix { max: 128 }),
        ("10.0.0.0/", CidrError::Prefix { max: 32 }),
        ("10.0.0.0/+8", CidrError::Prefix { max: 32 }),
        ("10.0.0.0/8/8", CidrError::Prefix { max: 32 }),
        ("10.0.0.0/-1", CidrError::Prefix { max: 32 }),
        ("10.0.0.0/999999999999", CidrError::Prefix { max: 32 }),
        ("10.0.0/8", CidrError::Address),
        ("10.0.0.256", CidrError::Address),
        ("/8", CidrError::Address),
        ("localhost", CidrError::Address),
        ("fe80::1%eth0", CidrError::Address),
        ("[::1]", CidrError::Address),
        ("10.1.2.3/8", host_bits("10.0.0.0/8")),
        ("10.0.0.1/31", host_bits("10.0.0.0/31")),
        ("2001:db8::1/32", host_bits("2001:db8::/32")),
    ] {
        assert_eq!(text.parse::<Cidr>(), Err(expected), "{text}");
    }
    assert_eq!(
        "10.1.2.3/8".parse::<Cidr>().unwrap_err().to_string(),
        "bits are set past the prefix length (the network is 10.0.0.0/8)"
    );
}

#[test]
fn ranges_contain_what_they_should() {
    for (range, address, expected) in [
        ("10.0.0.0/8", "10.1.2.3", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("10.1.2.3", "10.1.2.3", true),
        ("10.1.2.3", "10.1.2.4", false),
        ("192.168.4.0/22", "192.168.7.200", true),
        ("192.168.4.0/22", "192.168.8.1", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("::/0", "2001:db8::1", true),
        ("::1", "::1", true),
        // A family never matches the other one...
        ("0.0.0.0/0", "2001:db8::1", false),
        ("::/0", "10.1.2.3", false),
        ("::/0", "::ffff:10.1.2.3", false),
        // ...and an IPv4-mapped client is the IPv4 client it is.
        ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("::ffff:10.0.0.0/104", "10.1.2.3", true),
        ("::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true),
        ("::ffff:10.0.0.0/104", "11.1.2.3", false),
    ] {
        assert_eq!(
            cidr(range).contains(ip(address)),
            expected,
            "{range} contains {address}"
        );
    }
}

const ADDRESSES: &str = "\
topic read public/#

user alice
topic readwrite alice/#
topic deny plant/secret/#

address 10.0.0.0/8 2001:db8::/32
topic readwrite plant/#
topic read telemetry/#
topic deny alice/local-only

address 192.0.2.7
topic write audit/in

pattern read users/%u/#
pattern deny plant/forbidden
";

#[test]
fn address_section_grants_in_addition_to_the_users_rules() {
    let acl = acl(ADDRESSES);
    let inside = from(user("c", "alice"), "10.1.2.3");
    let outside = from(user("c", "alice"), "192.0.2.99");
    for alice in [&inside, &outside] {
        assert!(can(&acl, alice, Access::Write, "alice/x"));
        assert!(can(&acl, alice, Access::Read, "users/alice/x"));
    }
    assert!(can(&acl, &inside, Access::Write, "plant/line1"));
    assert!(can(&acl, &inside, Access::Read, "telemetry/t"));
    assert!(!can(&acl, &inside, Access::Write, "telemetry/t"));
    assert!(!can(&acl, &outside, Access::Write, "plant/line1"));
    assert!(!can(&acl, &outside, Access::Read, "telemetry/t"));
    // The second range of the line, and an IPv4-mapped address of the first.
    let v6 = from(user("c", "alice"), "2001:db8::42");
    assert!(can(&acl, &v6, Access::Write, "plant/line1"));
    let mapped = from(user("c", "alice"), "::ffff:10.9.9.9");
    assert!(can(&acl, &mapped, Access::Write, "plant/line1"));
    // A single address.
    let auditor = from(user("c", "alice"), "192.0.2.7");
    assert!(can(&acl, &auditor, Access::Write, "audit/in"));
    assert!(!can(&acl, &auditor, Access::Read, "audit/in"));
    assert!(!can(&acl, &outside, Access::Write, "audit/in"));
}

#[test]
fn address_section_applies_to_anonymous_clients_and_users_without_a_section() {
    let acl = acl(ADDRESSES);
    let anon = from(anonymous("c"), "10.1.2.3");
    assert!(can(&acl, &anon, Access::Read, "public/x"));
    assert!(can(&acl, &anon, Access::Write, "plant/line1"));
    let carol = from(user("c", "carol"), "10.1.2.3");
    assert!(can(&acl, &carol, Access::Write, "plant/line1"));
    assert!(!can(&acl, &carol, Access::Read, "public/x"));
    let carol_outside = from(user("c", "carol"), "172.16.0.1");
    assert!(!can(&acl, &carol_outside, Access::Write, "plant/line1"));
    assert!(!can(
        &acl,
        &from(anonymous("c"), "172.16.0.1"),
        Access::Write,
        "plant/line1"
    ));
}

/// A Unix socket client has no address: no range matches it, not even every address.
#[test]
fn clients_without_an_address_match_no_section() {
    let acl = acl("address 0.0.0.0/0 ::/0\ntopic readwrite #\n");
    assert!(can(
        &acl,
        &from(anonymous("c"), "203.0.113.1"),
        Access::Write,
        "a"
    ));
    assert!(can(
        &acl,
        &from(anonymous("c"), "2001:db8::1"),
        Access::Write,
        "a"
    ));
    assert!(!can(&acl, &anonymous("c"), Access::Write, "a"));
    assert!(!can(&acl, &user("c", "alice"), Access::Read, "a"));
}

#[test]
fn denies_of_user_and_address_sections_win_over_each_others_grants() {
    let acl = acl(ADDRESSES);
    let inside = from(user("c", "alice"), "10.1.2.3");
    // The user's deny takes back the address section's grant...
    assert!(!can(&acl, &inside, Access::Read, "plant/secret/x"));
    // ...and the address section's deny the user's grant, for that address only.
    assert!(!can(&acl, &inside, Access::Write, "alice/local-only"));
    let outside = from(user("c", "alice"), "192.0.2.99");
    assert!(can(&acl, &outside, Access::Write, "alice/local-only"));
    // A pattern deny cannot take back what a section granted (Mosquitto's order)...
    assert!(can(&acl, &inside, Access::Write, "plant/forbidden"));
    // ...and an address deny wins over a pattern grant.
    let acl = acl_with_pattern_grant();
    let bob = from(user("c", "bob"), "10.1.2.3");
    assert!(!can(&acl, &bob, Access::Read, "users/bob/private"));
    assert!(can(&acl, &bob, Access::Read, "users/bob/other"));
    let bob_outside = from(user("c", "bob"), "192.0.2.99");
    assert!(can(&acl, &bob_outside, Access::Read, "users/bob/private"));
}

fn acl_with_pattern_grant() -> Acl {
    acl("address 10.0.0.0/8\ntopic deny users/+/private\npattern read users/%u/#\n")
}

#[test]
fn sections_of_overlapping_ranges_add_up_and_user_lines_end_them() {
    let acl = acl("\
address 10.0.0.0/8
topic write a
user alice
topic write b
address 10.1.0.0/16
topic write c
address 10.0.0.0/8
topic write d
");
    let deep = from(user("c", "alice"), "10.1.2.3");
    for topic in ["a", "b", "c", "d"] {
        assert!(can(&acl, &deep, Access::Write, topic), "{topic}");
    }
    let shallow = from(user("c", "bob"), "10.2.0.1");
    assert!(can(&acl, &shallow, Access::Write, "a"));
    assert!(!can(&acl, &shallow, Access::Write, "b"));
    assert!(!can(&acl, &shallow, Access::Write, "c"));
    assert!(can(&acl, &shallow, Access::Write, "d"));
}

/// `$SYS` writes and `$share` topics stay refused whatever an address section says, and
/// `#` in an address section does not reach `$SYS`.
#[test]
fn address_sections_keep_the_dollar_rules() {
    let acl = acl("address 10.0.0.0/8\ntopic readwrite #\ntopic readwrite $SYS/#\n");
    let c = from(anonymous("c"), "10.0.0.1");
    assert!(!can(&acl, &c, Access::Write, "$SYS/broker/x"));
    assert!(!can(&acl, &c, Access::Write, "$share/g/t"));
    assert!(can(&acl, &c, Access::Read, "$SYS/broker/x"));
    let acl = super::Acl::parse("address 10.0.0.0/8\ntopic read #\n", Path::new("a")).unwrap();
    assert!(!can(&acl, &c, Access::Read, "$SYS/broker/x"));
    assert!(can(&acl, &c, Access::Subscribe, "$SYS/#"));
}

/// `%a` means nothing in Mosquitto: a pattern keeps it as literal text.
#[test]
fn percent_a_stays_literal_in_patterns() {
    let acl = acl("pattern read hosts/%a/#\n");
    let c = from(user("c", "u"), "10.1.2.3");
    assert!(!can(&acl, &c, Access::Read, "hosts/10.1.2.3/x"));
    assert!(can(&acl, &c, Access::Read, "hosts/%a/x"));
}

#[test]
fn an_address_section_counts_as_rules() {
    assert!(acl("address 10.0.0.0/8\n").is_empty());
    assert!(!acl("address 10.0.0.0/8\ntopic a\n").is_empty());
}

#[test]
fn malformed_address_lines_are_refused_with_file_and_line() {
    let cases: &[(&str, AclLineError)] = &[
        ("address", AclLineError::MissingAddress),
        ("address  \t ", AclLineError::MissingAddress),
        (
            "address 10.0.0.0/8 bogus",
            AclLineError::InvalidRange {
                range: "bogus".into(),
                reason: CidrError::Address,
            },
        ),
        (
            "address 10.0.0.0/8, 192.168.0.0/16",
            AclLineError::InvalidRange {
                range: "10.0.0.0/8,".into(),
                reason: CidrError::Prefix { max: 32 },
            },
        ),
        (
            "address 10.1.2.3/8",
            AclLineError::InvalidRange {
                range: "10.1.2.3/8".into(),
                reason: CidrError::HostBits {
                    network: cidr("10.0.0.0/8"),
                },
            },
        ),
        (
            "Address 10.0.0.0/8",
            AclLineError::UnknownDirective("Address".into()),
        ),
    ];
    for (text, expected) in cases {
        let (line, reason, shown) = line_error(&format!("# c\ntopic ok\n{text}\n"));
        assert_eq!((line, &reason), (3, expected), "{text}");
        assert!(shown.starts_with("acl.txt:3: "), "{shown}");
    }
    let (_, _, shown) = line_error("address 10.0.0.0/40\n");
    assert_eq!(
        shown,
        "acl.txt:1: invalid address range \"10.0.0.0/40\": prefix length must be a number from 0 to 32"
    );
}

/// A user named `address` is still a user: only the directive word starts a section.
#[test]
fn user_named_address_is_a_user() {
    let acl = acl("user address\ntopic a\n");
    assert!(can(&acl, &user("c", "address"), Access::Write, "a"));
    assert!(!can(
        &acl,
        &from(anonymous("c"), "10.0.0.1"),
        Access::Write,
        "a"
    ));
}
