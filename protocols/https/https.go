package https

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/rest"
	"github.com/catmsim/catmsim/sas"
)

// Client is one device's HTTPS client for IoT Hub. It implements
// protocols.Client, BatchSender and C2DPoller.
type Client struct {
	cfg    protocols.Config
	rest   *rest.Client
	tokens *protocols.Tokens
	ledger *network.Ledger
	query  string
}

var (
	_ protocols.Client      = (*Client)(nil)
	_ protocols.BatchSender = (*Client)(nil)
	_ protocols.C2DPoller   = (*Client)(nil)
)

// contentTypeBinary is what a single send declares: the body is opaque to
// HTTP; its own content type travels in iothub-contenttype.
const contentTypeBinary = "application/octet-stream"

// New checks cfg and returns a client. It opens no connection.
func New(cfg protocols.Config) (*Client, error) {
	errs := []error{cfg.CheckCommon(), cfg.CheckIoTHubAuth()}
	if cfg.Protocol != "" && cfg.Protocol != protocols.HTTPS {
		errs = append(errs, fmt.Errorf("config.Protocol: this client speaks %s, not %q", protocols.HTTPS, cfg.Protocol))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("https client for %s: %w", cfg.Identity, err)
	}
	cfg.Protocol = protocols.HTTPS
	return &Client{
		cfg:    cfg,
		rest:   rest.New(cfg.Dialer, cfg.Addr(protocols.PortHTTPS), cfg.HostName, cfg.TLSConfig(), cfg.ClientType, cfg.NewConnectionPerRequest),
		tokens: cfg.NewTokens(sas.DeviceResource(cfg.HostName, cfg.Identity.DeviceID, cfg.Identity.ModuleID)),
		ledger: cfg.Dialer.Link.Ledger(),
		query:  iothub.QueryAPIVersion + "=" + url.QueryEscape(cfg.APIVersionOrDefault()),
	}, nil
}

// Connect does nothing on the wire: HTTPS connects with the first request.
func (c *Client) Connect(context.Context) error { return nil }

// Close closes kept-alive connections.
func (c *Client) Close(context.Context) error {
	c.rest.CloseIdle()
	return nil
}

// header starts a request's headers with the Authorization a SAS device
// sends (a certificate device sends none).
func (c *Client) header() http.Header {
	h := http.Header{}
	if c.tokens != nil {
		h["Authorization"] = []string{c.tokens.Current()}
	}
	return h
}

// SendTelemetry POSTs one message with its properties as headers; the hub
// answers 204.
func (c *Client) SendTelemetry(ctx context.Context, m *iothub.Message) error {
	if m == nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send", Err: errors.New("no message")}
	}
	h := c.header()
	h[iothub.HeaderTo] = []string{iothub.EventsPath(c.cfg.Identity)}
	rest.AddProperties(h, m)
	h["Content-Type"] = []string{contentTypeBinary}
	return c.send(ctx, "send", h, m.Body, len(m.Body))
}

// batchItem is one message of an application/vnd.microsoft.iothub.json
// batch; base64Encoded is left out, as the .NET and Node SDKs do (it
// defaults to true).
type batchItem struct {
	Body       string            `json:"body"`
	Properties map[string]string `json:"properties,omitempty"`
}

// SendBatch POSTs several messages as one JSON batch, bodies in base64.
func (c *Client) SendBatch(ctx context.Context, ms []*iothub.Message) error {
	if len(ms) == 0 {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: errors.New("the batch is empty")}
	}
	items := make([]batchItem, len(ms))
	payload := 0
	for i, m := range ms {
		if m == nil {
			return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: fmt.Errorf("message %d is nil", i)}
		}
		ph := http.Header{}
		rest.AddProperties(ph, m)
		it := batchItem{Body: base64.StdEncoding.EncodeToString(m.Body)}
		if len(ph) > 0 {
			it.Properties = make(map[string]string, len(ph))
			for k, v := range ph {
				it.Properties[k] = v[0]
			}
		}
		items[i] = it
		payload += len(m.Body)
	}
	body, err := json.Marshal(items)
	if err != nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: err}
	}
	h := c.header()
	h[iothub.HeaderTo] = []string{iothub.EventsPath(c.cfg.Identity)}
	h["Content-Type"] = []string{iothub.ContentTypeBatch}
	return c.send(ctx, "send batch", h, body, payload)
}

