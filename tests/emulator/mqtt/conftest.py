"""Fixtures for the broker's tests: a Broker on an ephemeral port with a recording consumer,
devices registered through boto3 against the emulator, and real MQTT clients (paho-mqtt,
awsiotsdk, mosquitto_pub/sub) connecting over mutual TLS to 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from types import SimpleNamespace

import pytest
from support.devices import Device, register_device
from support.mqtt import emulator_view
from support.waiting import wait_until

from emulator.mqtt import codec
from emulator.mqtt.broker import Broker


class RecordingConsumer:
    """A MessageConsumer that keeps what it accepted (or refuses everything when told to)."""

    def __init__(self) -> None:
        self.messages: list = []
        self.refuse = False
        self._cond = threading.Condition()

    def accept_many(self, messages) -> None:
        if self.refuse:
            raise RuntimeError("consumer refuses (test)")
        with self._cond:
            self.messages.extend(messages)
            self._cond.notify_all()

    def on_topic(self, prefix: str) -> list:
        with self._cond:
            return [m for m in self.messages if m.topic.startswith(prefix)]

    def wait_for(self, prefix: str, count: int, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if m.topic.startswith(prefix)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._cond.wait(left)


@pytest.fixture(scope="session")
def iot_emulator(emulator):
    """The session emulator (app.py builds it with IoT Core's registry)."""
    return emulator


@pytest.fixture
def consumer() -> RecordingConsumer:
    return RecordingConsumer()


@pytest.fixture
def broker(iot_emulator, consumer):
    """A Broker of its own (ephemeral port, recording consumer) over the real IoT registry.

    It gets a view of the emulator so that it does not replace the session's `emulator.broker`.
    """
    view = emulator_view(iot_emulator, activity=None)
    instance = Broker(view, consumer=consumer, port=0).start()
    yield instance
    instance.stop()


@pytest.fixture
def make_device(aws, iot_emulator, tmp_path, unique):
    """Register a thing with an ACTIVE certificate and a policy, as a user would with boto3."""
    iot = aws("iot")
    count = [0]

    def make(policy: dict | None = None, name: str | None = None) -> Device:
        count[0] += 1
        thing = name or f"dev-{unique}-{count[0]}"
        policy_name = f"pol-{unique}-{count[0]}"
        ca_path = iot_emulator.iot.root_ca_path
        return register_device(iot, thing, policy_name, tmp_path, ca_path, policy)

    return make


@pytest.fixture
def paho_client():
    """Factory of connected paho-mqtt 2.x clients; each records what it sees."""
    import paho.mqtt.client as mqtt

    clients = []

    def connect(device: Device, port: int, version: int = 4, client_id: str | None = None, **kw):
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or device.client_id,
            protocol=protocol,
            **kw.pop("client_kw", {}),
        )
        client.tls_set(str(device.ca_path), str(device.cert_path), str(device.key_path))
        seen = SimpleNamespace(
            connack=None,
            messages=[],
            disconnects=[],
            pubacks={},
            subacks={},
            event=threading.Event(),
        )
        client.user_data_set(seen)

        def on_connect(c, s, flags, reason_code, properties):
            s.connack = reason_code
            s.event.set()

        def on_disconnect(c, s, flags, reason_code, properties):
            s.disconnects.append(reason_code)
            s.event.set()  # a refused 3.1.1 CONNECT gets no CONNACK, only the hang-up

        def on_message(c, s, message):
            s.messages.append(message)

        def on_publish(c, s, mid, reason_code, properties):
            s.pubacks[mid] = reason_code

        def on_subscribe(c, s, mid, reason_codes, properties):
            s.subacks[mid] = reason_codes

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        if "will" in kw:
            client.will_set(**kw.pop("will"))
        client.connect("localhost", port, keepalive=kw.pop("keepalive", 60), **kw)
        # Our own network loop instead of loop_start(): a refused client must stay refused
        # (loop_start reconnects) and stopping must not wait out paho's one-second sleeps.
        # Only that loop's thread touches the TLS socket, as with loop_start(): without a
        # socket-write callback paho writes a publish/subscribe from the calling thread, and
        # an SSL object used by two threads at once fails ("[SSL: BAD_LENGTH] bad length").
        client.on_socket_register_write = lambda *_: None  # queued writes wake the loop
        stop = threading.Event()

        def network_loop():
            while not stop.is_set():
                if client.loop(0.02) != 0:
                    stop.wait(0.02)

        thread = threading.Thread(target=network_loop, daemon=True)
        thread.start()
        client.loop_stop = lambda: (stop.set(), thread.join(5))
        queue_disconnect = client.disconnect

        def disconnect(*args, **kwargs):
            """paho's disconnect, returning once the DISCONNECT is written (by the loop)."""
            before = len(seen.disconnects)
            code = queue_disconnect(*args, **kwargs)
            if code == mqtt.MQTT_ERR_SUCCESS and thread.is_alive():
                wait_until(lambda: len(seen.disconnects) > before, timeout=5)
            return code

        client.disconnect = disconnect
        seen.event.wait(10)
        client.seen = seen
        clients.append(client)
        return client

    yield connect
    for client in clients:
        try:
            client.disconnect()
        except Exception:
            pass
        client.loop_stop()


@pytest.fixture
def raw_client():
    """Factory of bare TLS sockets that sent CONNECT (3.1.1) and read the CONNACK: for what
    client libraries will not do (stay silent past keep-alive, vanish without DISCONNECT)."""
    sockets = []

    def connect(device: Device, port: int, client_id: str, keep_alive: int = 60, will=None):
        context = ssl.create_default_context(cafile=str(device.ca_path))
        context.load_cert_chain(str(device.cert_path), str(device.key_path))
        tls = context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
        )
        sockets.append(tls)
        flags = 0x02
        tail = b""
        if will is not None:
            topic, payload = will
            flags |= 0x04 | (1 << 3)
            tail = struct.pack("!H", len(topic)) + topic.encode() + struct.pack("!H", len(payload))
            tail += payload
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04" + bytes((flags,)) + struct.pack("!H", keep_alive)
        body += struct.pack("!H", len(cid)) + cid + tail
        tls.sendall(b"\x10" + codec.encode_varint(len(body)) + body)
        tls.settimeout(10)
        connack = tls.recv(4)
        assert connack == b"\x20\x02\x00\x00", connack
        return tls

    yield connect
    for tls in sockets:
        tls.close()


@pytest.fixture
def until():
    return wait_until
