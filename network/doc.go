// Package network owns the modelled LTE-M link of every device — its profiles,
// radio and power-saving states, latency, bandwidth and loss — the dialer that
// carries a device's connections over it, the byte meters at four layers with
// the ledger that attributes bytes to operations, and the energy model.
//
// # Data path
//
//	device client (paho, go-amqp, net/http, coder/websocket)
//	      │  MQTT / AMQP / HTTP (/ WebSocket frames)
//	      ▼
//	Conn.Meter ─────────── protocol layer: plaintext counted, fed to the
//	      │                 connection's Classifier, which names each byte's class
//	      ▼
//	crypto/tls
//	      │  TLS records
//	      ▼
//	Conn (link model) ──── tls layer: ciphertext counted, records matched to the
//	      │                 classes of the plaintext they carry; ip layer:
//	      │                 headers, ACKs, SYN/FIN, retransmissions by formula;
//	      │                 delivery delayed by latency, serialisation, RRC,
//	      │                 paging, PSM and loss; radio time for energy
//	      ▼
//	kernel socket (default; external targets, capture check)
//	or internal/memnet (the emulator in the same process: no file descriptors)
//
// One [Link] per device holds the radio; a [Dialer] opens that device's
// connections; every byte lands in the device's [Ledger] under one [Layer],
// [Direction] and [Class]. The payload layer is filled by the protocol clients
// ([Ledger.AddPayload]): only they know where a body starts. The MQTT and AMQP
// clients count a telemetry body once the hub acknowledged it, the HTTPS ones
// once the request went out (reports/SCHEMA.md).
//
// # Time
//
// The model computes delivery times; it never sleeps in a goroutine of its
// own. Uplink bytes are handed to the underlying connection by at most one
// timer per connection when they are due; downlink bytes are held in the
// caller's own Read until they reach the device. A connection with nothing in
// flight has no goroutine and no running timer. Time comes from a [Clock],
// randomness (jitter, loss, paging phases) from the *rand.Rand the Link is
// given, so a seeded run repeats.
//
// # The ip formula
//
// The ip layer is what a carrier bills: the tls bytes plus the TCP/IP
// overhead of every modelled segment. With
//
//	IP  = 20 (IPv4) or 40 (IPv6)                 IP header
//	H   = IP + 20 TCP + 12 if TCP timestamps      header of an established segment
//	MSS = MTU − IP − 20 unless set               (clamped at the PGW)
//	P   = MSS − 12 if timestamps, else MSS       stream bytes per full segment
//
// the ip bytes of one direction are
//
//	ip = tls
//	   + Σ over bursts  ⌈burst / P⌉ · H                      data segments
//	   + Σ over losses  H + min(P, burst)                    retransmitted segments
//	   + pure ACKs · H
//	   + SYN, SYN-ACK, ACK and the FIN exchange
//
// A burst is one Write on the link going up (crypto/tls writes one record, or
// one handshake flight, per Write) and, going down, the bytes of one arrival
// from the underlying connection, where reads that fill the reader's buffer
// continue the same burst, so the count does not depend on buffer sizes.
//
// ACKs follow the delayed-ACK rule of RFC 1122 §4.2.3.2 (spec §3.1): the
// receiver acknowledges every second full-sized segment at once; anything
// else waits up to its delayed-ACK window (the device's DelayedACK, the
// server's PeerDelayedACK) and rides free on data it sends back within that
// window, else goes out as a pure ACK of H bytes. A window of zero
// acknowledges every segment at once.
//
// The handshake is a SYN of IP + 20 + SYNOptions bytes (+12 with timestamps),
// repeated once per SYN the model loses, a SYN-ACK of IP + 20 + SYNACKOptions
// (+12), and an ACK of H. The teardown is a FIN of H from the side that
// closes first, the other side's ACK and FIN (one segment of H if it has a
// delayed-ACK window to close in, two if it acknowledges at once), and a last
// ACK of H. Retransmitted segments count again; RSTs, window updates and
// keep-alive probes of TCP itself are not modelled.
//
// The formula is checked against a packet capture: TestCaptureMatchesModel
// runs a TLS session through the Dialer between two network namespaces joined
// by a veth pair with the profile's MTU, captures it with tshark, and requires
// the modelled ip bytes per direction to be within 3% of the captured IP
// bytes (for IPv4, IPv6, with timestamps and with delayed ACKs it matches to
// within a few segments).
//
// # Attribution to classes
//
// The tls layer is matched record by record to the plaintext classes the
// Classifier reports; a record's overhead goes to the class of its first
// plaintext byte, records without plaintext (handshake, alerts, tickets) to
// the connection's connect class. Connect bytes are charged to ClassReconnect
// or ClassTokenRenewal when the connection was opened for those reasons
// ([WithConnReason]; a device's connections after its first default to
// reconnect). ip bytes follow their tls bytes; a pure ACK goes to the class of
// the data it acknowledges; SYN and FIN to the connect class. The details are
// in attrib.go.
package network
