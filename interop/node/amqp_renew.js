'use strict';

// A device on the official Azure IoT device SDK over AMQP whose SAS tokens
// live only a few seconds. Over AMQP the SDK renews a token in-band: it puts
// the new token on $cbs on the same connection, and the hub extends the
// connection instead of severing it when the old token expires.
//
//   CATMSIM_CONNECTION_STRING  the device connection string
//   CATMSIM_CA_FILE            PEM file with the emulator's root certificate
//   CATMSIM_TOKEN_SECONDS      how long each token is valid
//   CATMSIM_TOKEN_MARGIN       how many seconds before expiry the SDK renews
//
// It prints {"event":"connected"} once open, {"event":"renewed"} each time the
// SDK makes a new token, and for each line "send ID" on stdin sends one
// message with message id ID and prints {"event":"sent","messageId":ID}. The
// end of stdin closes the client and prints {"event":"closed"}. Any failure
// prints {"event":"error"} and exits 1.

const readline = require('readline');
const { Client, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const { Amqp } = require('azure-iot-device-amqp');

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
  provider.on('newTokenAvailable', () => emit('renewed'));
  const client = Client.fromAuthenticationProvider(provider, Amqp);
  client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 });
  await client.setOptions({ ca: need('CATMSIM_CA_FILE') });
  client.on('error', (err) => emit('client_error', { message: err.message }));
  client.on('disconnect', (err) => emit('disconnect', { message: err && err.message ? err.message : '' }));

  await client.open();
  emit('connected');

  let chain = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd !== 'send') return;
    chain = chain.then(async () => {
      const msg = new Message('renewed over amqp');
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
