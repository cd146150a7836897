package https

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/protocols/internal/rest"
)

// FuzzC2DFromResponse feeds the reading of a received C2D message with any
// headers and body: it must not panic, and what it accepts keeps the body
// and a lock token.
func FuzzC2DFromResponse(f *testing.F) {
	f.Add("\"5b2f8a\"", "iothub-messageid: m1\niothub-app-k: v\niothub-expiry: 2030-01-01T00:00:00Z\niothub-deliverycount: 2", []byte("cmd"))
	f.Add("", "iothub-expiry: tomorrow", []byte{})
	f.Add("x", "iothub-creationtimeutc: 2021-04-21T11:30:16.5Z\niothub-enqueuedtime: nonsense\niothub-app-: empty", []byte{0xff})
	f.Fuzz(func(t *testing.T, etag, headers string, body []byte) {
		h := http.Header{}
		if etag != "" {
			h.Set("ETag", etag)
		}
		for line := range strings.SplitSeq(headers, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				h.Add(k, v)
			}
		}
		m, err := c2dFromResponse(h, body)
		if err != nil {
			return
		}
		if m.LockToken == "" || !bytes.Equal(m.Body, body) {
			t.Fatalf("accepted a message with lock %q and body %q (sent %q)", m.LockToken, m.Body, body)
		}
	})
}

// FuzzStatusError turns any error response into a typed error.
func FuzzStatusError(f *testing.F) {
	f.Add(401, []byte(`{"Message":"ErrorCode:IotHubUnauthorizedAccess;Unauthorized","ExceptionMessage":"x"}`))
	f.Add(429, []byte(`{"errorCode":429001,"message":"throttled"}`))
	f.Add(500, []byte("<html>"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := rest.StatusError("op", &rest.Response{Status: status, Body: body})
		if err == nil || err.Error() == "" {
			t.Fatal("no error")
		}
	})
}
