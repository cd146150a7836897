// Package classify owns the stream classifiers of the byte ledger: decoders
// that read one connection's plaintext protocol stream, MQTT 3.1.1, AMQP 1.0,
// HTTP/1.1 or any of them inside WebSocket frames, and say which operation
// class (connect, telemetry, keepalive, c2d, twin, method, token_renewal,
// other) every byte belongs to. Each implements [network.Classifier].
//
//	meter (protocol layer) ──Classify(dir, p, attribute)──> MQTT | AMQP | HTTP
//	                                                        WebSocket ──payload──> MQTT | AMQP
//
// Classes come from the stream itself, never from timing: MQTT packet types
// and topics, AMQP performatives and the addresses of the links they travel
// on, HTTP request lines (a response takes the class of its request). The
// IoT Hub tables follow spec/iothub-protocol.md §2.5, §3.2 and §4; Rule adds
// topics or paths of a generic broker or web service. A classifier reports
// only [network.ClassConnect] for set-up and tear-down; the meter turns that
// into reconnect or token_renewal for connections opened for those reasons.
// The one exception is AMQP: a CBS put-token after the first one renews a
// token on a live connection, so it is token_renewal here.
//
// # Chunks, order and held bytes
//
// Bytes arrive in chunks of any size: a packet may be split over calls and a
// call may carry several packets. Every byte is attributed exactly once and in
// stream order, and the classes do not depend on where the chunks were cut.
// To keep that promise a classifier holds back the bytes of a packet whose
// class it cannot know yet (an MQTT fixed header and topic, an AMQP frame
// header and performative, an HTTP request line, a WebSocket frame header
// whose payload's class the inner protocol has not decided) and attributes
// them in the call that decides. So within one call the attributed bytes may
// differ from len(p); over a connection they add up. When a connection ends
// in the middle of such a packet, Flush (see [Flusher]) attributes what is
// held as other, and the ledger balances.
//
// A classifier is not safe for concurrent use; the meter calls it for one
// direction at a time. Malformed input never panics: the packet, or when the
// framing itself is lost the rest of that direction, is other.
//
// # Memory per connection
//
//	MQTT       360 B, with a 32-entry packet-id table per direction, plus a
//	           buffer per direction as long as the longest topic seen (MQTT
//	           caps topics at 64 KiB)
//	AMQP       1.5 KiB, with tables of 32 links, 64 unsettled deliveries and
//	           16 sessions per direction, plus a buffer per direction as long as
//	           the largest performative seen (at most 64 KiB; a transfer needs
//	           about 30 B, an attach a few hundred)
//	HTTP       370 B plus a line buffer per direction as long as the longest
//	           head line seen (at most 2 KiB)
//	WebSocket  1.5 KiB, 1 KiB of it the unmasking buffer, plus the upgrade's
//	           line buffers (at most 2 KiB each), at most 64 queued frame
//	           segments per direction, and the inner classifier
//
// No classifier allocates per call once its buffers have grown to fit the
// stream (see the benchmarks); none starts a goroutine.
//
// # Memory of the stream
//
// What a classifier remembers is bounded, so some state is forgotten on
// purpose: an MQTT acknowledgement for one of more than 32 publishes in flight
// in one direction, an AMQP transfer on one of more than 32 links, or a
// disposition for one of more than 64 unsettled deliveries, is other. An AMQP
// frame over 1 MiB is other (IoT Hub clients use 64 KiB frames); so is a
// WebSocket text frame or a compressed (RSV1) frame.
package classify
