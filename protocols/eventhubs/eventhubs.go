package eventhubs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/rest"
)

// APIVersion is the Event Hubs REST api-version of the documentation's send
// examples; Config.APIVersion overrides it.
const APIVersion = "2014-01"

// contentTypeEntry is the content type of a single send in the
// documentation's example.
const contentTypeEntry = "application/atom+xml;type=entry;charset=utf-8"

// Client posts one device's events to an event hub. It implements
// protocols.Client and BatchSender.
type Client struct {
	cfg    protocols.Config
	rest   *rest.Client
	tokens *protocols.Tokens
	ledger *network.Ledger
	path   string
	query  string
}

var (
	_ protocols.Client      = (*Client)(nil)
	_ protocols.BatchSender = (*Client)(nil)
)

// New checks cfg and returns a client: HostName is the namespace host,
// EventHub the entity, Auth.Key and Auth.KeyName a namespace policy's key and
// name, Identity.DeviceID the publisher.
func New(cfg protocols.Config) (*Client, error) {
	errs := []error{cfg.CheckCommon()}
	if cfg.Protocol != "" && cfg.Protocol != protocols.EventHubsHTTPS {
		errs = append(errs, fmt.Errorf("config.Protocol: this client speaks %s, not %q", protocols.EventHubsHTTPS, cfg.Protocol))
	}
	if cfg.EventHub == "" {
		errs = append(errs, errors.New("config.EventHub: must name the event hub (entity) to post to"))
	}
	if cfg.Auth.Token == "" && (len(cfg.Auth.Key) == 0 || cfg.Auth.KeyName == "") {
		errs = append(errs, errors.New("config.Auth: Event Hubs needs a namespace policy's Key and KeyName (skn), or a ready-made Token"))
	}
	if cfg.Auth.Certificate != nil {
		errs = append(errs, errors.New("config.Auth.Certificate: Event Hubs REST authenticates with SAS tokens only"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("eventhubs client for %s: %w", cfg.Identity, err)
	}
	cfg.Protocol = protocols.EventHubsHTTPS
	v := cfg.APIVersion
	if v == "" {
		v = APIVersion
	}
	return &Client{
		cfg:    cfg,
		rest:   rest.New(cfg.Dialer, cfg.Addr(protocols.PortHTTPS), cfg.HostName, cfg.TLSConfig(), cfg.ClientType, cfg.NewConnectionPerRequest),
		tokens: cfg.NewTokens("https://" + cfg.HostName + "/" + cfg.EventHub),
		ledger: cfg.Dialer.Link.Ledger(),
		path:   iothub.EventHubsPublisherPath(cfg.EventHub, cfg.Identity.DeviceID),
		query:  "timeout=60&" + iothub.QueryAPIVersion + "=" + url.QueryEscape(v),
	}, nil
}

// Connect does nothing on the wire: the first request connects.
func (c *Client) Connect(context.Context) error { return nil }

// Close closes kept-alive connections.
func (c *Client) Close(context.Context) error {
	c.rest.CloseIdle()
	return nil
}

// brokerProperties are the Service Bus system properties a send may carry.
type brokerProperties struct {
	MessageID     string `json:"MessageId,omitempty"`
	CorrelationID string `json:"CorrelationId,omitempty"`
	ContentType   string `json:"ContentType,omitempty"`
}

func broker(m *iothub.Message) *brokerProperties {
	if m.MessageID == "" && m.CorrelationID == "" {
		return nil
	}
	return &brokerProperties{MessageID: m.MessageID, CorrelationID: m.CorrelationID}
}

// SendTelemetry posts one event. Application properties travel as headers
// and system properties in the BrokerProperties header, as Service Bus REST
// defines them.
func (c *Client) SendTelemetry(ctx context.Context, m *iothub.Message) error {
	if m == nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send", Err: errors.New("no message")}
	}
	h := http.Header{}
	ct := m.ContentType
	if ct == "" {
		ct = contentTypeEntry
	}
	h["Content-Type"] = []string{ct}
	if bp := broker(m); bp != nil {
		b, _ := json.Marshal(bp)
		h["BrokerProperties"] = []string{string(b)}
	}
	for _, p := range m.Properties {
		h[p.Name] = []string{p.Value}
	}
	return c.post(ctx, "send", h, m.Body, len(m.Body))
}

// batchEvent is one event of an application/vnd.microsoft.servicebus.json
// batch. Its Body is a JSON string, so events must be UTF-8 text.
type batchEvent struct {
	Body             string            `json:"Body"`
	UserProperties   map[string]string `json:"UserProperties,omitempty"`
	BrokerProperties *brokerProperties `json:"BrokerProperties,omitempty"`
}

// SendBatch posts several events in one JSON batch, properties in the body
// (Event Hubs ignores headers for batches).
func (c *Client) SendBatch(ctx context.Context, ms []*iothub.Message) error {
	if len(ms) == 0 {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: errors.New("the batch is empty")}
	}
	events := make([]batchEvent, len(ms))
	payload := 0
	for i, m := range ms {
		if m == nil {
			return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: fmt.Errorf("event %d is nil", i)}
		}
		if !utf8.Valid(m.Body) {
			return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: fmt.Errorf("event %d: an Event Hubs REST batch carries each body as a JSON string, so it must be UTF-8 text; send binary events one at a time", i)}
		}
		e := batchEvent{Body: string(m.Body), BrokerProperties: broker(m)}
		if len(m.Properties) > 0 {
			e.UserProperties = make(map[string]string, len(m.Properties))
			for _, p := range m.Properties {
				e.UserProperties[p.Name] = p.Value
			}
		}
		events[i] = e
		payload += len(m.Body)
	}
	body, err := json.Marshal(events)
	if err != nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: err}
	}
	h := http.Header{"Content-Type": {iothub.ContentTypeEventHubsBatch}}
	return c.post(ctx, "send batch", h, body, payload)
}

// post sends to the publisher's path with a current token; Event Hubs
// answers 201. Payload counts once the request went out.
func (c *Client) post(ctx context.Context, op string, h http.Header, body []byte, payload int) error {
	h["Authorization"] = []string{c.tokens.Current()}
	resp, sent, err := c.rest.Do(ctx, rest.Request{Op: op, Method: http.MethodPost, Path: c.path, Query: c.query, Header: h, Body: body})
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
