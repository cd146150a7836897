package reports

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// The fixed tables must have a slot for every layer, class, count and state
// the other packages define, or reports would drop them.
func TestTablesCoverTheirSources(t *testing.T) {
	for _, tt := range []struct {
		name      string
		have, src int
	}{
		{"layers", numLayers, len(network.Layers())},
		{"classes", numClasses, len(network.Classes())},
		{"counts", numCounts, len(metrics.Counts())},
		{"states", numStates, len(metrics.States())},
		{"radio states", numRadioStates, len(network.RadioStates())},
	} {
		if tt.have != tt.src {
			t.Errorf("%s: reports holds %d, the source lists %d", tt.name, tt.have, tt.src)
		}
	}
	if network.ConnReason(numReasons).String() != "invalid" || network.ConnReason(numReasons-1).String() == "invalid" {
		t.Errorf("connection reasons: reports holds %d", numReasons)
	}
}

// Writing a report and reading it back gives the same report, and the
// hand-laid-out JSON is the JSON encoding/json would write.
func TestJSONRoundTrip(t *testing.T) {
	r := fixtureReport(t)
	first := jsonOf(t, r)
	back := roundTrip(t, r)
	if again := jsonOf(t, back); !bytes.Equal(first, again) {
		t.Fatalf("report.json changes on a round trip\n%s", firstDiff(again, first))
	}
	var viaLayout, viaStd any
	if err := json.Unmarshal(first, &viaLayout); err != nil {
		t.Fatalf("report.json is not JSON: %v", err)
	}
	std, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(std, &viaStd); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(viaLayout)
	b, _ := json.Marshal(viaStd)
	if !bytes.Equal(a, b) {
		t.Fatalf("WriteJSON and json.Marshal disagree\n%s", firstDiff(a, b))
	}
}

func TestReadRefuses(t *testing.T) {
	good := string(jsonOf(t, fixtureReport(t)))
	tests := []struct {
		name, in, err string
	}{
		{"not JSON", "hello", "not a report.json"},
		{"no version", `{"meta":{}}`, "has no schema_version"},
		{"newer version", `{"schema_version": 2}`, "schema version 2; this sim reads version 1"},
		{"no duration", `{"schema_version": 1, "meta": {"shards": 1}}`, "duration_ns is 0"},
		{"unknown class", strings.Replace(good, `"telemetry":5779`, `"telemetryy":5779`, 1), `unknown class "telemetryy"`},
		{"unknown count", strings.Replace(good, `"d2c_sent":72`, `"d2c_sends":72`, 1), `unknown count "d2c_sends"`},
		{"bad threshold", strings.Replace(good, `"expr": "p(95) < 2s"`, `"expr": "p(95) < 2KB"`, 1), "d2c_latency is in seconds"},
		{"histogram digits", strings.Replace(good, `"digits":3`, `"digits":5`, 1), "5 significant digits"},
		{"histogram range", strings.Replace(good, `"highest":3600000000`, `"highest":9000000000000000000`, 1), "outside what reports hold"},
		{"histogram order", strings.Replace(good, `"counts":[[7425,1],[7472,1]`, `"counts":[[7472,1],[7425,1]`, 1), "not in ascending index order"},
		{"histogram index", strings.Replace(good, `"counts":[[7425,1]`, `"counts":[[99999999,1]`, 1), ""},
		{"shard out of range", strings.Replace(good, `"shard": 0,`, `"shard": 4,`, 1), "shard 4 is not one of the run's 1"},
		{"devices out of order", strings.Replace(good, `{"index":1,`, `{"index":0,`, 1), "not in ascending index order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == good {
				t.Fatal("the edit did not apply")
			}
			_, err := Read(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want it to contain %q", err, tt.err)
			}
		})
	}
}
