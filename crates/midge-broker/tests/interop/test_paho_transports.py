"""paho-mqtt 2.x over WebSockets (``transport="websockets"``) and secure WebSockets
against ``midge serve -c`` with a Midge TOML that defines a ``ws`` and a ``wss``
listener. The server certificate is made at test time with the ``openssl`` command
(``scripts/test`` installs it). Run with ``scripts/interop``.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import TIMEOUT, free_port, midge_binary


@pytest.fixture
def ws_broker(tmp_path):
    """``midge serve -c`` with a ``ws`` listener (path /mqtt) and a ``wss`` listener;
    yields (ws_port, wss_port, ca_file)."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ws_port, wss_port = free_port(), free_port()
    config = tmp_path / "midge.toml"
    config.write_text(
        f"""allow_anonymous = true

[[listener]]
bind = "127.0.0.1:{ws_port}"
protocol = "websockets"
websockets_path = "/mqtt"

[[listener]]
bind = "127.0.0.1:{wss_port}"
protocol = "websockets"
certfile = "{cert}"
keyfile = "{key}"
"""
    )
    log_path = tmp_path / "midge.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(midge_binary()), "serve", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        for port in (ws_port, wss_port):
            while True:
                if process.poll() is not None:
                    pytest.fail(f"midge exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"midge does not accept on {port}:\n{log_path.read_text()}")
                    time.sleep(0.02)
        yield ws_port, wss_port, cert
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(log_path.read_text())


def ws_client(client_id, port, protocol, ca=None):
    """A connected paho client over WebSockets (TLS when ``ca``); messages land in
    ``client.messages``."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        transport="websockets",
    )
    client.messages = queue.Queue()
    connacks = queue.Queue()
    subacks = queue.Queue()
    client.on_connect = lambda _c, _u, _f, rc, _p: connacks.put(rc)
    client.on_message = lambda _c, _u, m: client.messages.put(m)
    client.on_subscribe = lambda _c, _u, mid, _rc, _p: subacks.put(mid)
    client.subacks = subacks
    if ca is None:
        client.ws_set_options(path="/mqtt")
    else:
        client.tls_set(ca_certs=str(ca))
    client.connect("localhost" if ca else "127.0.0.1", port, keepalive=30)
    client.loop_start()
    rc = connacks.get(timeout=TIMEOUT)
    assert not rc.is_failure, f"CONNACK {rc}"
    return client


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_paho_websockets_round_trip(ws_broker, protocol, secure):
    """A paho subscriber and publisher over ws / wss exchange QoS 0, 1 and 2 messages,
    one of them larger than a WebSocket frame buffer.

    conformance: v5 MQTT-6.0.0-1
    conformance: v5 MQTT-6.0.0-4
    conformance: v3.1.1 MQTT-6.0.0-4
    """
    ws_port, wss_port, ca = ws_broker
    port, ca = (wss_port, ca) if secure else (ws_port, None)
    sub = ws_client("sub", port, protocol, ca)
    pub = ws_client("pub", port, protocol, ca)
    try:
        sub.subscribe("ws/#", qos=2)
        sub.subacks.get(timeout=TIMEOUT)
        payloads = [b"zero", b"one", b"x" * 300_000]
        for qos, payload in enumerate(payloads):
            info = pub.publish(f"ws/{qos}", payload, qos=qos)
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()
        got = [sub.messages.get(timeout=TIMEOUT) for _ in payloads]
        assert [(m.topic, m.qos, m.payload) for m in got] == [
            (f"ws/{qos}", qos, payload) for qos, payload in enumerate(payloads)
        ]
    finally:
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()
