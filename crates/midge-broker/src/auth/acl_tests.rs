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
    }
}

fn anonymous(client_id: &str) -> ClientIdentity<'_> {
    ClientIdentity {
        client_id,
        username: None,
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
            "{}:3: unknown directive \"bogus\" (expected topic, pattern or user)",
            path.display()
        )
    );
    std::fs::write(&path, "user u\ntopic read a\n").unwrap();
    let acl = load(&path).unwrap();
    assert!(check(&acl, &user("c", "u"), Access::Read, "a"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(load(&path), Err(AclError::Io { .. })));
}
