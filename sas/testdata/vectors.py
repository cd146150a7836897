#!/usr/bin/env python3
"""Independent SAS vectors for package sas.

Written only with Python's standard library, the way the Azure IoT Python SDK
(sastoken.py) and the IoT Hub documentation's Python sample sign tokens, plus the
mistakes seen in public device code. Run once; its output, vectors.json, is
committed and asserted by sas_vectors_test.go. Re-run only to add cases:

    python3 testdata/vectors.py > testdata/vectors.json
"""
import base64
import hashlib
import hmac
import json
from urllib.parse import quote, quote_plus

EPOCH_2000 = 946684800
NOW = 1795000000  # 2026-11-18T10:13:20Z, the verifier's clock for every case

# Keys chosen so their base64 text contains '+', '/' and '=' padding.
DEVICE_KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(0, 26))).decode()
POLICY_KEY = base64.b64encode(hashlib.sha256(b"policy").digest()).decode()
GROUP_KEY = base64.b64encode(hashlib.sha256(b"group").digest()).decode()
assert "+" in DEVICE_KEY or "/" in DEVICE_KEY


def mac(key_bytes, sr, se):
    d = hmac.new(key_bytes, (sr + "\n" + str(se)).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(d).decode()


def token(sr_text, sig_b64, se, skn=None, sig_encoder=lambda s: quote(s, safe="")):
    t = "SharedAccessSignature sr={}&sig={}&se={}".format(sr_text, sig_encoder(sig_b64), se)
    if skn:
        t += "&skn=" + skn
    return t


def sdk(uri, key, se, skn=None):
    """azure-iot-device sastoken.py: quote(uri, safe=''), sig quoted likewise."""
    sr = quote(uri, safe="")
    return token(sr, mac(base64.b64decode(key), sr, se), se, skn)


cases = []


def case(name, tok, key, resource, expect, note, sign=None):
    c = {"name": name, "token": tok, "key": key, "resource": resource,
         "now": NOW, "expect": expect, "note": note}
    if sign:
        c["sign"] = sign
    cases.append(c)


host = "myhub.azure-devices.net"
se = NOW + 3600

uri = host + "/devices/dev1"
case("device", sdk(uri, DEVICE_KEY, se), DEVICE_KEY, uri, "ok",
     "device key, no skn, Python SDK encoding",
     sign={"resource": uri, "expiry": se})

uri = host + "/devices/dev1/modules/mod-a"
case("module", sdk(uri, DEVICE_KEY, se), DEVICE_KEY, uri, "ok",
     "module key", sign={"resource": uri, "expiry": se})

case("policy", sdk(host, POLICY_KEY, se, "iothubowner"), POLICY_KEY, host + "/devices/any", "ok",
     "hub-level policy token (sr=host) covers any device",
     sign={"resource": host, "expiry": se, "keyName": "iothubowner"})

odd = "Pump-07.b+c:1@x$y'z(1)*!,="
uri = host + "/devices/" + odd
case("device_id_special_chars", sdk(uri, DEVICE_KEY, se), DEVICE_KEY, uri, "ok",
     "every character IoT Hub allows in a device id besides letters and digits",
     sign={"resource": uri, "expiry": se})

upper = "MyHub.Azure-Devices.NET/devices/Dev1"
case("upper_case_host", sdk(upper, DEVICE_KEY, se), DEVICE_KEY, host + "/devices/Dev1", "ok",
     "host compared case-insensitively; nothing lower-cased when signing",
     sign={"resource": upper, "expiry": se})

case("device_id_case_differs", sdk(host + "/devices/Dev1", DEVICE_KEY, se), DEVICE_KEY,
     host + "/devices/dev1", "wrong_resource", "device ids are case-sensitive")

uri = host + "/devices/dev1"
# quote() with its default safe='/' leaves the slashes unencoded.
sr = quote(uri)
case("quote_default_safe", token(sr, mac(base64.b64decode(DEVICE_KEY), sr, se), se),
     DEVICE_KEY, uri, "ok", "sr with unencoded '/', signed over the same text")

# The IoT Hub documentation's Python sample uses quote_plus.
sr = quote_plus(uri)
case("docs_quote_plus", token(sr, mac(base64.b64decode(DEVICE_KEY), sr, se), se, sig_encoder=quote_plus),
     DEVICE_KEY, uri, "ok", "documentation sample: quote_plus for sr and sig",
     sign={"resource": uri, "expiry": se})

sr = quote(uri, safe="").replace("%2F", "%2f")
case("lower_case_escapes", token(sr, mac(base64.b64decode(DEVICE_KEY), sr, se), se),
     DEVICE_KEY, uri, "ok", "old tools write %2f; the MAC covers the raw text")

case("unencoded_sr", token(uri, mac(base64.b64decode(DEVICE_KEY), uri, se), se),
     DEVICE_KEY, uri, "ok", "hand-written clients that never encode sr")

sr = quote(uri, safe="")
case("sig_not_encoded", token(sr, mac(base64.b64decode(DEVICE_KEY), sr, se), se, sig_encoder=lambda s: s),
     DEVICE_KEY, uri, "ok", "sig sent raw with + / =; '+' must not become a space")

case("key_as_text", token(sr, mac(DEVICE_KEY.encode(), sr, se), se), DEVICE_KEY, uri,
     "bad_signature", "HMAC keyed with the base64 text instead of the decoded key")

case("signed_decoded_sent_encoded", token(sr, mac(base64.b64decode(DEVICE_KEY), uri, se), se),
     DEVICE_KEY, uri, "bad_signature", "signed the decoded resource, sent the encoded one")

other_key = base64.b64encode(b"another key of 32 bytes length!!").decode()
case("wrong_key", sdk(uri, other_key, se), DEVICE_KEY, uri, "bad_signature", "signed with another key")

# MicroPython: time.time() counts from 2000-01-01 on many ports.
device_clock = NOW - EPOCH_2000
se_bug = device_clock + 3600
case("micropython_epoch_2000_bug", sdk(uri, DEVICE_KEY, se_bug), DEVICE_KEY, uri, "expired",
     "se computed from time.time() on an epoch-2000 port: 30 years in the past")
se_fixed = device_clock + EPOCH_2000 + 3600
case("micropython_epoch_2000_fixed", sdk(uri, DEVICE_KEY, se_fixed), DEVICE_KEY, uri, "ok",
     "the same device adding 946684800", sign={"resource": uri, "expiry": se_fixed})

case("expired_one_second", sdk(uri, DEVICE_KEY, NOW - 1), DEVICE_KEY, uri, "expired", "now > se")
case("expires_now", sdk(uri, DEVICE_KEY, NOW), DEVICE_KEY, uri, "ok", "now == se is still valid")

case("other_device", sdk(host + "/devices/dev2", DEVICE_KEY, se), DEVICE_KEY, uri, "wrong_resource",
     "a token for another device")
case("segment_prefix_not_string_prefix", sdk(host + "/devices/dev", DEVICE_KEY, se), DEVICE_KEY,
     host + "/devices/dev1", "wrong_resource", "/devices/dev does not cover /devices/dev1")
case("devices_scope_policy", sdk(host + "/devices", POLICY_KEY, se, "device"), POLICY_KEY,
     host + "/devices/dev1", "ok", "policy token scoped to {host}/devices covers every device")

case("malformed_no_prefix", "sr={}&sig=abc&se={}".format(quote(uri, safe=""), se), DEVICE_KEY, uri,
     "malformed", "the SharedAccessSignature prefix is missing")
case("malformed_no_se", "SharedAccessSignature sr={}&sig=abc".format(quote(uri, safe="")), DEVICE_KEY,
     uri, "malformed", "se is missing")

eh_uri = "https://myns.servicebus.windows.net/telemetry"
case("event_hubs", sdk(eh_uri, POLICY_KEY, se, "send"), POLICY_KEY, eh_uri, "ok",
     "Event Hubs REST: https resource, skn always present",
     sign={"resource": eh_uri, "expiry": se, "keyName": "send"})

derived = []
for reg in ["dev1", "sensor-0001", "Pump-07"]:
    d = hmac.new(base64.b64decode(GROUP_KEY), reg.encode("utf-8"), hashlib.sha256).digest()
    derived.append({"groupKey": GROUP_KEY, "registrationId": reg, "deviceKey": base64.b64encode(d).decode()})

print(json.dumps({"generator": "testdata/vectors.py (Python standard library only)",
                  "cases": cases, "derivedKeys": derived}, indent=2))
