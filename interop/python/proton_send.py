"""Send device-to-cloud messages over AMQP with Apache Qpid Proton, the way IoT Hub's documentation does for third-party clients.

The interop tests run it under Debian's /usr/bin/python3 with python3-qpid-proton:
a BlockingConnection over TLS with SASL PLAIN, the username {deviceId}@sas.{hubName}
and a SAS token as the password (D-AMQP), then a sender on
/devices/{deviceId}/messages/events. Each message waits for the hub's outcome;
a rejection, or a refused SASL exchange, is a non-zero exit status with the reason
on stderr. The only departure from the documentation is that host and port come
from the command line, so that the messages go to an emulator on a loopback port
while the TLS name and the username keep the hub's name.
"""

import argparse
import sys

from proton import Message, SSLDomain
from proton.utils import BlockingConnection


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hostname", required=True, help="where to connect, e.g. 127.0.0.1")
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--hub", required=True, help="the hub's HostName: TLS name and SASL username")
    p.add_argument("--device", required=True)
    p.add_argument("--sas-token", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--body", action="append", required=True, help="one message per --body")
    p.add_argument("--message-id", default=None)
    p.add_argument("--property", action="append", default=[], help="name=value application property")
    a = p.parse_args()

    ssl = SSLDomain(SSLDomain.MODE_CLIENT)
    ssl.set_trusted_ca_db(a.ca_file)
    ssl.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    hub_name = a.hub.split(".")[0]
    conn = BlockingConnection(
        "amqps://%s:%d" % (a.hostname, a.port),
        timeout=20,
        ssl_domain=ssl,
        sasl_enabled=True,
        allowed_mechs="PLAIN",
        user="%s@sas.%s" % (a.device, hub_name),
        password=a.sas_token,
        virtual_host=a.hub,
    )
    try:
        sender = conn.create_sender("/devices/%s/messages/events" % a.device)
        props = dict(kv.split("=", 1) for kv in a.property)
        for i, body in enumerate(a.body):
            msg = Message(body=body, properties=props, content_type="text/plain")
            if a.message_id:
                msg.id = "%s-%d" % (a.message_id, i)
            sender.send(msg)
            print("sent %s" % msg.id)
    finally:
        conn.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test reads the reason from stderr
        print("%s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
