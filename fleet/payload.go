package fleet

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/scenarios"
)

// payloads makes one device's telemetry bodies from its behaviour. Random
// fields draw from the device's own seeded generator, so the same seed sends
// the same values; the sequence number lets the hub's store be checked for
// loss.
type payloads struct {
	t     *scenarios.Telemetry
	rnd   *rand.Rand
	seq   int64
	walks map[int]float64 // field index → current random-walk value
	buf   []byte
}

func newPayloads(t *scenarios.Telemetry, rnd *rand.Rand) *payloads {
	p := &payloads{t: t, rnd: rnd, walks: map[int]float64{}}
	for i, f := range t.Payload.Fields {
		if f.Gen.Kind == scenarios.GenRandomWalk {
			p.walks[i] = f.Gen.RandomWalk.Start
		}
	}
	return p
}

// next returns the next message and its sequence number.
func (p *payloads) next(now time.Time) (*iothub.Message, int64) {
	seq := p.seq
	p.seq++
	m := &iothub.Message{ContentType: p.t.ContentType}
	switch p.t.Payload.Kind {
	case "bytes":
		body := make([]byte, p.t.Payload.Size)
		for i := range body {
			body[i] = byte(p.rnd.UintN(256))
		}
		m.Body = body
	default:
		m.Body = p.json(seq, now)
		if m.ContentType == "" {
			m.ContentType = "application/json"
		}
	}
	for _, k := range sortedKeys(p.t.Properties) {
		m.Properties = append(m.Properties, iothub.Property{Name: k, Value: p.t.Properties[k]})
	}
	return m, seq
}

func (p *payloads) json(seq int64, now time.Time) []byte {
	b := p.buf[:0]
	b = append(b, '{')
	fields := p.t.Payload.Fields
	if len(fields) == 0 {
		fields = scenarios.Fields{{Name: "seq", Gen: scenarios.Generator{Kind: scenarios.GenSequence}}}
	}
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, ':')
		b = p.value(b, i, f.Gen, seq, now)
	}
	// Pad to the configured size with a filler field, as devices that send
	// fixed-size frames do.
	if min := int(p.t.Payload.Size); min > 0 && len(b)+1 < min {
		b = append(b, `,"pad":"`...)
		for len(b)+2 < min {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	b = append(b, '}')
	p.buf = b
	return append([]byte(nil), b...)
}

func (p *payloads) value(b []byte, i int, g scenarios.Generator, seq int64, now time.Time) []byte {
	switch g.Kind {
	case scenarios.GenSequence:
		return strconv.AppendInt(b, seq, 10)
	case scenarios.GenTimestamp:
		return strconv.AppendQuote(b, now.UTC().Format("2006-01-02T15:04:05.000Z"))
	case scenarios.GenUniform:
		u := g.Uniform
		return appendFloat(b, u.Min+p.rnd.Float64()*(u.Max-u.Min), u.Decimals)
	case scenarios.GenRandomWalk:
		w := g.RandomWalk
		v := p.walks[i]
		if seq > 0 {
			v += (p.rnd.Float64()*2 - 1) * w.Step
		}
		if w.Min != nil && v < *w.Min {
			v = *w.Min
		}
		if w.Max != nil && v > *w.Max {
			v = *w.Max
		}
		p.walks[i] = v
		return appendFloat(b, v, w.Decimals)
	case scenarios.GenChoice:
		if len(g.Choice) == 0 {
			return append(b, "null"...)
		}
		return appendJSON(b, g.Choice[p.rnd.IntN(len(g.Choice))])
	default: // constant
		return appendJSON(b, g.Constant)
	}
}

func appendFloat(b []byte, v float64, decimals int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'f', decimals, 64)
}
