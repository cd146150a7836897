'use strict';

// The official Azure IoT service SDK (azure-iothub) against the emulator's
// service REST API, driven by interop/https_test.go.
//
//   CATMSIM_SERVICE_CONNECTION_STRING  an iothubowner connection string
//   CATMSIM_NEW_DEVICE                 the device id to create
//   CATMSIM_METHOD_DEVICE              a connected device to invoke "reboot" on
//
// Trust comes from NODE_EXTRA_CA_CERTS. Events on stdout as JSON lines:
// created (with the keys the hub generated), got, twin_updated, method.

const { Registry, Client } = require('azure-iothub');

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

function fail(where, err) {
  emit('error', { where, message: err && err.message ? err.message : String(err), name: err && err.constructor && err.constructor.name });
  process.exit(1);
}

const cs = process.env.CATMSIM_SERVICE_CONNECTION_STRING;
const newDevice = process.env.CATMSIM_NEW_DEVICE;
const methodDevice = process.env.CATMSIM_METHOD_DEVICE;
if (!cs || !newDevice || !methodDevice) fail('configuration', new Error('environment incomplete'));

const registry = Registry.fromConnectionString(cs);
registry.create({ deviceId: newDevice, status: 'enabled' }, (err, dev) => {
  if (err) fail('create', err);
  emit('created', { deviceId: dev.deviceId, primaryKey: dev.authentication.symmetricKey.primaryKey, etag: dev.etag });
  registry.get(newDevice, (err, got) => {
    if (err) fail('get', err);
    emit('got', { deviceId: got.deviceId, status: got.status, connectionState: got.connectionState });
    registry.getTwin(newDevice, (err, twin) => {
      if (err) fail('getTwin', err);
      registry.updateTwin(newDevice, { tags: { site: 'plant-1' }, properties: { desired: { interval: 30 } } }, twin.etag, (err, updated) => {
        if (err) fail('updateTwin', err);
        emit('twin_updated', { desiredVersion: updated.properties.desired.$version, interval: updated.properties.desired.interval });
        registry.create({ deviceId: newDevice }, (err) => {
          emit('duplicate', { error: err ? err.constructor.name : null });
          const service = Client.fromConnectionString(cs);
          service.invokeDeviceMethod(methodDevice, { methodName: 'reboot', payload: { delay: 5 }, responseTimeoutInSeconds: 15 }, (err, result) => {
            if (err) fail('invokeDeviceMethod', err);
            emit('method', { status: result.status, payload: result.payload });
            service.invokeDeviceMethod(newDevice, { methodName: 'reboot', payload: null, responseTimeoutInSeconds: 5 }, (err) => {
              emit('offline', { error: err ? err.constructor.name : null, message: err ? err.message : null, status: err && err.response ? err.response.statusCode : null, body: err ? err.responseBody : null });
              process.exit(0);
            });
          });
        });
      });
    });
  });
});
