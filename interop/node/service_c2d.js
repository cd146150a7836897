'use strict';

// The official Azure IoT service SDK (azure-iothub) over AMQP: it sends
// cloud-to-device messages and reads their delivery feedback, driven by the
// Go interop tests in the parent directory.
//
//   CATMSIM_AMQP_HOST     host:port the SDK's socket goes to (127.0.0.1:PORT);
//                         the SDK dials amqps://{host}, and the token names the
//                         hub
//   CATMSIM_SERVICE_SAS   a service SAS token (sr = the hub's host name)
//   NODE_EXTRA_CA_CERTS   the emulator's root certificate: the service
//                         transport takes no CA option
//
// Each line on stdin is a JSON command {"device", "messageId", "body", "ack",
// "properties": {...}}; each is sent in turn and answered with
// {"event":"sent","messageId"} or {"event":"send_failed","messageId",
// "name","message"} (the SDK's error class). It prints
// {"event":"connected"} once open, {"event":"feedback","records":[...]} for
// each feedback batch, and {"event":"closed"} once stdin ends. Any other
// failure prints {"event":"error"} and exits 1.

const readline = require('readline');
const { Client, Amqp } = require('azure-iothub');
const { Message } = require('azure-iot-common');

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

async function main() {
  const client = new Client(new Amqp({ host: need('CATMSIM_AMQP_HOST'), sharedAccessSignature: need('CATMSIM_SERVICE_SAS') }));
  client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 });
  await client.open();
  emit('connected');

  client.getFeedbackReceiver((err, receiver) => {
    if (err) fail('feedback receiver', err);
    receiver.on('error', (e) => fail('feedback', e));
    receiver.on('message', (msg) => {
      emit('feedback', { records: JSON.parse(msg.data.toString('utf8')), contentType: msg.transportObj.content_type });
      receiver.complete(msg, () => {});
    });
    emit('feedback_ready');
  });

  let chain = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const cmd = JSON.parse(line);
    chain = chain.then(async () => {
      const msg = new Message(cmd.body);
      msg.messageId = cmd.messageId;
      if (cmd.ack) msg.ack = cmd.ack;
      for (const [k, v] of Object.entries(cmd.properties || {})) msg.properties.add(k, v);
      try {
        await client.send(cmd.device, msg);
        emit('sent', { messageId: cmd.messageId });
      } catch (e) {
        emit('send_failed', { messageId: cmd.messageId, name: e.constructor.name, message: e.message });
      }
    });
  });
  lines.on('close', () => {
    chain.then(() => client.close()).then(() => {
      emit('closed');
      process.exit(0);
    }).catch((err) => fail('close', err));
  });
}

main().catch((err) => fail('run', err));
