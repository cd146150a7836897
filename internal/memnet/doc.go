// Package memnet owns the in-memory transport between devices and the hub emulator
// when both run in one process: a listener that hands out connections, and buffered
// connection pairs that behave like TCP sockets without using a file descriptor.
//
// A process may hold a limited number of open files, and every loopback socket pair
// costs two of them; memnet is what lets one process simulate more devices than
// that. The TLS and protocol bytes on a memnet connection are the same as on a
// kernel socket, so byte accounting does not change with the transport.
//
// Unlike [net.Pipe], a memnet connection is buffered: a Write returns once its bytes
// are queued for the peer, so two peers that both write first (TLS, MQTT, AMQP) do
// not deadlock. The queue per direction is bounded (256 KiB); a writer blocks when
// it is full, exactly as a socket with a full send buffer does. Connections support
// read and write deadlines, CloseWrite (the peer reads io.EOF after the queued
// bytes) and CloseRead, which is what crypto/tls, net/http, paho and go-amqp need.
//
// Nothing runs in the background: no goroutine per connection or listener. Queued
// bytes live in pooled 16 KiB chunks that are returned as soon as they are read, so
// an idle connection holds no buffer at all.
package memnet
