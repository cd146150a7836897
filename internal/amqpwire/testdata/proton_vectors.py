#!/usr/bin/python3
"""Reference encodings from Apache Qpid Proton, an independent AMQP 1.0
implementation, for the amqpwire tests.

Run with Debian's interpreter (python3-qpid-proton is a Debian package):

    /usr/bin/python3 internal/amqpwire/testdata/proton_vectors.py

It writes proton_vectors.json: values, messages and whole frames that
proton encoded, each with proton's own rendering. If go_vectors.json exists
(written by `go test ./internal/amqpwire -run TestProton -update`) it also
decodes every amqpwire encoding listed there with proton, compares the
result with what proton decodes from its own bytes, and records the
encodings that match in proton_verified.json. The Go tests assert all three
files, so rerun both steps after changing the encoder.
"""
import json
import os
import struct
import sys
import uuid

from proton import (UNDESCRIBED, Array, Condition, Connection, Data, Delivery, Described,
                    Endpoint, Message, Transport, char, decimal32, decimal64,
                    decimal128, symbol, timestamp, ubyte, uint, ulong, ushort,
                    byte, short, int32, float32)

HERE = os.path.dirname(os.path.abspath(__file__))
vectors = []


def add(name, kind, raw, desc):
    vectors.append({"name": name, "kind": kind, "hex": raw.hex(), "proton": desc})


def value(name, put):
    d = Data()
    put(d)
    raw = d.encode()
    d2 = Data()
    d2.decode(raw)
    add(name, "value", raw, repr(d2.get_object()))


def obj(name, o):
    value(name, lambda d: d.put_object(o))


