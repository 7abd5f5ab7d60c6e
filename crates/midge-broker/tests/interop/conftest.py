"""Fixtures for the paho-mqtt interoperability tests.

The ``broker`` fixture runs the real ``midge`` binary (``midge serve -p PORT``) on a
free loopback port for one test and stops it afterwards. Nothing is built here:
``scripts/interop`` runs ``cargo build -p midge`` first. The binary is
``$MIDGE_BIN`` when set, else ``target/debug/midge`` under ``$CARGO_TARGET_DIR`` or
the repository root.

The ``connect`` fixture makes connected paho clients (callback API version 2) whose
received messages land in a queue, and disconnects them at the end of the test.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

REPO_ROOT = Path(__file__).resolve().parents[4]
# Longest wait for anything: a connection, an acknowledgement, a message.
TIMEOUT = 5.0


def midge_binary() -> Path:
    if "MIDGE_BIN" in os.environ:
        path = Path(os.environ["MIDGE_BIN"])
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
        if not target.is_absolute():
            target = REPO_ROOT / target
        path = target / "debug" / "midge"
    if not path.is_file():
        pytest.fail(f"no midge binary at {path}: run `cargo build -p midge`, or set MIDGE_BIN")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@pytest.fixture
def broker(tmp_path):
    """A running ``midge serve -p PORT``; its log is shown when the test fails."""
    binary = midge_binary()
    port = free_port()
    log_path = tmp_path / "midge.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "serve", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"midge exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"midge does not accept on port {port}:\n{log_path.read_text()}")
                time.sleep(0.02)
        yield Broker("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(log_path.read_text())  # shown by pytest for failing tests only


@dataclass
class Client:
    """A connected paho client and what its callbacks saw."""

    mqtt: mqtt.Client
    # Whether the CONNACK said Session Present, and its (v5) properties.
    session_present: bool = False
    connack_properties: object = None
    messages: "queue.Queue[mqtt.MQTTMessage]" = field(default_factory=queue.Queue)
    connack: "queue.Queue[tuple]" = field(default_factory=queue.Queue)
    subacks: dict = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def subscribe(self, topic, qos=0, properties=None, options=None):
        """Subscribes and waits for the SUBACK; returns its reason codes."""
        if self.mqtt.protocol == mqtt.MQTTv5:
            opts = options or mqtt.SubscribeOptions(qos=qos)
            rc, mid = self.mqtt.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.mqtt.subscribe(topic, qos=qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        with self.lock:
            acked = self.lock.wait_for(lambda: mid in self.subacks, TIMEOUT)
            assert acked, f"no SUBACK for {topic}"
            return self.subacks.pop(mid)

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        """Publishes and waits until the flow completes (PUBACK / PUBCOMP for QoS 1 / 2)."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"publish to {topic!r} not acknowledged"
        return info

    def receive(self, timeout=TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no message within {timeout} s")

    def receive_n(self, n, timeout=TIMEOUT):
        return [self.receive(timeout) for _ in range(n)]


@pytest.fixture
def connect(broker):
    """``connect(client_id, protocol=MQTTv5, **connect_kwargs)`` -> a connected Client."""
    made = []

    def make(client_id="", protocol=mqtt.MQTTv5, clean=True, properties=None, will=None):
        kwargs = {}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        paho = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            **kwargs,
        )
        client = Client(paho)

        def on_connect(_c, _u, flags, reason_code, props):
            client.connack.put((flags, reason_code, props))

        def on_subscribe(_c, _u, mid, reason_codes, _props):
            with client.lock:
                client.subacks[mid] = reason_codes
                client.lock.notify_all()

        def on_message(_c, _u, message):
            client.messages.put(message)

        paho.on_connect = on_connect
        paho.on_subscribe = on_subscribe
        paho.on_message = on_message
        if will is not None:
            paho.will_set(**will)
        connect_kwargs = {"keepalive": 30}
        if protocol == mqtt.MQTTv5:
            connect_kwargs["clean_start"] = clean
            connect_kwargs["properties"] = properties
        paho.connect(broker.host, broker.port, **connect_kwargs)
        paho.loop_start()
        made.append(paho)
        try:
            flags, reason_code, props = client.connack.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no CONNACK for {client_id!r}")
        assert not reason_code.is_failure, f"CONNACK {reason_code}"
        client.session_present = flags.session_present
        client.connack_properties = props
        return client

    yield make
    for paho in made:
        paho.disconnect()
        paho.loop_stop()
