package amqpwire

import (
	"bytes"
	"testing"
)

// telemetryFrame is a typical device-to-cloud transfer: a transfer
// performative and a message of about 200 bytes, as an IoT Hub SDK sends it.
func telemetryFrame(b testing.TB) []byte {
	msg := &Message{
		Properties: &Properties{MessageID: "7b7e1b3c-9d2f-4a4e-8f4b-2a6c1d9e0f11", To: "/devices/fipy-0001/messages/events",
			ContentType: "application/json", ContentEncoding: "utf-8"},
		ApplicationProperties: strMap("temperatureAlert", "false"),
		Data:                  [][]byte{[]byte(`{"deviceId":"fipy-0001","temperature":21.5,"humidity":40,"seq":1234}`)},
	}
	payload, err := msg.Encode(nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := &Transfer{Handle: 0, DeliveryID: ptr(uint32(1234)), DeliveryTag: bytes.Repeat([]byte{7}, 16)}
	frame, err := AppendFrame(nil, FrameAMQP, 0, tr, payload)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

// BenchmarkDecodeTelemetryTransfer reads one frame and decodes its
// transfer and message, as the emulator does for every telemetry message.
func BenchmarkDecodeTelemetryTransfer(b *testing.B) {
	frame := telemetryFrame(b)
	r := bytes.NewReader(frame)
	fr := NewFrameReader(r, 65536)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		p, payload, err := f.Performative()
		if err != nil {
			b.Fatal(err)
		}
		if p.(*Transfer).DeliveryID == nil {
			b.Fatal("no delivery id")
		}
		if _, err := DecodeMessage(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTransferOnly decodes the performative alone into a reused
// value, which is all a byte classifier needs.
func BenchmarkDecodeTransferOnly(b *testing.B) {
	body := telemetryFrame(b)[FrameHeaderSize:]
	var t Transfer
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeTelemetryTransfer builds the same frame into a reused
// buffer, as a device or the hub sends it.
func BenchmarkEncodeTelemetryTransfer(b *testing.B) {
	msg := &Message{
		Properties:            &Properties{MessageID: "7b7e1b3c-9d2f-4a4e-8f4b-2a6c1d9e0f11", ContentType: "application/json"},
		ApplicationProperties: strMap("temperatureAlert", "false"),
		Data:                  [][]byte{[]byte(`{"deviceId":"fipy-0001","temperature":21.5,"humidity":40,"seq":1234}`)},
	}
	tr := &Transfer{Handle: 0, DeliveryID: ptr(uint32(1234)), DeliveryTag: bytes.Repeat([]byte{7}, 16)}
	var payload, frame []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if payload, err = msg.Encode(payload[:0]); err != nil {
			b.Fatal(err)
		}
		if frame, err = AppendFrame(frame[:0], FrameAMQP, 0, tr, payload); err != nil {
			b.Fatal(err)
		}
	}
}
