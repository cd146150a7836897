// Package rest owns what the HTTPS-based clients share: a net/http client
// dialled through the device's metered link, kept alive or opening a new TLS
// connection per request (the MicroPython urequests pattern), requests with
// the device's headers, bounded response bodies, and hub errors turned into
// typed errors.
package rest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
)

// MaxErrorBody bounds how much of an error response is read.
const MaxErrorBody = 64 << 10

// Client sends a device's HTTPS requests.
type Client struct {
	tr         *http.Transport
	hc         *http.Client
	base       string // https://host:port
	host       string // the Host header: the hub's name
	userAgent  string
	perRequest bool
}

// New makes a client for requests to addr whose Host is host. With
// perRequest every request opens (and closes) its own TLS connection.
func New(d *network.Dialer, addr, host string, tlsCfg *tls.Config, userAgent string, perRequest bool) *Client {
	tr := d.HTTPTransport(tlsCfg, func() network.Classifier { return classify.NewHTTP() })
	tr.DisableKeepAlives = perRequest
	return &Client{tr: tr, hc: &http.Client{Transport: tr}, base: "https://" + addr, host: host, userAgent: userAgent, perRequest: perRequest}
}

// Request is one request to send.
type Request struct {
	Op     string // for errors: "send", "c2d poll" …
	Method string
	// Path is the escaped path; Query is appended after '?' when not empty.
	Path, Query string
	Header      http.Header
	Body        []byte
	// MaxBody bounds the success response's body.
	MaxBody int64
}

// Response is a response read in full (up to its bound).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r and reads the response. A transport failure comes back as a
// *protocols.Error (disconnected or timed out); any status is returned as is,
// the caller decides which are errors. sent reports whether the request went
// out (so its payload counts).
func (c *Client) Do(ctx context.Context, r Request) (resp *Response, sent bool, err error) {
	if c.perRequest {
		// Each request's connection is part of normal operation, not a
		// reconnect: its set-up bytes count as connect.
		ctx = network.WithConnReason(ctx, network.ReasonInitial)
	}
	u := c.base + r.Path
	if r.Query != "" {
		u += "?" + r.Query
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, bytes.NewReader(r.Body))
	if err != nil {
		return nil, false, &protocols.Error{Kind: protocols.KindOther, Op: r.Op, Err: err}
	}
	if r.Body == nil {
		req.Body, req.GetBody, req.ContentLength = nil, nil, 0
	}
	req.Host = c.host
	for k, v := range r.Header {
		req.Header[k] = v
	}
	// An empty User-Agent makes net/http send none, as urequests sends none.
	req.Header["User-Agent"] = []string{c.userAgent}
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, false, protocols.Wrap(r.Op, err)
	}
	defer hr.Body.Close()
	limit := r.MaxBody
	if hr.StatusCode >= 300 || limit <= 0 {
		limit = MaxErrorBody
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
	if err != nil {
		return nil, true, protocols.Wrap(r.Op, err)
	}
	if int64(len(body)) > limit {
		return nil, true, &protocols.Error{Kind: protocols.KindTooLarge, Op: r.Op, Err: fmt.Errorf("the response body exceeds %d bytes", limit)}
	}
	return &Response{Status: hr.StatusCode, Header: hr.Header, Body: body}, true, nil
}

// StatusError turns a hub's error response into a typed error.
func StatusError(op string, resp *Response) error {
	he := iothub.ParseErrorBody(resp.Status, resp.Body)
	return &protocols.Error{Kind: protocols.KindOf(he.Code), Op: op, Err: fmt.Errorf("HTTP %d: %w", resp.Status, he)}
}

// CloseIdle closes kept-alive connections; nothing of the client keeps
// running afterwards.
func (c *Client) CloseIdle() { c.tr.CloseIdleConnections() }

// AddProperties writes m's system properties as iothub-* headers and its
// application properties as iothub-app-* headers.
func AddProperties(h http.Header, m *iothub.Message) {
	for _, f := range iothub.HeaderFields {
		if v := f.Get(m); v != "" {
			h[f.Header] = []string{v}
		}
	}
	for _, p := range m.Properties {
		h[iothub.HeaderAppPrefix+p.Name] = []string{p.Value}
	}
}

// ReadProperties reads a received message's iothub-* and iothub-app-*
// headers into m.
func ReadProperties(h http.Header, m *iothub.Message) error {
	for _, f := range iothub.HeaderFields {
		if v := h.Get(f.Header); v != "" {
			if err := f.Set(m, v); err != nil {
				return fmt.Errorf("header %s: %w", f.Header, err)
			}
		}
	}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), iothub.HeaderAppPrefix); ok && name != "" && len(vs) > 0 {
			m.Properties = append(m.Properties, iothub.Property{Name: name, Value: vs[0]})
		}
	}
	return nil
}
