"""Interoperability with paho-mqtt 2.x (Eclipse Paho Python client) against ``midge serve``.

MQTT 5.0 features through a real third-party client: publish properties passed through,
message expiry, shared subscriptions, topic aliases, subscription identifiers, QoS 1/2
flows; and a 3.1.1 paho client. Fixtures (``broker``, ``connect``) are in conftest.py.
Run with ``scripts/interop``.
"""

from __future__ import annotations

import json
import queue
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import TIMEOUT


def props_of(packet_type, **values) -> Properties:
    """``Properties`` of ``packet_type`` with the given values (paho attribute names)."""
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def publish_properties(**values) -> Properties:
    return props_of(PacketTypes.PUBLISH, **values)


def assert_no_more(*clients, wait=0.3):
    """Nothing else arrives at ``clients`` within ``wait`` seconds."""
    time.sleep(wait)
    for client in clients:
        extra = []
        while True:
            try:
                extra.append(client.messages.get_nowait())
            except queue.Empty:
                break
        assert not extra, f"unexpected messages: {[(m.topic, m.payload) for m in extra]}"


# ---------------------------------------------------------------------------------------
# MQTT 5.0 publish properties
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v5_publish_properties_pass_through(connect, qos):
    """User properties (order and duplicates kept), response topic, correlation data,
    content type, payload format indicator and message expiry interval reach the
    subscriber unaltered (the expiry at most the published value).

    conformance: v5 MQTT-3.3.2-4
    conformance: v5 MQTT-3.3.2-6
    conformance: v5 MQTT-3.3.2-15
    conformance: v5 MQTT-3.3.2-16
    conformance: v5 MQTT-3.3.2-17
    conformance: v5 MQTT-3.3.2-18
    conformance: v5 MQTT-3.3.2-20
    """
    sub = connect("props-sub")
    pub = connect("props-pub")
    sub.subscribe("props/#", qos=2)
    user = [("k1", "v1"), ("k2", "v2"), ("k1", "v3"), ("é", "ü")]
    payload = json.dumps({"hello": "world"}).encode()
    pub.publish(
        "props/t",
        payload,
        qos=qos,
        properties=publish_properties(
            PayloadFormatIndicator=1,
            MessageExpiryInterval=120,
            ResponseTopic="reply/to/me",
            CorrelationData=b"\x00\x01corr\xff",
            ContentType="application/json",
            UserProperty=user,
        ),
    )
    msg = sub.receive()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("props/t", payload, qos, False)
    p = msg.properties
    assert p.UserProperty == user
    assert p.ResponseTopic == "reply/to/me"
    assert p.CorrelationData == b"\x00\x01corr\xff"
    assert p.ContentType == "application/json"
    assert p.PayloadFormatIndicator == 1
    assert 118 <= p.MessageExpiryInterval <= 120
    assert_no_more(sub)


def test_v5_message_expiry_while_session_offline(connect):
    """A persistent session is offline: a message whose expiry interval passes is not
    delivered when it comes back; one still valid is, with the interval reduced by the
    time it waited.

    conformance: v5 MQTT-3.3.2-5
    conformance: v5 MQTT-3.3.2-6
    conformance: v5 MQTT-3.1.2-5
    """
    expiry = props_of(PacketTypes.CONNECT, SessionExpiryInterval=60)
    sub = connect("expiry-sub", clean=True, properties=expiry)
    sub.subscribe("exp/t", qos=1)
    sub.mqtt.disconnect()
    sub.mqtt.loop_stop()

    pub = connect("expiry-pub")
    pub.publish("exp/t", b"short", qos=1, properties=publish_properties(MessageExpiryInterval=1))
    pub.publish("exp/t", b"long", qos=1, properties=publish_properties(MessageExpiryInterval=60))
    time.sleep(2.2)

    back = connect("expiry-sub", clean=False, properties=expiry)
    assert back.session_present
    msg = back.receive()
    assert (msg.topic, msg.payload, msg.qos) == ("exp/t", b"long", 1)
    assert 55 <= msg.properties.MessageExpiryInterval <= 58
    assert_no_more(back)


# ---------------------------------------------------------------------------------------
# Shared subscriptions
# ---------------------------------------------------------------------------------------


def test_v5_shared_subscription_spreads_without_loss_or_duplicates(connect):
    """Two members of ``$share/g/shared/t`` get 20 QoS 1 messages between them: each
    message exactly once, both members some, on the topic as published.

    conformance: v5 MQTT-4.8.2-1
    conformance: v5 MQTT-4.8.2-2
    conformance: v5 MQTT-4.8.2-3
    """
    a = connect("share-a")
    b = connect("share-b")
    pub = connect("share-pub")
    assert a.connack_properties.SharedSubscriptionAvailable == 1
    assert a.subscribe("$share/g/shared/t", qos=1)[0].value == 1
    assert b.subscribe("$share/g/shared/t", qos=1)[0].value == 1
    sent = [f"m{i:02}".encode() for i in range(20)]
    for payload in sent:
        pub.publish("shared/t", payload, qos=1)

    got = {"a": [], "b": []}
    deadline = time.monotonic() + TIMEOUT
    while len(got["a"]) + len(got["b"]) < len(sent) and time.monotonic() < deadline:
        for name, client in (("a", a), ("b", b)):
            try:
                got[name].append(client.messages.get(timeout=0.02))
            except queue.Empty:
                pass
    assert_no_more(a, b)
    every = got["a"] + got["b"]
    assert all(m.topic == "shared/t" and m.qos == 1 for m in every)
    payloads = [m.payload for m in every]
    assert sorted(payloads) == sent, "each message exactly once"
    assert got["a"] and got["b"], f"not spread: a={len(got['a'])} b={len(got['b'])}"


