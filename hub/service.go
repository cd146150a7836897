package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// serveServiceREST is the service side of the REST API, as much of it as the
// Node service SDK (azure-iothub) and raw REST clients use (spec §5.2): the
// identity registry, twins, direct-method invocation and device statistics.
// Every call needs a hub-level token with the rights the operation needs.
func (s *Server) serveServiceREST(w http.ResponseWriter, r *http.Request, segs []string) {
	type route struct {
		method string
		match  func([]string) bool
		need   Rights
		serve  func(http.ResponseWriter, *http.Request, []string)
		op     Op
	}
	n := len(segs)
	is := func(i int, w string) bool { return n > i && strings.EqualFold(segs[i], w) }
	routes := []route{
		{http.MethodGet, func([]string) bool { return n == 1 && is(0, "devices") }, RegistryRead, s.listDevices, OpRegistry},
		{http.MethodGet, func([]string) bool { return n == 2 && is(0, "devices") }, RegistryRead, s.getDevice, OpRegistry},
		{http.MethodPut, func([]string) bool { return n == 2 && is(0, "devices") }, RegistryWrite, s.putDevice, OpRegistry},
		{http.MethodDelete, func([]string) bool { return n == 2 && is(0, "devices") }, RegistryWrite, s.deleteDevice, OpRegistry},
		{http.MethodGet, func([]string) bool { return n == 4 && is(0, "devices") && is(2, "modules") }, RegistryRead, s.getDevice, OpRegistry},
		{http.MethodPut, func([]string) bool { return n == 4 && is(0, "devices") && is(2, "modules") }, RegistryWrite, s.putDevice, OpRegistry},
		{http.MethodDelete, func([]string) bool { return n == 4 && is(0, "devices") && is(2, "modules") }, RegistryWrite, s.deleteDevice, OpRegistry},
		{http.MethodGet, func([]string) bool { return (n == 2 || n == 4 && is(2, "modules")) && is(0, "twins") }, RegistryRead, s.getTwin, OpTwinRead},
		{http.MethodPatch, func([]string) bool { return (n == 2 || n == 4 && is(2, "modules")) && is(0, "twins") }, RegistryWrite, s.patchTwin, OpTwinUpdate},
		{http.MethodPut, func([]string) bool { return (n == 2 || n == 4 && is(2, "modules")) && is(0, "twins") }, RegistryWrite, s.patchTwin, OpTwinUpdate},
		{http.MethodPost, func([]string) bool {
			return is(0, "twins") && (n == 3 && is(2, "methods") || n == 5 && is(2, "modules") && is(4, "methods"))
		}, ServiceConnect, s.invokeMethod, -1},
		{http.MethodGet, func([]string) bool { return n == 2 && is(0, "statistics") && is(1, "devices") }, RegistryRead, s.deviceStatistics, OpRegistry},
	}
	for _, rt := range routes {
		if !rt.match(segs) {
			continue
		}
		if r.Method != rt.method {
			continue
		}
		if _, err := s.Hub.AuthenticateService(r.Header.Get("Authorization"), rt.need); err != nil {
			s.writeError(w, r, err)
			return
		}
		if rt.op >= 0 && rt.op == OpRegistry && s.Hub.cfg.Throttler != nil {
			if err := s.Hub.cfg.Throttler.Allow(OpRegistry, iothub.Identity{}, 0); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		rt.serve(w, r, segs)
		return
	}
	s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "%s %s is not a service API the emulator has", r.Method, r.URL.Path))
}

