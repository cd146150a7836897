package amqpwire

import "testing"

// The first transfer of a delivery carries its message-format even when it
// is 0 (spec §2.7.5: it may be omitted only on continuation transfers), as
// go-amqp insists; a continuation leaves it out.
func TestTransferMessageFormatOnFirstFrame(t *testing.T) {
	id := uint32(5)
	tests := []struct {
		name       string
		tr         Transfer
		wantFields int
	}{
		{"first transfer with format 0", Transfer{Handle: 1, DeliveryID: &id, DeliveryTag: []byte{1}}, 4},
		{"first transfer with the batch format", Transfer{Handle: 1, DeliveryID: &id, DeliveryTag: []byte{1}, MessageFormat: MessageFormatBatch}, 4},
		{"continuation", Transfer{Handle: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.tr.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			// described list: 0x00 0x53 0x14, then list8 (0xc0) size count.
			if b[3] != 0xc0 || int(b[5]) != tt.wantFields {
				t.Fatalf("encoded % x: want a list of %d fields", b, tt.wantFields)
			}
			var back Transfer
			if _, err := back.Decode(b); err != nil || back.MessageFormat != tt.tr.MessageFormat {
				t.Fatalf("decoded format %#x, %v", back.MessageFormat, err)
			}
		})
	}
}