// send POSTs to the events path and counts payload bytes once the request
// went out, whatever the hub answered.
func (c *Client) send(ctx context.Context, op string, h http.Header, body []byte, payload int) error {
	resp, sent, err := c.rest.Do(ctx, rest.Request{Op: op, Method: http.MethodPost, Path: iothub.EventsPath(c.cfg.Identity), Query: c.query, Header: h, Body: body})
	if sent {
		c.ledger.AddPayload(network.Up, network.ClassTelemetry, payload)
	}
	if err != nil {
		return err
	}
	if resp.Status/100 != 2 {
		return rest.StatusError(op, resp)
	}
	return nil
}

// PollC2D asks for the next cloud-to-device message; it returns nil when
// none waits (204). The message stays locked for the device until it is
// settled or its lock times out.
func (c *Client) PollC2D(ctx context.Context) (*protocols.C2DMessage, error) {
	if c.cfg.Identity.ModuleID != "" {
		return nil, &protocols.Error{Kind: protocols.KindUnsupported, Op: "c2d poll", Err: errors.New("IoT Hub has no cloud-to-device messages for modules")}
	}
	h := c.header()
	h[iothub.HeaderTo] = []string{iothub.DeviceBoundPath(c.cfg.Identity.DeviceID)}
	resp, _, err := c.rest.Do(ctx, rest.Request{Op: "c2d poll", Method: http.MethodGet, Path: iothub.DeviceBoundPath(c.cfg.Identity.DeviceID),
		Query: c.query, Header: h, MaxBody: iothub.MaxC2DSize})
	if err != nil {
		return nil, err
	}
	switch resp.Status {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, rest.StatusError("c2d poll", resp)
	}
	c.ledger.AddPayload(network.Down, network.ClassC2D, len(resp.Body))
	m, err := c2dFromResponse(resp.Header, resp.Body)
	if err != nil {
		return nil, &protocols.Error{Kind: protocols.KindOther, Op: "c2d poll", Err: err}
	}
	return m, nil
}

// c2dFromResponse reads a received cloud-to-device message: the body, its
// properties from the iothub-* headers and its lock token from the ETag.
func c2dFromResponse(h http.Header, body []byte) (*protocols.C2DMessage, error) {
	m := &protocols.C2DMessage{Message: iothub.Message{Body: body}}
	if err := rest.ReadProperties(h, &m.Message); err != nil {
		return nil, err
	}
	m.LockToken = strings.Trim(h.Get("ETag"), `"`)
	if m.LockToken == "" {
		return nil, errors.New("the hub sent a message without an ETag, so it cannot be settled")
	}
	m.DeliveryCount, _ = strconv.Atoi(h.Get(iothub.HeaderDeliveryCount))
	if t, err := iothub.ParseTime(h.Get(iothub.HeaderEnqueuedTime)); err == nil {
		m.Enqueued = t
	}
	if ack := h.Get(iothub.HeaderAck); ack != "" {
		m.Set(iothub.PropAck, ack)
	}
	return m, nil
}

// SettleC2D completes (DELETE), rejects (DELETE …?reject) or abandons (POST
// …/abandon) a polled message by its lock token, sent quoted in If-Match as
// the C and .NET SDKs do.
func (c *Client) SettleC2D(ctx context.Context, lockToken string, o protocols.Outcome) error {
	if lockToken == "" {
		return &protocols.Error{Kind: protocols.KindOther, Op: "c2d " + o.String(), Err: errors.New("no lock token: settle a message PollC2D returned")}
	}
	dev := c.cfg.Identity.DeviceID
	r := rest.Request{Op: "c2d " + o.String(), Method: http.MethodDelete, Path: iothub.DeviceBoundLockPath(dev, lockToken), Query: c.query, Header: c.header()}
	switch o {
	case protocols.Complete:
	case protocols.Reject:
		r.Query += "&" + iothub.QueryReject
	case protocols.Abandon:
		r.Method, r.Path = http.MethodPost, iothub.AbandonPath(dev, lockToken)
	default:
		return &protocols.Error{Kind: protocols.KindOther, Op: "c2d settle", Err: fmt.Errorf("unknown outcome %d", o)}
	}
	r.Header["If-Match"] = []string{`"` + lockToken + `"`}
	resp, _, err := c.rest.Do(ctx, r)
	if err != nil {
		return err
	}
	if resp.Status/100 != 2 {
		return rest.StatusError(r.Op, resp)
	}
	return nil
}
