package reports

import (
	"bytes"
	"os"
	"testing"
)

// FuzzRead feeds report.json readers arbitrary bytes: no panic, bounded
// work, and whatever reads must write and read back to the same report.
func FuzzRead(f *testing.F) {
	if b, err := os.ReadFile("testdata/fixture/report.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"schema_version":1,"meta":{"shards":1,"duration_ns":60000000000},"devices":[{"index":0,"elapsed_ns":60000000000,"bytes":{"ip":{"up":{"telemetry":100}}},"counts":{"d2c_sent":1}}]}`))
	f.Add([]byte(`{"schema_version":1,"meta":{"shards":2,"merged_shards":[0,1],"duration_ns":1},"latency":[{"group":"g","protocol":"mqtt","latency":"d2c","histogram":{"lowest":1,"highest":3600000000,"digits":3,"counts":[[5,2],[900,1]]}}],"timeline":{"bucket_ns":1000000000,"points":[{"states":{"connected":1}}]}}`))
	f.Add([]byte(`{"schema_version":1,"meta":{"shards":1,"duration_ns":1,"thresholds":[{"key":"d2c_latency{group:g}","expr":"p(99) < 1s"}],"profiles":[{"name":"p","data_plan_bytes_per_month":1,"billing":{"increment_bytes":1024,"per":"message"}}]},"devices":[{"index":3,"profile":"p","elapsed_ns":5,"energy":{"elapsed_ns":1,"charge_mah":1e300}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var first bytes.Buffer
		if err := WriteJSON(&first, r); err != nil {
			t.Fatalf("a report that read cannot be written: %v", err)
		}
		back, err := Read(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("a written report does not read back: %v\n%s", err, first.Bytes())
		}
		var second bytes.Buffer
		if err := WriteJSON(&second, back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("round trip changed the report\n%s", firstDiff(second.Bytes(), first.Bytes()))
		}
		for _, w := range writers[1:] {
			if err := w.Write(&bytes.Buffer{}, r); err != nil {
				t.Fatalf("%s: %v", w.Name, err)
			}
		}
	})
}