# --- primitive and compound values -----------------------------------------
obj("null", None)
obj("true", True)
obj("false", False)
obj("ubyte", ubyte(255))
obj("ushort", ushort(65535))
obj("uint0", uint(0))
obj("smalluint", uint(200))
obj("uint", uint(70000))
obj("ulong0", ulong(0))
obj("smallulong", ulong(7))
obj("ulong_max", ulong(2**64 - 1))
obj("byte", byte(-128))
obj("short", short(-300))
obj("smallint", int32(-5))
obj("int", int32(100000))
obj("smalllong", 3)
obj("long_min", -2**63)
obj("float", float32(1.5))
obj("double", -2.25)
obj("decimal32", decimal32(0x01020304))
obj("decimal64", decimal64(0x0102030405060708))
obj("decimal128", decimal128(bytes(range(1, 17))))
obj("char", char("\U0001F600"))
obj("timestamp", timestamp(1700000000123))
obj("timestamp_negative", timestamp(-1))
obj("uuid", uuid.UUID("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))
obj("vbin8", b"\x00\x01\xfe\xff")
obj("vbin32", bytes(range(256)) + b"xyz")
obj("str8", "h\u00e9llo")
obj("str32", "a" * 300)
obj("sym8", symbol("com.microsoft:client-version"))
obj("sym32", symbol("s" * 256))
obj("list0", [])
obj("list", [uint(1), "two", None, [symbol("x")], True])
obj("map", {"status": int32(200), symbol("version"): 5})
obj("map_nonstring_keys", {ulong(1): "one", b"\x02": None, uuid.UUID(int=3): False})
obj("described_ulong", Described(ulong(0x75), b"payload"))
obj("described_symbol", Described(symbol("com.example:thing"), [1, "x"]))
obj("array_symbol", Array(UNDESCRIBED, Data.SYMBOL, symbol("PLAIN"), symbol("ANONYMOUS")))
obj("array_int", Array(UNDESCRIBED, Data.INT, int32(1), int32(-1), int32(100000)))
obj("array_uuid", Array(UNDESCRIBED, Data.UUID, uuid.UUID(int=1), uuid.UUID(int=2)))
obj("array_empty", Array(UNDESCRIBED, Data.STRING))
obj("array_described", Array(symbol("com.example:pair"), Data.LIST, [1, 2], ["a"]))
obj("array_of_array", Array(UNDESCRIBED, Data.ARRAY,
                            Array(UNDESCRIBED, Data.BOOL, True, False),
                            Array(UNDESCRIBED, Data.BOOL)))

# --- messages --------------------------------------------------------------
CREATED = 1700000000123


def message(name, m):
    raw = m.encode()
    m2 = Message()
    m2.decode(raw)
    add(name, "message", raw, repr(m2))


message("msg_ulong_id", Message(
    id=ulong(42), correlation_id=ulong(41), durable=True, ttl=60,
    address="/devices/dev1/messages/events", subject="telemetry",
    reply_to="/devices/dev1/messages/devicebound", content_type="application/json",
    content_encoding="utf-8", creation_time=CREATED / 1000.0,
    expiry_time=(CREATED + 3600000) / 1000.0, group_id="g", group_sequence=7,
    reply_to_group_id="rg", user_id=b"dev1",
    properties={"iothub-creation-time-utc": "2023-11-14T22:13:20Z", "temperatureAlert": "true"},
    annotations={symbol("status"): int32(200), symbol("version"): 3,
                 symbol("x-opt-sequence-number"): ulong(9)},
    body=b'{"temperature":21.5}', inferred=True))
message("msg_uuid_id", Message(id=uuid.UUID("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
                               correlation_id=uuid.UUID(int=0x1234), body="x"))
message("msg_string_id", Message(id="twin:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                                 correlation_id="GetTwin-1", body=None))
message("msg_binary_id", Message(id=b"\x01\x02\x03", correlation_id=b"", body=[1, "a"]))
message("msg_cbs_put_token", Message(
    id="3f2504e0-4f89-11d3-9a0c-0305e82c3301", reply_to="cbs", address="$cbs",
    properties={"operation": "put-token", "type": "servicebus.windows.net:sastoken",
                "name": "hub.example/devices/dev1"},
    body="SharedAccessSignature sr=hub.example%2Fdevices%2Fdev1&sig=abc&se=1700003600"))


def decode_values(raw):
    """Decodes consecutive values; Data.decode reads only one per call."""
    out, off = [], 0
    while off < len(raw):
        d = Data()
        n = d.decode(raw[off:])
        out.append(d.get_object())
        off += n
    return out


def sections(name, *secs):
    d = Data()
    for descriptor, v in secs:
        d.put_object(Described(ulong(descriptor), v))
    raw = d.encode()
    add(name, "message", raw, "; ".join(repr(o) for o in decode_values(raw)))


sections("msg_multi_data",
         (0x70, [True]),
         (0x72, {symbol("iothub-interface-id"): "dtmi:x;1", symbol("x-opt-enqueued-time"): timestamp(CREATED)}),
         (0x73, [ulong(1), None, None, None, None, None, symbol("application/octet-stream")]),
         (0x74, {"k": "v"}),
         (0x75, b"first"),
         (0x75, b"second"),
         (0x75, b""),
         (0x78, {symbol("f"): True}))
sections("msg_amqp_sequence", (0x76, [1, "a"]), (0x76, []))

inner1 = Message(id="m1", properties={"n": "1"}, body=b'{"i":1}').encode()
inner2 = Message(id="m2", body=b'{"i":2}').encode()
sections("msg_batch", (0x72, {symbol("x-opt-partition-key"): "dev1"}), (0x75, inner1), (0x75, inner2))


# --- whole frames from proton's engine ---------------------------------------
def frames_of(raw):
    """Splits a chunk of transport output into protocol headers and frames."""
    out = []
    while raw:
        if raw[:4] == b"AMQP":
            out.append(raw[:8])
            raw = raw[8:]
            continue
        size = struct.unpack(">I", raw[:4])[0]
        out.append(raw[:size])
        raw = raw[size:]
    return out


names = {0x10: "open", 0x11: "begin", 0x12: "attach", 0x13: "flow", 0x14: "transfer",
         0x15: "disposition", 0x16: "detach", 0x17: "end", 0x18: "close",
         0x40: "sasl_mechanisms", 0x41: "sasl_init", 0x42: "sasl_challenge",
         0x43: "sasl_response", 0x44: "sasl_outcome"}
seen = {}


def record(direction, raw):
    for f in frames_of(raw):
        if f[:4] == b"AMQP":
            name, desc = "%s_header_%d" % (direction, f[4]), "protocol header"
        elif len(f) == 8:
            name, desc = "%s_empty" % direction, "empty frame"
        else:
            doff = f[4] * 4
            body = f[doff:]
            d = Data()
            n = d.decode(body)
            o = d.get_object()
            name = "%s_%s" % (direction, names[o.descriptor])
            desc = repr(o)
            if n < len(body):
                desc += " + payload %s" % body[n:].hex()
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name += "_%d" % seen[name]
        add(name, "frame", f, desc)


def drain(t):
    n = t.pending()
    if n <= 0:
        return b""
    raw = t.peek(n)
    t.pop(n)
    return raw


def pump(ct, st):
    while True:
        a = drain(ct)
        if a:
            record("c2s", a)
            st.push(a)
        b = drain(st)
        if b:
            record("s2c", b)
            ct.push(b)
        if not a and not b:
            return


def serve(conn):
    """Opens whatever the client opened on the server side."""
    for ssn in [s for s in iter_sessions(conn)]:
        if ssn.state & Endpoint.LOCAL_UNINIT:
            ssn.open()
    link = conn.link_head(0)
    while link:
        if link.state & Endpoint.LOCAL_UNINIT:
            link.source.copy(link.remote_source)
            link.target.copy(link.remote_target)
            link.open()
            if link.is_receiver:
                link.flow(10)
        link = link.next(0)


def iter_sessions(conn):
    s = conn.session_head(0)
    while s:
        yield s
        s = s.next(0)


# A SASL ANONYMOUS exchange with proton on both ends.
c = Connection()
c.container = "client-container"
c.hostname = "hub.example"
ct = Transport()
ct.idle_timeout = 240.0
ct.max_frame_size = 65536
ct.bind(c)
cs = ct.sasl()
cs.allowed_mechs("ANONYMOUS")
s = Connection()
s.container = "hub"
s.offered_capabilities = [symbol("ANONYMOUS-RELAY")]
s.properties = {symbol("product"): "emulator"}
st = Transport(Transport.SERVER)
st.max_frame_size = 65536
st.idle_timeout = 2.0
st.bind(s)
ss = st.sasl()
ss.allowed_mechs("ANONYMOUS")
c.open()
s.open()
pump(ct, st)

ssn = c.session()
ssn.open()
snd = ssn.sender("telemetry-dev1")
snd.target.address = "amqps://hub.example/devices/dev1/messages/events"
snd.source.address = "dev1"
snd.properties = {symbol("com.microsoft:client-version"): "catmsim/0.1",
                  symbol("com.microsoft:api-version"): "2020-09-30"}
snd.open()
rcv = ssn.receiver("c2d-dev1")
rcv.source.address = "/devices/dev1/messages/deviceBound"
rcv.source.timeout = 30
rcv.target.address = "dev1"
rcv.rcv_settle_mode = 1
rcv.open()
pump(ct, st)
serve(s)
pump(ct, st)

telemetry = Message(id="msg-1", properties={"temperatureAlert": "false"},
                    body=b'{"temperature":21.5,"humidity":40}')
telemetry.inferred = True
dlv = snd.delivery("tag-0001")
snd.send(telemetry.encode())
snd.advance()
pump(ct, st)

srcv = s.link_head(0)
while srcv and not srcv.is_receiver:
    srcv = srcv.next(0)
sd = srcv.current
srcv.recv(sd.pending)
srcv.advance()
sd.local.condition = Condition("amqp:link:message-size-exceeded", "message too large",
                               {symbol("max-size"): ulong(262144)})
sd.update(Delivery.REJECTED)
sd.settle()
pump(ct, st)

dlv2 = snd.delivery("tag-0002")
snd.send(telemetry.encode())
snd.advance()
pump(ct, st)
sd = srcv.current
srcv.recv(sd.pending)
srcv.advance()
sd.update(Delivery.ACCEPTED)
sd.settle()
pump(ct, st)

# An idle client sends an empty frame at half the server's idle time-out.
ct.tick(1000.0)
st.tick(1000.0)
pump(ct, st)
ct.tick(1001.5)
pump(ct, st)

snd.close()
pump(ct, st)
ssn.close()
pump(ct, st)
c.condition = Condition("amqp:connection:forced", "shutting down")
c.close()
pump(ct, st)

# SASL PLAIN, as third-party IoT Hub clients use it. Proton's server side
# here offers only ANONYMOUS, so the mechanisms frame is built by hand.
c2 = Connection()
c2.user = "dev1@sas.hub"
c2.password = "SharedAccessSignature sr=hub.example%2Fdevices%2Fdev1&sig=x&se=1"
c2.hostname = "hub.example"
ct2 = Transport()
ct2.bind(c2)
cs2 = ct2.sasl()
cs2.allow_insecure_mechs = True
cs2.allowed_mechs("PLAIN")
c2.open()
drain(ct2)
# Proton's client reads the offered mechanisms only from an array8 of sym8
# (its own array32/sym32 output is refused), so build that form by hand.
mechs = b"".join(bytes([len(m)]) + m for m in (b"MSSBCBS", b"PLAIN"))
arr = bytes([0xe0, 2 + len(mechs), 2, 0xa3]) + mechs
mbody = bytes([0x00, 0x53, 0x40, 0xc0, 1 + len(arr), 1]) + arr
ct2.push(b"AMQP\x03\x01\x00\x00" + struct.pack(">IBBH", 8 + len(mbody), 2, 1, 0) + mbody)
seen.pop("c2s_sasl_init", None)
for f in frames_of(drain(ct2)):
    d = Data()
    d.decode(f[8:])
    add("c2s_sasl_init_plain", "frame", f, repr(d.get_object()))


# --- verification of amqpwire's encodings ------------------------------------
# Field defaults of the composite types (descriptor: {index: default}).
# amqpwire leaves out fields that hold their default, proton writes them,
# and the two mean the same. max-message-size and message-format 0 are
# "unset" by the specification's prose rather than a declared default.
DEFAULTS = {
    0x10: {2: uint(4294967295), 3: ushort(65535), 4: uint(0)},
    0x11: {4: uint(4294967295)},
    0x12: {3: ubyte(2), 4: ubyte(0), 8: False, 10: ulong(0)},
    0x13: {8: False, 9: False},
    0x14: {3: uint(0), 4: False, 5: False, 9: False, 10: False, 11: False},
    0x15: {3: False, 5: False},
    0x16: {1: False},
    0x27: {0: False, 1: False},
    0x28: {1: uint(0), 2: symbol("session-end"), 3: uint(0), 4: False},
    0x29: {1: uint(0), 2: symbol("session-end"), 3: uint(0), 4: False},
    0x70: {0: False, 1: ubyte(4), 3: False, 4: uint(0)},
}


def normalize(o, field=False):
    """Turns a decoded value into a form that compares type-strictly (Python
    would find uint(1) == ulong(1) == 1) and in which a composite's fields
    that hold their default, and trailing absent fields, are dropped. A
    list of symbols in a field becomes an array: proton sends either for
    multiple-valued fields, which the specification allows to be arrays."""
    if o is None:
        return None
    if isinstance(o, Described):
        v = o.value
        if isinstance(v, list) and isinstance(o.descriptor, int):
            defaults = DEFAULTS.get(int(o.descriptor), {})
            v = [None if i in defaults and type(x) is type(defaults[i]) and x == defaults[i]
                 else normalize(x, True) for i, x in enumerate(v)]
            while v and v[-1] is None:
                v.pop()
            v = ("fields", tuple(v))
        else:
            v = normalize(v)
        return ("described", normalize(o.descriptor), v)
    if isinstance(o, list):
        if field and o and all(type(x) is symbol for x in o):
            return ("array", None, "symbol", tuple(o))
        return ("list", tuple(normalize(x) for x in o))
    if isinstance(o, dict):
        return ("map", frozenset((normalize(k), normalize(v)) for k, v in o.items()))
    if isinstance(o, Array):
        d = None if o.descriptor is UNDESCRIBED else normalize(o.descriptor)
        if field and d is None and o.type == Data.SYMBOL:
            return ("array", None, "symbol", tuple(o.elements))
        return ("array", d, o.type, tuple(repr(normalize(x)) for x in o.elements))
    return (type(o).__name__, o)


def decode_all(kind, raw):
    if kind == "frame":
        if raw[:4] == b"AMQP" or len(raw) == 8:
            return [raw[:8]] if raw[:4] == b"AMQP" else ["empty", raw[4:8]]
        hdr, body = raw[:8], raw[raw[4] * 4:]
        d = Data()
        n = d.decode(body)
        assert struct.unpack(">I", raw[:4])[0] == len(raw), "frame size"
        return [hdr[5:8], normalize(d.get_object()), [normalize(x) for x in decode_values(body[n:])]]
    return [normalize(o) for o in decode_values(raw)]


def verify():
    path = os.path.join(HERE, "go_vectors.json")
    if not os.path.exists(path):
        return True
    with open(path) as f:
        ours = json.load(f)
    theirs = {v["name"]: v for v in vectors}
    verified, ok = {}, True
    for name, ourhex in sorted(ours.items()):
        v = theirs.get(name)
        if v is None:
            print("go_vectors.json has %s, which proton_vectors.json lacks" % name)
            ok = False
            continue
        want = decode_all(v["kind"], bytes.fromhex(v["hex"]))
        try:
            got = decode_all(v["kind"], bytes.fromhex(ourhex))
        except Exception as e:  # proton refused our bytes
            print("%s: proton cannot decode amqpwire's encoding: %s" % (name, e))
            ok = False
            continue
        if got != want:
            print("%s: proton decodes amqpwire's encoding differently:\n  ours:   %r\n  proton: %r" % (name, got, want))
            ok = False
            continue
        verified[name] = ourhex
    with open(os.path.join(HERE, "proton_verified.json"), "w") as f:
        json.dump(verified, f, indent=1, sort_keys=True)
        f.write("\n")
    print("proton decoded %d of %d amqpwire encodings identically" % (len(verified), len(ours)))
    return ok


with open(os.path.join(HERE, "proton_vectors.json"), "w") as f:
    json.dump(vectors, f, indent=1)
    f.write("\n")
print("wrote %d vectors" % len(vectors))
sys.exit(0 if verify() else 1)
