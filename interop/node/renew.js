'use strict';

// A device on the official Azure IoT device SDK whose SAS tokens live only a few
// seconds, so that the SDK renews them while the Go interop test watches the
// hub. Over MQTT a token cannot be renewed in-band: the SDK disconnects and
// connects again with the new token, and the hub severs a connection whose
// token expires.
//
//   CATMSIM_CONNECTION_STRING  the device connection string
//   CATMSIM_CA_FILE            PEM file with the emulator's root certificate
//   CATMSIM_TOKEN_SECONDS      how long each token is valid
//   CATMSIM_TOKEN_MARGIN       how many seconds before expiry the SDK renews
//
// It prints {"event":"connected"} once open. Each line "send ID" on stdin sends
// one message with message id ID and prints {"event":"sent","messageId":ID}; the
// end of stdin closes the client and prints {"event":"closed"}. Any failure
// prints {"event":"error"} and exits 1.

const readline = require('readline');
const { Client, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

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
  const provider = SharedAccessKeyAuthenticationProvider.fromConnectionString(
    need('CATMSIM_CONNECTION_STRING'),
    Number(need('CATMSIM_TOKEN_SECONDS')),
    Number(need('CATMSIM_TOKEN_MARGIN')));
  const client = Client.fromAuthenticationProvider(provider, Mqtt);
  client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 });
  await client.setOptions({ ca: need('CATMSIM_CA_FILE') });
  client.on('error', (err) => emit('client_error', { message: err.message }));
  client.on('disconnect', (err) => emit('disconnect', { message: err && err.message ? err.message : '' }));

  await client.open();
  emit('connected');

  // Lines are handled one at a time, in order.
  let chain = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd !== 'send') return;
    chain = chain.then(async () => {
      const msg = new Message('renewed');
      msg.messageId = arg;
      await client.sendEvent(msg);
      emit('sent', { messageId: arg });
    }).catch((err) => fail('send', err));
  });
  lines.on('close', () => {
    chain.then(() => client.close()).then(() => {
      emit('closed');
      process.exit(0);
    }).catch((err) => fail('close', err));
  });
}

main().catch((err) => fail('run', err));