func identityOf(segs []string) iothub.Identity {
	id := iothub.Identity{DeviceID: segs[1]}
	if len(segs) >= 4 && strings.EqualFold(segs[2], "modules") {
		id.ModuleID = segs[3]
	}
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header()["Content-Type"] = []string{"application/json; charset=utf-8"}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// deviceJSON is a registry entry as the service API shows it.
type deviceJSON struct {
	DeviceID                   string         `json:"deviceId"`
	ModuleID                   string         `json:"moduleId,omitempty"`
	GenerationID               string         `json:"generationId"`
	ETag                       string         `json:"etag"`
	ConnectionState            string         `json:"connectionState"`
	Status                     string         `json:"status"`
	StatusReason               *string        `json:"statusReason"`
	ConnectionStateUpdatedTime string         `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          string         `json:"statusUpdatedTime"`
	LastActivityTime           string         `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int            `json:"cloudToDeviceMessageCount"`
	Authentication             authJSON       `json:"authentication"`
	Capabilities               map[string]any `json:"capabilities"`
}

type authJSON struct {
	Type         string `json:"type"`
	SymmetricKey struct {
		PrimaryKey   *string `json:"primaryKey"`
		SecondaryKey *string `json:"secondaryKey"`
	} `json:"symmetricKey"`
	X509Thumbprint struct {
		PrimaryThumbprint   *string `json:"primaryThumbprint"`
		SecondaryThumbprint *string `json:"secondaryThumbprint"`
	} `json:"x509Thumbprint"`
}

func (s *Server) deviceView(id iothub.Identity) (deviceJSON, bool) {
	it := s.Hub.lookup(id)
	if it == nil {
		return deviceJSON{}, false
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	r := it.reg
	d := deviceJSON{
		DeviceID: id.DeviceID, ModuleID: id.ModuleID, GenerationID: r.GenerationID, ETag: r.ETag,
		ConnectionState: "Disconnected", Status: "enabled",
		ConnectionStateUpdatedTime: iothub.FormatTime(it.connStateUpdated), StatusUpdatedTime: iothub.FormatTime(r.Created),
		LastActivityTime: iothub.FormatTime(it.lastActivity), CloudToDeviceMessageCount: len(it.c2d.entries),
		Capabilities: map[string]any{"iotEdge": false},
	}
	if it.conn != nil {
		d.ConnectionState = "Connected"
	}
	if !r.Enabled {
		d.Status = "disabled"
	}
	d.Authentication.Type = string(r.Auth)
	if r.Auth == AuthSAS {
		p, q := sas.EncodeKey(r.Keys[0]), sas.EncodeKey(r.Keys[1])
		d.Authentication.SymmetricKey.PrimaryKey, d.Authentication.SymmetricKey.SecondaryKey = &p, &q
	}
	if r.Auth == AuthSelfSigned {
		p, q := r.Thumbprints[0], r.Thumbprints[1]
		d.Authentication.X509Thumbprint.PrimaryThumbprint, d.Authentication.X509Thumbprint.SecondaryThumbprint = &p, &q
	}
	return d, true
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, segs []string) {
	id := identityOf(segs)
	d, ok := s.deviceView(id)
	if !ok {
		s.writeError(w, r, iothub.Errorf(iothub.CodeDeviceNotFound, "%s does not exist", describe(id)))
		return
	}
	w.Header()["ETag"] = []string{`"` + d.ETag + `"`}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) listDevices(w http.ResponseWriter, _ *http.Request, _ []string) {
	out := []deviceJSON{}
	for _, id := range s.Hub.Identities() {
		if id.ModuleID != "" {
			continue
		}
		if d, ok := s.deviceView(id); ok {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// putDevice creates a device or module (no If-Match; 409 when it exists) or
// updates its status and keys (If-Match: "*" or its etag). Empty keys are
// generated, as the real registry does.
func (s *Server) putDevice(w http.ResponseWriter, r *http.Request, segs []string) {
	id := identityOf(segs)
	var in deviceJSON
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "device body is not valid JSON: %v", err))
		return
	}
	if in.DeviceID != "" && in.DeviceID != id.DeviceID || in.ModuleID != "" && in.ModuleID != id.ModuleID {
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "the body names %q, the path %q", in.DeviceID, id.DeviceID))
		return
	}
	reg := Registration{Identity: id, Enabled: in.Status != "disabled"}
	switch in.Authentication.Type {
	case "", "sas":
		reg.Auth = AuthSAS
		for i, k := range []*string{in.Authentication.SymmetricKey.PrimaryKey, in.Authentication.SymmetricKey.SecondaryKey} {
			if k != nil && *k != "" {
				b, err := sas.DecodeKey(*k)
				if err != nil {
					s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "authentication.symmetricKey: %v", err))
					return
				}
				reg.Keys[i] = b
			}
		}
	case "selfSigned":
		reg.Auth = AuthSelfSigned
		for i, tp := range []*string{in.Authentication.X509Thumbprint.PrimaryThumbprint, in.Authentication.X509Thumbprint.SecondaryThumbprint} {
			if tp != nil {
				reg.Thumbprints[i] = *tp
			}
		}
	case "certificateAuthority":
		reg.Auth = AuthCA
	default:
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "authentication.type %q is not sas, selfSigned or certificateAuthority", in.Authentication.Type))
		return
	}
	ifMatch := strings.Trim(r.Header.Get("If-Match"), `"`)
	if ifMatch == "" {
		if _, err := s.Hub.AddDevice(reg); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else if err := s.Hub.UpdateRegistration(reg, ifMatch); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, _ := s.deviceView(id)
	w.Header()["ETag"] = []string{`"` + d.ETag + `"`}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, segs []string) {
	id := identityOf(segs)
	var err error
	if id.ModuleID != "" {
		err = s.Hub.RemoveModule(id)
	} else {
		err = s.Hub.RemoveDevice(id.DeviceID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getTwin(w http.ResponseWriter, r *http.Request, segs []string) {
	t, err := s.Hub.GetTwin(identityOf(segs))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header()["ETag"] = []string{`"` + t.ETag + `"`}
	writeJSON(w, http.StatusOK, t)
}

// patchTwin serves PATCH (merge) and PUT (replace desired and tags) on a twin.
func (s *Server) patchTwin(w http.ResponseWriter, r *http.Request, segs []string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 128<<10))
	if err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeRequestEntityTooLarge, "twin patch too large"))
		return
	}
	id := identityOf(segs)
	var t Twin
	if r.Method == http.MethodPut {
		t, err = s.Hub.ReplaceTwin(id, body, r.Header.Get("If-Match"))
	} else {
		t, err = s.Hub.UpdateTwin(id, body, r.Header.Get("If-Match"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header()["ETag"] = []string{`"` + t.ETag + `"`}
	writeJSON(w, http.StatusOK, t)
}

// invokeMethod calls a direct method and answers with the device's status and
// payload, 404 DeviceNotOnline or 504 GatewayTimeout, as the hub does. The
// response timeout must be 5 to 300 s, the connect timeout 0 to 300 s.
func (s *Server) invokeMethod(w http.ResponseWriter, r *http.Request, segs []string) {
	var in struct {
		MethodName               string          `json:"methodName"`
		ResponseTimeoutInSeconds *int            `json:"responseTimeoutInSeconds"`
		ConnectTimeoutInSeconds  *int            `json:"connectTimeoutInSeconds"`
		Payload                  json.RawMessage `json:"payload"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, iothub.MaxMethodPayload+4096))
	if err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeRequestEntityTooLarge, "method request larger than IoT Hub's %d-byte payload limit", iothub.MaxMethodPayload))
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "method request is not valid JSON: %v", err))
		return
	}
	if in.MethodName == "" || strings.ContainsAny(in.MethodName, "$()<>@,;:\\\"/[]?={} \t") {
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "method name %q is empty or has a character IoT Hub does not allow", in.MethodName))
		return
	}
	resp := iothub.DefaultMethodResponseTimeout
	if in.ResponseTimeoutInSeconds != nil {
		resp = time.Duration(*in.ResponseTimeoutInSeconds) * time.Second
		if resp < iothub.MinMethodResponseTimeout || resp > iothub.MaxMethodResponseTimeout {
			s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "responseTimeoutInSeconds must be %d to %d (got %d)", int(iothub.MinMethodResponseTimeout/time.Second), int(iothub.MaxMethodResponseTimeout/time.Second), *in.ResponseTimeoutInSeconds))
			return
		}
	}
	var conn time.Duration
	if in.ConnectTimeoutInSeconds != nil {
		conn = time.Duration(*in.ConnectTimeoutInSeconds) * time.Second
		if conn < 0 || conn > iothub.MaxMethodConnectTimeout {
			s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "connectTimeoutInSeconds must be 0 to %d (got %d)", int(iothub.MaxMethodConnectTimeout/time.Second), *in.ConnectTimeoutInSeconds))
			return
		}
	}
	payload := []byte(in.Payload)
	if string(payload) == "null" {
		payload = nil
	}
	id := iothub.Identity{DeviceID: segs[1]}
	if len(segs) == 5 {
		id.ModuleID = segs[3]
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	res, err := s.Hub.InvokeMethod(ctx, id, in.MethodName, payload, resp, conn)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pl := res.Payload
	if pl == nil {
		pl = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}{res.Status, pl})
}

func (s *Server) deviceStatistics(w http.ResponseWriter, _ *http.Request, _ []string) {
	var total, enabled int
	for _, id := range s.Hub.Identities() {
		if id.ModuleID != "" {
			continue
		}
		total++
		if r, ok := s.Hub.Registration(id); ok && r.Enabled {
			enabled++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"totalDeviceCount": total, "enabledDeviceCount": enabled, "disabledDeviceCount": total - enabled})
}
