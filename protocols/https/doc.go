// Package https owns the device side of IoT Hub's HTTPS (REST) interface:
// sending telemetry one message or one JSON batch at a time, and polling for
// cloud-to-device messages, which the device then completes, rejects or
// abandons. Each request carries a SAS token in its Authorization header,
// signed anew when the current one nears expiry, or the device's client
// certificate.
//
// Connections are kept alive by default; NewConnectionPerRequest opens a new
// TLS connection for every request, as MicroPython's urequests does, and the
// ledger counts each one's set-up as connect bytes. Every connection is
// dialled through package network; the client adds the payload layer:
// telemetry bodies up and C2D bodies down.
package https
