'use strict';

// A device on the official Azure IoT device SDK's HTTP transport
// (azure-iot-device-http), driven by interop/https_test.go.
//
//   CATMSIM_CONNECTION_STRING  the device connection string
//   CATMSIM_CA_FILE            PEM file with the emulator's root certificate
//
// It sends one event with properties and a batch of two, then polls for
// cloud-to-device messages once a second and completes each. Events on stdout
// as JSON lines: sent, batch_sent, c2d; closed when stdin ends.

const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

function fail(where, err) {
  emit('error', { where, message: err && err.message ? err.message : String(err) });
  process.exit(1);
}

const cs = process.env.CATMSIM_CONNECTION_STRING;
const ca = process.env.CATMSIM_CA_FILE;
if (!cs || !ca) fail('configuration', new Error('CATMSIM_CONNECTION_STRING and CATMSIM_CA_FILE must be set'));

const client = Client.fromConnectionString(cs, Http);
client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 });

function message(body, id, props) {
  const m = new Message(body);
  if (id) m.messageId = id;
  for (const [k, v] of props || []) m.properties.add(k, v);
  return m;
}

client.on('message', (msg) => {
  const props = {};
  for (let i = 0; i < msg.properties.count(); i++) {
    const p = msg.properties.getItem(i);
    props[p.key] = p.value;
  }
  client.complete(msg, (err) => {
    if (err) fail('complete', err);
    emit('c2d', { messageId: msg.messageId, body: msg.data.toString(), properties: props });
  });
});

client.setOptions({ ca: fs.readFileSync(ca, 'utf8'), http: { receivePolicy: { interval: 1 } } }, (err) => {
  if (err) fail('setOptions', err);
  client.open((err) => {
    if (err) fail('open', err);
    client.sendEvent(message('{"t":20.5}', 'http-1', [['site', 'plant 1/line 2']]), (err) => {
      if (err) fail('sendEvent', err);
      emit('sent');
      client.sendEventBatch([message('b1', 'http-b1', [['n', '1']]), message('b2', 'http-b2', [['n', '2']])], (err) => {
        if (err) fail('sendEventBatch', err);
        emit('batch_sent');
      });
    });
  });
});

process.stdin.resume();
process.stdin.on('end', () => {
  client.close(() => {
    emit('closed');
    process.exit(0);
  });
});
