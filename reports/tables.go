package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// Sizes of the fixed tables a device row holds. Tests check them against the
// lists in packages network and metrics, so a new class or count cannot be
// silently dropped from reports.
const (
	numLayers      = 4
	numDirections  = 2
	numClasses     = 9
	numReasons     = 3
	numCounts      = 13
	numStates      = 8
	numRadioStates = 8
)

var (
	layerNames     = names(network.Layers())
	directionNames = []string{network.Up.String(), network.Down.String()}
	classNames     = names(network.Classes())
	reasonNames    = []string{network.ReasonInitial.String(), network.ReasonReconnect.String(), network.ReasonTokenRenewal.String()}
	countNames     = names(metrics.Counts())
	stateNames     = names(metrics.States())
	radioNames     = names(network.RadioStates())
	latencyNames   = names(metrics.Latencies())
)

func names[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

// ByteTable is a device's bytes per layer, direction and class, in the orders
// of network.Layers, Up/Down and network.Classes. In JSON it is
// {"ip": {"up": {"telemetry": 123, …}, …}, …} with zero counts left out.
type ByteTable [numLayers][numDirections][numClasses]uint64

// Get returns the bytes of one layer, direction and class.
func (t *ByteTable) Get(l network.Layer, d network.Direction, c network.Class) uint64 {
	if int(l) >= numLayers || int(d) >= numDirections || int(c) >= numClasses {
		return 0
	}
	return t[l][d][c]
}

// Layer sums one layer over both directions and every class.
func (t *ByteTable) Layer(l network.Layer) uint64 {
	var n uint64
	for d := range t[l] {
		for _, v := range t[l][d] {
			n += v
		}
	}
	return n
}

// MarshalJSON writes the non-zero counts by name.
func (t ByteTable) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	firstL := true
	for l := range t {
		if t.Layer(network.Layer(l)) == 0 {
			continue
		}
		if !firstL {
			b.WriteByte(',')
		}
		firstL = false
		fmt.Fprintf(&b, "%q:{", layerNames[l])
		firstD := true
		for d := range t[l] {
			inner := appendNamed(nil, classNames, t[l][d][:])
			if inner == nil {
				continue
			}
			if !firstD {
				b.WriteByte(',')
			}
			firstD = false
			fmt.Fprintf(&b, "%q:", directionNames[d])
			b.Write(inner)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the form MarshalJSON writes; an unknown name is an error.
func (t *ByteTable) UnmarshalJSON(data []byte) error {
	var m map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	*t = ByteTable{}
	for ln, dirs := range m {
		l, err := indexOf(layerNames, ln, "layer")
		if err != nil {
			return err
		}
		for dn, raw := range dirs {
			d, err := indexOf(directionNames, dn, "direction")
			if err != nil {
				return err
			}
			if err := unmarshalNamed(raw, classNames, t[l][d][:], "class"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ConnTable counts a device's connections by reason (initial, reconnect,
// token_renewal).
type ConnTable [numReasons]uint64

// Total is every connection the device opened.
func (t ConnTable) Total() uint64 { return t[0] + t[1] + t[2] }

func (t ConnTable) MarshalJSON() ([]byte, error) { return marshalNamed(reasonNames, t[:]), nil }
func (t *ConnTable) UnmarshalJSON(b []byte) error {
	*t = ConnTable{}
	return unmarshalNamed(b, reasonNames, t[:], "connection reason")
}

// CountTable is a device's counters in the order of metrics.Counts.
type CountTable [numCounts]uint64

// Get reads one counter.
func (t *CountTable) Get(c metrics.Count) uint64 {
	if c < 0 || int(c) >= numCounts {
		return 0
	}
	return t[c]
}

func (t CountTable) MarshalJSON() ([]byte, error) { return marshalNamed(countNames, t[:]), nil }
func (t *CountTable) UnmarshalJSON(b []byte) error {
	*t = CountTable{}
	return unmarshalNamed(b, countNames, t[:], "count")
}

// StateTable is a number of devices per state, in the order of metrics.States.
type StateTable [numStates]uint64

func (t StateTable) MarshalJSON() ([]byte, error) { return marshalNamed(stateNames, t[:]), nil }
func (t *StateTable) UnmarshalJSON(b []byte) error {
	*t = StateTable{}
	return unmarshalNamed(b, stateNames, t[:], "device state")
}

// RadioTable is time per radio state in nanoseconds, in the order of
// network.RadioStates.
type RadioTable [numRadioStates]uint64

func (t RadioTable) MarshalJSON() ([]byte, error) { return marshalNamed(radioNames, t[:]), nil }
func (t *RadioTable) UnmarshalJSON(b []byte) error {
	*t = RadioTable{}
	return unmarshalNamed(b, radioNames, t[:], "radio state")
}

func marshalNamed(names []string, vals []uint64) []byte {
	if b := appendNamed(nil, names, vals); b != nil {
		return b
	}
	return []byte("{}")
}

// appendNamed appends {"name": n, …} for the non-zero values, or nothing at
// all when every value is zero.
func appendNamed(b []byte, names []string, vals []uint64) []byte {
	first := true
	for i, v := range vals {
		if v == 0 {
			continue
		}
		if first {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, names[i])
		b = append(b, ':')
		b = strconv.AppendUint(b, v, 10)
	}
	if first {
		return b
	}
	return append(b, '}')
}

func unmarshalNamed(data []byte, names []string, vals []uint64, what string) error {
	var m map[string]uint64
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for k, v := range m {
		i, err := indexOf(names, k, what)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	return nil
}

func indexOf(names []string, name, what string) (int, error) {
	for i, n := range names {
		if n == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, name)
}
