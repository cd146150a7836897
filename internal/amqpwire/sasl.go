package amqpwire

import (
	"bytes"
	"errors"
)

// SASLCode is the outcome of a SASL exchange (spec §5.3.3.6).
type SASLCode uint8

// The SASL outcome codes.
const (
	SASLOK      SASLCode = 0 // authentication succeeded
	SASLAuth    SASLCode = 1 // bad credentials
	SASLSys     SASLCode = 2 // system error
	SASLSysPerm SASLCode = 3 // unrecoverable system error
	SASLSysTemp SASLCode = 4 // transient system error
)

// SASLMechanisms lists the mechanisms a server offers (spec §5.3.3.1).
type SASLMechanisms struct {
	saslFrame
	Mechanisms []Symbol // mandatory
}

// Encode implements Performative. Mechanisms always go out as an array,
// as a client may not expect a bare symbol.
func (p *SASLMechanisms) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescSASLMechanisms)
	l.e.array(SymbolArray(p.Mechanisms...))
	l.kept()
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *SASLMechanisms) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescSASLMechanisms, "sasl-mechanisms")
	p.Mechanisms = readReq(&f, "sasl-server-mechanisms", (*decoder).readSymbols)
	return f.finish()
}

// SASLInit selects a mechanism and carries the client's first response
// (spec §5.3.3.2).
type SASLInit struct {
	saslFrame
	Mechanism       Symbol // mandatory
	InitialResponse []byte // aliases the decoded buffer; see SplitPlain
	Hostname        string
}

// Encode implements Performative.
func (p *SASLInit) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescSASLInit)
	l.e.symbol(p.Mechanism)
	l.kept()
	l.binary(p.InitialResponse)
	l.string(p.Hostname)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *SASLInit) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescSASLInit, "sasl-init")
	*p = SASLInit{
		Mechanism:       readReq(&f, "mechanism", (*decoder).readSymbol),
		InitialResponse: read(&f, "initial-response", (*decoder).readBinary, nil),
		Hostname:        read(&f, "hostname", (*decoder).readString, ""),
	}
	return f.finish()
}

// SASLChallenge carries a server challenge (spec §5.3.3.3).
type SASLChallenge struct {
	saslFrame
	Challenge []byte // mandatory
}

// Encode implements Performative.
func (p *SASLChallenge) Encode(dst []byte) ([]byte, error) {
	return encodeBinaryOnly(dst, DescSASLChallenge, p.Challenge)
}

// Decode implements Performative.
func (p *SASLChallenge) Decode(b []byte) (int, error) {
	var err error
	var n int
	p.Challenge, n, err = decodeBinaryOnly(b, DescSASLChallenge, "sasl-challenge", "challenge")
	return n, err
}

// SASLResponse carries a client response (spec §5.3.3.4).
type SASLResponse struct {
	saslFrame
	Response []byte // mandatory
}

// Encode implements Performative.
func (p *SASLResponse) Encode(dst []byte) ([]byte, error) {
	return encodeBinaryOnly(dst, DescSASLResponse, p.Response)
}

// Decode implements Performative.
func (p *SASLResponse) Decode(b []byte) (int, error) {
	var err error
	var n int
	p.Response, n, err = decodeBinaryOnly(b, DescSASLResponse, "sasl-response", "response")
	return n, err
}

// encodeBinaryOnly writes a composite whose one field is mandatory binary,
// so even an empty slice is sent.
func encodeBinaryOnly(dst []byte, code uint64, p []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(code)
	l.e.binary(p)
	l.kept()
	l.end()
	return e.b, e.err
}

func decodeBinaryOnly(b []byte, code uint64, name, field string) ([]byte, int, error) {
	d := newDecoder(b)
	f := d.describedList(code, name)
	p := readReq(&f, field, (*decoder).readBinary)
	n, err := f.finish()
	return p, n, err
}

// SASLOutcome ends the SASL exchange (spec §5.3.3.5).
type SASLOutcome struct {
	saslFrame
	Code           SASLCode // mandatory
	AdditionalData []byte
}

// Encode implements Performative.
func (p *SASLOutcome) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescSASLOutcome)
	l.ubyte(uint8(p.Code))
	l.binary(p.AdditionalData)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *SASLOutcome) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescSASLOutcome, "sasl-outcome")
	*p = SASLOutcome{
		Code:           SASLCode(readReq(&f, "code", (*decoder).readUbyte)),
		AdditionalData: read(&f, "additional-data", (*decoder).readBinary, nil),
	}
	return f.finish()
}

// errPlain explains a malformed PLAIN response.
var errPlain = errors.New("sasl plain response must be authzid NUL authcid NUL passwd (RFC 4616)")

// SplitPlain splits a SASL PLAIN initial response ([authzid] NUL authcid
// NUL passwd, RFC 4616) into its parts. IoT Hub clients send the identity
// (e.g. "device@sas.hub") as authcid and a SAS token as passwd.
func SplitPlain(resp []byte) (authzid, authcid, passwd string, err error) {
	a, rest, ok := bytes.Cut(resp, []byte{0})
	if !ok {
		return "", "", "", errPlain
	}
	c, p, ok := bytes.Cut(rest, []byte{0})
	if !ok || len(c) == 0 || bytes.IndexByte(p, 0) >= 0 {
		return "", "", "", errPlain
	}
	return string(a), string(c), string(p), nil
}

// PlainResponse builds a SASL PLAIN initial response.
func PlainResponse(authzid, authcid, passwd string) []byte {
	b := make([]byte, 0, len(authzid)+len(authcid)+len(passwd)+2)
	b = append(b, authzid...)
	b = append(b, 0)
	b = append(b, authcid...)
	b = append(b, 0)
	return append(b, passwd...)
}
