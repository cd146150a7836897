package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/sas"
	"github.com/catmsim/catmsim/scenarios"
)

// iothubTarget is a real Azure IoT Hub, reached with a service connection
// string from the environment. Devices are provisioned through the registry
// REST API with keys derived from the run's seed; methods and desired updates
// go through the service REST API. Sending C2D needs the AMQP service API,
// which this version does not drive, so a scenario with a C2D driver is
// refused before the run.
func iothubTarget(p *scenarios.Plan, o TargetOptions) (*target, error) {
	cs, err := p.Target.ConnectionString(o.Env)
	if err != nil {
		return nil, err
	}
	key, err := cs.Key()
	if err != nil {
		return nil, err
	}
	if p.Cloud.C2D != nil {
		return nil, errors.New("cloud.c2d: sending cloud-to-device messages to a real IoT Hub needs its AMQP service API, which this version does not drive; remove the c2d driver or use the embedded target")
	}
	t := &target{kind: "iothub", hostName: cs.HostName, addrs: map[protocols.Protocol]string{}, roots: o.RootCAs, groupKey: deriveKey(p.Seed, "group")}
	base := "https://" + cs.HostName
	if o.Address != "" {
		base = "https://" + o.Address
		for _, pr := range []protocols.Protocol{protocols.HTTPS, protocols.MQTTWebSocket, protocols.AMQPWebSocket, protocols.MQTT, protocols.AMQP} {
			t.addrs[pr] = o.Address
		}
	}
	rc := &restCloud{
		base: base, host: cs.HostName,
		tokens: &sas.TokenSource{Resource: cs.HostName, Key: key, KeyName: cs.SharedAccessKeyName, TTL: time.Hour},
		client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.RootCAs, ServerName: cs.HostName}}},
	}
	t.cloud = rc
	if p.Target.Provision {
		rate := 100.0 / 60 // S1: 100 registry operations per minute per unit
		if p.Target.Units > 0 {
			rate *= float64(p.Target.Units)
		}
		t.provision = func(ctx context.Context, ids []string) error { return rc.provision(ctx, ids, t.groupKey, rate) }
	}
	t.close = func(context.Context) error { rc.client.CloseIdleConnections(); return nil }
	return t, nil
}

type restCloud struct {
	base, host string
	tokens     *sas.TokenSource
	client     *http.Client
}

func (c *restCloud) do(ctx context.Context, method, path string, hdr map[string]string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+"?api-version="+iothub.APIVersion, rd)
	if err != nil {
		return nil, err
	}
	tok, _ := c.tokens.Token()
	req.Header.Set("Authorization", tok)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Host = c.host
	resp, err := c.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return nil, &unreachableError{err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return b, iothub.ParseErrorBody(resp.StatusCode, b)
	}
	return b, nil
}

// provision creates each device with the run's derived keys, paced to the
// tier's registry throttle; a device that exists gets the run's keys.
func (c *restCloud) provision(ctx context.Context, ids []string, groupKey []byte, perSecond float64) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for i, id := range ids {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		k := sas.EncodeKey(sas.DeriveKey(groupKey, id))
		dev := map[string]any{"deviceId": id, "status": "enabled", "authentication": map[string]any{"type": "sas", "symmetricKey": map[string]string{"primaryKey": k, "secondaryKey": k}}}
		path := "/devices/" + url.PathEscape(id)
		_, err := c.do(ctx, http.MethodPut, path, nil, dev)
		if errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceAlreadyExists}) {
			_, err = c.do(ctx, http.MethodPut, path, map[string]string{"If-Match": `"*"`}, dev)
		}
		if err != nil {
			return fmt.Errorf("provisioning device %q: %w", id, err)
		}
	}
	return nil
}

func (c *restCloud) sendC2D(context.Context, string, iothub.Message, string, time.Duration) error {
	return errors.New("sending cloud-to-device messages to a real IoT Hub is not supported in this version")
}

func (c *restCloud) invokeMethod(ctx context.Context, id, name string, payload []byte, timeout time.Duration) (int, error) {
	var pl json.RawMessage
	if len(payload) > 0 {
		pl = payload
	}
	b, err := c.do(ctx, http.MethodPost, "/twins/"+url.PathEscape(id)+"/methods", nil,
		map[string]any{"methodName": name, "payload": pl, "responseTimeoutInSeconds": int(timeout / time.Second)})
	if err != nil {
		return 0, err
	}
	var r struct{ Status int }
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("method response: %w", err)
	}
	return r.Status, nil
}

func (c *restCloud) updateDesired(ctx context.Context, id string, patch map[string]any) error {
	_, err := c.do(ctx, http.MethodPatch, "/twins/"+url.PathEscape(id), map[string]string{"If-Match": `"*"`}, map[string]any{"properties": map[string]any{"desired": patch}})
	return err
}

func (c *restCloud) disconnectAll() error {
	return errors.New("a real IoT Hub cannot be restarted by a scenario")
}

// unreachableError marks a target that could not be reached (exit code 106).
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return "the target cannot be reached: " + e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// Unreachable reports whether a run failed because its target could not be
// reached (exit code 106).
func Unreachable(err error) bool {
	var u *unreachableError
	return errors.As(err, &u)
}