# ---------------------------------------------------------------------------------------
# Topic aliases
# ---------------------------------------------------------------------------------------


def test_v5_topic_alias_from_client(connect):
    """The client sets alias 1 (topic + alias), uses it (empty topic + alias), then
    remaps it; the subscriber receives the full topics and, having sent no Topic Alias
    Maximum, no alias.

    conformance: v5 MQTT-3.3.2-12
    conformance: v5 MQTT-3.3.2-11
    """
    sub = connect("alias-sub")
    pub = connect("alias-pub")
    assert pub.connack_properties.TopicAliasMaximum >= 1
    sub.subscribe("alias/#", qos=1)
    steps = [("alias/one", b"set"), ("", b"use"), ("alias/two", b"remap"), ("", b"use again")]
    for topic, payload in steps:
        pub.publish(topic, payload, qos=1, properties=publish_properties(TopicAlias=1))
    messages = sub.receive_n(len(steps))
    assert not any(hasattr(m.properties, "TopicAlias") for m in messages)
    received = [(m.topic, m.payload) for m in messages]
    assert received == [
        ("alias/one", b"set"),
        ("alias/one", b"use"),
        ("alias/two", b"remap"),
        ("alias/two", b"use again"),
    ]
    assert_no_more(sub)


def test_v5_topic_alias_not_carried_to_next_connection(connect):
    """An alias set on one connection is unknown on the next: using it is a protocol
    error and the broker closes the connection (the message is not delivered).

    conformance: v5 MQTT-3.3.2-7
    """
    sub = connect("alias2-sub")
    sub.subscribe("alias2/#", qos=1)
    first = connect("alias2-pub")
    first.publish("alias2/t", b"set", qos=1, properties=publish_properties(TopicAlias=3))
    first.mqtt.disconnect()
    first.mqtt.loop_stop()
    assert sub.receive().payload == b"set"

    second = connect("alias2-pub")
    closed = queue.Queue()
    second.mqtt.on_disconnect = lambda _c, _u, _f, rc, _p: closed.put(rc)
    second.mqtt.publish("", b"stale", qos=1, properties=publish_properties(TopicAlias=3))
    rc = closed.get(timeout=TIMEOUT)
    # Stop paho's automatic reconnection (which would resend the stale PUBLISH).
    second.mqtt.disconnect()
    second.mqtt.loop_stop()
    assert rc.value == 0x82, f"expected DISCONNECT Protocol Error, got {rc}"
    assert_no_more(sub)


# ---------------------------------------------------------------------------------------
# Subscription identifiers
# ---------------------------------------------------------------------------------------


def test_v5_subscription_identifiers_on_overlapping_subscriptions(connect):
    """Two overlapping subscriptions with identifiers 1 (``si/#``, QoS 1) and 2
    (``si/+``, QoS 2): a message matching both arrives once, at the highest QoS, carrying
    both identifiers; one matching only ``si/#`` carries 1.

    conformance: v5 MQTT-3.3.4-2
    conformance: v5 MQTT-3.3.4-3
    conformance: v5 MQTT-3.3.4-4
    """
    sub = connect("subid-sub")
    pub = connect("subid-pub")
    assert getattr(sub.connack_properties, "SubscriptionIdentifierAvailable", 1) == 1
    for topic, qos, identifier in [("si/#", 1, 1), ("si/+", 2, 2)]:
        props = props_of(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=identifier)
        sub.subscribe(topic, qos=qos, properties=props)
    pub.publish("si/x", b"both", qos=2)
    pub.publish("si/x/y", b"only hash", qos=2)
    pub.publish("si/x", b"both again", qos=2)
    # Sorted: the order between QoS 1 and QoS 2 messages is not specified (paho hands
    # a QoS 2 message over at PUBREL).
    received = sorted(
        (m.payload, m.topic, m.qos, sorted(m.properties.SubscriptionIdentifier))
        for m in sub.receive_n(3)
    )
    assert received == [
        (b"both", "si/x", 2, [1, 2]),
        (b"both again", "si/x", 2, [1, 2]),
        (b"only hash", "si/x/y", 1, [1]),
    ]
    assert_no_more(sub)


