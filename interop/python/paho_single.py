"""Publish one device-to-cloud message the way the well-known IoT Hub Paho sample does.

The interop tests run it under Debian's /usr/bin/python3 with python3-paho-mqtt
(paho-mqtt 1.6): paho.mqtt.publish.single at QoS 1 over TLS 1.2, MQTT 3.1.1, the
device id as client id, "{hub}/{device}/?api-version=2021-04-12" as username and
a SAS token as password. The only departure from the sample is that hostname and
port come from the command line, so that the message goes to an emulator on a
loopback port while the username keeps the hub's name.

publish.single raises when the broker refuses the connection, so a refusal
shows as a non-zero exit status with the CONNACK reason on stderr.
"""

import argparse
import ssl

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hostname", required=True, help="where to connect, e.g. 127.0.0.1")
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--hub", required=True, help="the hub's HostName, for the username")
    p.add_argument("--device", required=True)
    p.add_argument("--sas-token", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--payload", required=True)
    a = p.parse_args()

    publish.single(
        a.topic,
        payload=a.payload,
        qos=1,
        hostname=a.hostname,
        port=a.port,
        client_id=a.device,
        auth={
            "username": "{}/{}/?api-version=2021-04-12".format(a.hub, a.device),
            "password": a.sas_token,
        },
        tls={"ca_certs": a.ca_file, "tls_version": ssl.PROTOCOL_TLSv1_2},
        protocol=mqtt.MQTTv311,
    )


if __name__ == "__main__":
    main()
