package firmware_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// TestHostFunctions drives every host function through testdata/echo.wasm,
// which passes what it is given straight back and reports each result code.
func TestHostFunctions(t *testing.T) {
	ctx := context.Background()
	m := compile(t, "testdata/echo.wasm", firmware.Options{})
	big := `{"a":"` + strings.Repeat("x", 130<<10) + `"}`

	tests := []struct {
		name   string
		send   firmware.Code
		do     func(in *firmware.Instance) (string, error)
		want   []string
		result string
	}{
		{
			name: "init: method_response outside a method, a long log line cut",
			do:   func(in *firmware.Instance) (string, error) { return "", in.Init(ctx) },
			want: []string{"code invalid", "log WARN " + strings.Repeat("\x00", firmware.MaxLogBytes)},
		},
		{
			name: "clock and timer",
			do:   func(in *firmware.Instance) (string, error) { return "", in.OnTimer(ctx) },
			want: []string{"timer 1.234s", "code ok"},
		},
		{
			name: "method: JSON object answered and reported",
			do:   methodDo(ctx, `{"a":1}`),
			want: []string{"code ok", `report {"a":1}`, "code ok"}, result: `200 {"a":1}`,
		},
		{
			name: "method: an array is an answer but not a patch",
			do:   methodDo(ctx, `[1]`),
			want: []string{"code ok", "code invalid"}, result: `200 [1]`,
		},
		{
			name: "method: not JSON",
			do:   methodDo(ctx, `nope`),
			want: []string{"code invalid", "code invalid"}, result: `200 `,
		},
		{
			name: "method: no payload",
			do:   methodDo(ctx, ``),
			want: []string{"code invalid", "code invalid"}, result: `200 `,
		},
		{
			name: "method: larger than IoT Hub takes",
			do:   methodDo(ctx, big),
			want: []string{"code too large", "code too large"}, result: `200 `,
		},
		{
			name: "c2d: body and properties become telemetry",
			do: c2dDo(ctx, "hi", firmware.Property{Name: "a", Value: "b"}, firmware.Property{Name: "empty", Value: ""},
				firmware.Property{Name: "nul", Value: "x\x00y"}),
			want: []string{"telemetry hi [a=b empty=]", "code ok"}, result: "complete",
		},
		{
			name: "c2d: the host's code reaches the firmware",
			send: firmware.CodeThrottled,
			do:   c2dDo(ctx, "hi"),
			want: []string{"telemetry hi []", "code throttled"}, result: "complete",
		},
		{
			name: "desired: delays in milliseconds",
			do:   desiredDo(ctx, 1500),
			want: []string{"timer 1.5s", "code ok", "sleep 1.5s", "code ok"},
		},
		{
			name: "desired: a negative timer cancels, a negative sleep is invalid",
			do:   desiredDo(ctx, -1),
			want: []string{"timer -1ns", "code ok", "code invalid"},
		},
		{
			name: "desired: delays past any use are invalid",
			do:   desiredDo(ctx, 1<<50),
			want: []string{"code invalid", "code invalid"},
		},
		{
			name: "desired: zero timer fires at once, zero sleep is invalid",
			do:   desiredDo(ctx, 0),
			want: []string{"timer 0s", "code ok", "code invalid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			h.noteSensors, h.send, h.now = true, tc.send, time.UnixMilli(1234)
			in := instantiate(t, m, "echo", h, firmware.Limits{})
			result, err := tc.do(in)
			if err != nil {
				t.Fatal(err)
			}
			equalLines(t, "host calls", h.take(), tc.want)
			if result != tc.result {
				t.Errorf("result %.80q, want %.80q", result, tc.result)
			}
		})
	}
}

func methodDo(ctx context.Context, payload string) func(*firmware.Instance) (string, error) {
	return func(in *firmware.Instance) (string, error) {
		status, resp, err := in.OnMethod(ctx, "m", []byte(payload))
		return fmt.Sprintf("%d %s", status, resp), err
	}
}

func c2dDo(ctx context.Context, body string, props ...firmware.Property) func(*firmware.Instance) (string, error) {
	return func(in *firmware.Instance) (string, error) {
		o, err := in.OnC2D(ctx, []byte(body), props)
		return o.String(), err
	}
}

func desiredDo(ctx context.Context, version int64) func(*firmware.Instance) (string, error) {
	return func(in *firmware.Instance) (string, error) { return "", in.OnDesired(ctx, []byte(`{}`), version) }
}
