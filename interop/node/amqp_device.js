'use strict';

// A device built on the official Azure IoT device SDK over AMQP
// (azure-iot-device with azure-iot-device-amqp), driven by the Go interop
// tests in the parent directory. It does what device.js does over MQTT and
// reports the same events, as JSON lines on stdout.
//
//   CATMSIM_CONNECTION_STRING  the device connection string (HostName, DeviceId,
//                              SharedAccessKey, GatewayHostName)
//   CATMSIM_TRANSPORT          amqp or amqp-ws
//   CATMSIM_CA_FILE            PEM file with the emulator's root certificate
//   CATMSIM_WS_PORT            optional: WebSocket connections go to
//                              127.0.0.1:PORT through the SDK's
//                              amqp.webSocketAgent option, because AmqpWs always
//                              builds wss://{host}:443/$iothub/websocket
//   CATMSIM_PLAN               JSON: {"telemetry": {"body", "messageId",
//                              "contentType", "contentEncoding",
//                              "properties": [[name, value], ...]},
//                              "reported": {...}, "method": "name",
//                              "methodStatus": 200}
//
// Events, in order: connected, sent, twin, desired_subscribed, reported, ready;
// then, as the hub acts: desired, c2d, c2d_completed, method, method_answered;
// and closed once stdin ends. Any failure prints {"event":"error"} and exits 1.

const fs = require('fs');
const https = require('https');
const { Client, Message } = require('azure-iot-device');
const { Amqp, AmqpWs } = require('azure-iot-device-amqp');

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

function fail(where, err) {
  emit('error', { where, message: err && err.message ? err.message : String(err) });
  process.exit(1);
}

function need(name) {
  const v = process.env[name];
  if (!v) fail('configuration', new Error(name + ' is not set'));
  return v;
}

// The SDK retries failed operations for minutes by default; a test wants the
// first failure.
const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => 0 };

// LoopbackAgent opens every TLS connection to 127.0.0.1:port, whatever host
// and port the URL names; the TLS handshake and the WebSocket upgrade are the
// SDK's own.
class LoopbackAgent extends https.Agent {
  constructor(port, options) {
    super(options);
    this.loopbackPort = port;
  }

  createConnection(options, callback) {
    return super.createConnection(Object.assign({}, options, { host: '127.0.0.1', port: this.loopbackPort }), callback);
  }
}

function propertiesOf(msg) {
  const out = {};
  for (let i = 0; i < msg.properties.count(); i++) {
    const p = msg.properties.getItem(i);
    out[p.key] = p.value;
  }
  return out;
}

function plain(v) {
  return JSON.parse(JSON.stringify(v));
}

async function main() {
  const transport = need('CATMSIM_TRANSPORT');
  const caFile = need('CATMSIM_CA_FILE');
  const plan = JSON.parse(need('CATMSIM_PLAN'));
  const Transport = { amqp: Amqp, 'amqp-ws': AmqpWs }[transport];
  if (!Transport) fail('configuration', new Error('CATMSIM_TRANSPORT must be amqp or amqp-ws, not ' + transport));

  const client = Client.fromConnectionString(need('CATMSIM_CONNECTION_STRING'), Transport);
  client.setRetryPolicy(noRetry);
  // ca is a file name: the SDK reads it.
  const options = { ca: caFile };
  if (process.env.CATMSIM_WS_PORT) {
    options.amqp = { webSocketAgent: new LoopbackAgent(Number(process.env.CATMSIM_WS_PORT), { ca: fs.readFileSync(caFile) }) };
  }
  await client.setOptions(options);
  client.on('error', (err) => emit('client_error', { message: err.message }));
  client.on('disconnect', (err) => emit('disconnect', { message: err && err.message ? err.message : '' }));

  client.on('message', (msg) => {
    emit('c2d', {
      messageId: msg.messageId,
      to: msg.to,
      correlationId: msg.correlationId,
      ack: msg.ack,
      data: msg.data.toString('utf8'),
      properties: propertiesOf(msg),
    });
    client.complete(msg, (err) => {
      if (err) fail('complete', err);
      emit('c2d_completed', { messageId: msg.messageId });
    });
  });

  client.onDeviceMethod(plan.method, (request, response) => {
    emit('method', { name: request.methodName, payload: request.payload === undefined ? null : request.payload });
    const answer = { received: request.payload === undefined ? null : request.payload, by: 'azure-iot-device-amqp' };
    response.send(plan.methodStatus, answer, (err) => {
      if (err) fail('method response', err);
      emit('method_answered', { name: request.methodName });
    });
  });

  await client.open();
  emit('connected');

  const t = plan.telemetry;
  const msg = new Message(t.body);
  msg.messageId = t.messageId;
  msg.contentType = t.contentType;
  msg.contentEncoding = t.contentEncoding;
  for (const [k, v] of t.properties || []) msg.properties.add(k, v);
  await client.sendEvent(msg);
  emit('sent', { messageId: t.messageId });

  const twin = await client.getTwin();
  emit('twin', { desired: plain(twin.properties.desired), reported: plain(twin.properties.reported) });

  twin.on('properties.desired', (patch) => emit('desired', { patch: plain(patch) }));
  await new Promise((resolve, reject) => twin.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve())));
  emit('desired_subscribed');

  await new Promise((resolve, reject) => twin.properties.reported.update(plan.reported, (err) => (err ? reject(err) : resolve())));
  emit('reported');

  emit('ready');

  process.stdin.resume();
  process.stdin.on('end', async () => {
    try {
      await client.close();
    } catch (err) {
      fail('close', err);
    }
    emit('closed');
    process.exit(0);
  });
}

main().catch((err) => fail('run', err));
