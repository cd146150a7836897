// Package interop owns the proof that the IoT Hub emulator (package hub) is what
// real clients nobody here wrote take for IoT Hub: its tests start the emulator
// on loopback, point the official Azure IoT Node device SDK, Eclipse Paho for
// Python, mosquitto_pub and MQTT.js's command line at it, and then check the
// emulator's message store and twins, never just a client's exit code.
//
// The package has no code of its own beyond this comment. Its clients live
// beside it: node/ holds the Node programs and their pinned npm packages
// (package.json and package-lock.json; run `npm ci` there), python/ the Python
// scripts, which run under Debian's /usr/bin/python3 with python3-paho-mqtt. A
// test whose client is missing skips and says what to install.
//
// How each client is pointed at a hub on a free loopback port:
//
//   - Node SDK over MQTT: the connection string's GatewayHostName is
//     "127.0.0.1:PORT"; the SDK dials mqtts://{GatewayHostName} and keeps
//     HostName for the SAS token and the MQTT username.
//   - Node SDK over MQTT-WS: MqttWs always builds
//     wss://{GatewayHostName or HostName}:443/$iothub/websocket, so the port
//     cannot be given in the connection string; the SDK's mqtt.webSocketAgent
//     option carries an HTTPS agent that opens its connections to 127.0.0.1:PORT.
//     A second test runs both transports unchanged against the standard ports
//     8883 and 443 when they are free.
//   - Paho, mosquitto_pub and MQTT.js take a host and a port.
//
// Every client trusts the emulator's root certificate through its own CA option.
package interop