# ---------------------------------------------------------------------------------------
# QoS flows
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v5_round_trip_each_qos(connect, qos):
    """Ten messages at QoS ``qos``: the publisher's flows complete (PUBACK; PUBREC,
    PUBCOMP), the subscriber receives them once each, in order, at that QoS.

    conformance: v5 MQTT-3.3.4-1
    conformance: v5 MQTT-4.3.1-1
    conformance: v5 MQTT-4.3.2-4
    conformance: v5 MQTT-4.3.3-8
    conformance: v5 MQTT-4.3.3-11
    conformance: v5 MQTT-4.6.0-5
    conformance: v5 MQTT-4.6.0-6
    """
    sub = connect("rt-sub")
    pub = connect("rt-pub")
    assert sub.subscribe("rt/t", qos=qos)[0].value == qos
    sent = [f"msg {i}".encode() for i in range(10)]
    for payload in sent:
        pub.publish("rt/t", payload, qos=qos)
    received = [(m.payload, m.qos, m.dup, m.retain) for m in sub.receive_n(len(sent))]
    assert received == [(p, qos, False, False) for p in sent]
    assert_no_more(sub)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v311_round_trip_and_retained(connect, qos):
    """A 3.1.1 paho client: ten messages at QoS ``qos`` arrive in order at that QoS; a
    retained message reaches a later subscriber with RETAIN 1, and an empty retained
    message removes it.

    conformance: v3.1.1 MQTT-3.3.4-1
    conformance: v3.1.1 MQTT-4.3.1-1
    conformance: v3.1.1 MQTT-4.3.2-2
    conformance: v3.1.1 MQTT-4.3.3-2
    conformance: v3.1.1 MQTT-4.6.0-6
    conformance: v3.1.1 MQTT-3.3.1-5
    conformance: v3.1.1 MQTT-3.3.1-6
    conformance: v3.1.1 MQTT-3.3.1-8
    conformance: v3.1.1 MQTT-3.3.1-10
    conformance: v3.1.1 MQTT-3.3.1-11
    """
    sub = connect("v311-sub", protocol=mqtt.MQTTv311)
    pub = connect("v311-pub", protocol=mqtt.MQTTv311)
    assert [rc.value for rc in sub.subscribe("v311/t", qos=qos)] == [qos]  # granted QoS
    sent = [f"msg {i}".encode() for i in range(10)]
    for payload in sent:
        pub.publish("v311/t", payload, qos=qos)
    received = [(m.topic, m.payload, m.qos, m.retain) for m in sub.receive_n(len(sent))]
    assert received == [("v311/t", p, qos, False) for p in sent]

    pub.publish("v311/r", b"kept", qos=qos, retain=True)
    late = connect("v311-late", protocol=mqtt.MQTTv311)
    late.subscribe("v311/r", qos=qos)
    msg = late.receive()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("v311/r", b"kept", qos, True)

    pub.publish("v311/r", b"", qos=qos, retain=True)
    assert late.receive().payload == b""  # the deletion is delivered to subscribers
    later = connect("v311-later", protocol=mqtt.MQTTv311)
    later.subscribe("v311/r", qos=qos)
    pub.publish("v311/r", b"sentinel", qos=qos)
    msg = later.receive()
    assert (msg.payload, msg.retain) == (b"sentinel", False), "retained message not deleted"


def test_v311_and_v5_clients_interoperate(connect):
    """A 3.1.1 subscriber receives a v5 publication (its properties dropped), and a v5
    subscriber receives a 3.1.1 publication (with no properties).

    conformance: v5 MQTT-3.3.2-3
    conformance: v3.1.1 MQTT-3.3.2-3
    """
    old = connect("mix-311", protocol=mqtt.MQTTv311)
    new = connect("mix-5")
    old.subscribe("mix/#", qos=1)
    new.subscribe("mix/#", qos=1)
    props = publish_properties(UserProperty=[("a", "b")])
    new.publish("mix/from5", b"five", qos=1, properties=props)
    old.publish("mix/from311", b"three", qos=1)
    assert sorted((m.topic, m.payload) for m in old.receive_n(2)) == [
        ("mix/from311", b"three"),
        ("mix/from5", b"five"),
    ]
    got = {m.topic: m for m in new.receive_n(2)}
    assert got["mix/from5"].properties.UserProperty == [("a", "b")]
    assert not hasattr(got["mix/from311"].properties, "UserProperty")


# ---------------------------------------------------------------------------------------
# Parked connections
# ---------------------------------------------------------------------------------------


def test_idle_paho_clients_park_and_get_their_messages(connect):
    """paho clients (5.0 and 3.1.1) quiet for 3 s: their connections park
    (``park_idle_ms``, 1 s by default: parked within 2 s of their last packet), and a
    message at each QoS then wakes them: each publisher's flow completes, and each
    subscriber gets the three messages in order, at their QoS.

    conformance: v5 MQTT-4.6.0-5
    conformance: v3.1.1 MQTT-4.6.0-6
    """
    subs = [connect("park-sub5"), connect("park-sub3", protocol=mqtt.MQTTv311)]
    for sub in subs:
        sub.subscribe("park/t", qos=2)
    pub = connect("park-pub")
    time.sleep(3)
    sent = [(b"zero", 0), (b"one", 1), (b"two", 2)]
    for payload, qos in sent:
        pub.publish("park/t", payload, qos=qos)
    for sub in subs:
        assert [(m.payload, m.qos) for m in sub.receive_n(len(sent))] == sent
    assert_no_more(*subs)
