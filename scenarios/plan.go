package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/firmware/examples"
	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/protocols"
)

// PlanOptions choose the slice of the fleet a plan covers.
type PlanOptions struct {
	// Shard and Shards select shard Shard of Shards (0 ≤ Shard < Shards):
	// device i belongs to shard i mod Shards. Zero Shards means one shard, the
	// whole fleet.
	Shard, Shards int
	// Duration, when positive, replaces the scenario's duration (a shorter
	// trial run). Events and arrivals after it simply do not happen.
	Duration Duration
}

// Plan is a compiled scenario: every device of the shard with its id, seed
// and arrival time, the resolved profiles, the drivers, the events with the
// devices they hit, and the parsed thresholds. It is a pure value: compiling
// does no I/O and starts nothing, and the same scenario, seed and options
// give the same plan, byte for byte as JSON. A plan is read-only; it shares
// maps with the scenario it came from.
type Plan struct {
	Name      string
	Seed      uint64
	Duration  Duration
	Shard     int
	Shards    int
	FleetSize int // devices in the whole fleet; Len is this shard's
	Target    Target
	// Profiles are sorted by name; firmware paths are resolved.
	Profiles   []PlanProfile
	Groups     []PlanGroup
	Cloud      PlanCloud
	Events     []PlanEvent
	Thresholds []metricdef.Threshold

	devices []device
}

// PlanProfile is a profile with its name.
type PlanProfile struct {
	Name string `json:"name"`
	Profile
}

// PlanGroup is a fleet group as compiled.
type PlanGroup struct {
	Name    string  `json:"name"`
	Profile string  `json:"profile"`
	Count   int     `json:"count"`
	First   int     `json:"first"` // global index of its first device
	Arrival Arrival `json:"arrival"`
	// FirstID and LastID are the ids of its first and last device.
	FirstID string `json:"first_id"`
	LastID  string `json:"last_id"`

	profile int // index in Plan.Profiles
	ids     idPattern
}

// PlanCloud are the drivers with the groups each one reaches: "all" becomes
// every group whose protocol can receive what the driver sends.
type PlanCloud struct {
	C2D           *C2DDriver     `json:"c2d,omitempty"`
	C2DGroups     []string       `json:"c2d_groups,omitempty"`
	Methods       *MethodDriver  `json:"methods,omitempty"`
	MethodGroups  []string       `json:"method_groups,omitempty"`
	Desired       *DesiredDriver `json:"desired,omitempty"`
	DesiredGroups []string       `json:"desired_groups,omitempty"`
}

// PlanEvent is an event with the devices it hits.
type PlanEvent struct {
	At       Duration `json:"at"`
	Kind     string   `json:"kind"`
	Duration Duration `json:"duration,omitempty"`
	Group    string   `json:"group,omitempty"`
	Fraction Percent  `json:"fraction,omitempty"`
	// Selected is how many devices of the whole fleet the outage hits;
	// Devices are the global indices of those in this shard, ascending.
	Selected int      `json:"selected,omitempty"`
	Devices  []uint32 `json:"devices,omitempty"`
}

// device is one device, kept small: a plan for a large fleet holds many. Ids
// are formatted when asked for.
type device struct {
	seed    uint64
	arrival time.Duration
	index   uint32 // global
	group   uint16
}

// Device is one device of the plan.
type Device struct {
	Index      int    `json:"index"`       // global index in the fleet
	GroupIndex int    `json:"group_index"` // index within its group, as in its id
	ID         string `json:"id"`
	Group      string `json:"group"`
	Profile    string `json:"profile"`
	// Seed seeds the device's own random generator (see Rand).
	Seed uint64 `json:"seed,string"`
	// Arrival is when the device first connects, from the start of the run.
	Arrival Duration `json:"arrival"`
}

// Rand returns the device's own random generator: payload values, jitter and
// back-off draws come from it, so the device behaves the same in every run
// with the same seed whatever the others do.
func (d Device) Rand() *rand.Rand { return rand.New(rand.NewPCG(d.Seed, uint64(d.Index))) }

// Len is the number of devices in the plan's shard.
func (p *Plan) Len() int { return len(p.devices) }

// Device returns the i-th device of the shard (0 ≤ i < Len), in global index
// order.
func (p *Plan) Device(i int) Device {
	d := p.devices[i]
	g := &p.Groups[d.group]
	gi := int(d.index) - g.First
	return Device{
		Index: int(d.index), GroupIndex: gi, ID: g.ids.id(gi), Group: g.Name,
		Profile: g.Profile, Seed: d.seed, Arrival: Duration(d.arrival),
	}
}

// Devices iterates over the shard's devices.
func (p *Plan) Devices() iter.Seq[Device] {
	return func(yield func(Device) bool) {
		for i := range p.devices {
			if !yield(p.Device(i)) {
				return
			}
		}
	}
}

// Profile returns the named profile, or nil.
func (p *Plan) Profile(name string) *PlanProfile {
	i, ok := slices.BinarySearchFunc(p.Profiles, name, func(pp PlanProfile, n string) int {
		return strings.Compare(pp.Name, n)
	})
	if !ok {
		return nil
	}
	return &p.Profiles[i]
}

// Random streams: each kind of draw has its own, so adding a draw of one kind
// never shifts another's values.
const (
	streamDevice  = 0x64657669_63650001
	streamArrival = 0x61727269_76610002
	streamOutage  = 0x6f757461_67650003
)

// mix is SplitMix64's finaliser: a bijection that spreads nearby inputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// deviceSeed derives a device's seed from the scenario seed and its global
// index.
func deviceSeed(seed uint64, index int) uint64 {
	return mix(mix(seed^streamDevice) + 0x9e3779b97f4a7c15*uint64(index+1))
}

// Compile turns a scenario from Load or Parse into the plan of one shard.
func Compile(s *Scenario, opts PlanOptions) (*Plan, error) {
	if s == nil {
		return nil, errors.New("compiling a plan: no scenario")
	}
	shards := opts.Shards
	if shards == 0 {
		shards = 1
	}
	if shards < 0 || opts.Shard < 0 || opts.Shard >= shards {
		return nil, fmt.Errorf("compiling a plan: shard %d of %d: the shard must be from 0 to %d", opts.Shard, shards, shards-1)
	}
	p := &Plan{
		Name: s.Name, Seed: s.Seed, Duration: s.Duration, Shard: opts.Shard, Shards: shards,
		Target: s.Target,
	}
	if opts.Duration > 0 {
		p.Duration = opts.Duration
	}
	if p.Target.Tier != "" {
		p.Target.Tier = tiers[normalizeTier(p.Target.Tier)]
	}
	profIndex := map[string]int{}
	for i, name := range s.ProfileNames() {
		pp := PlanProfile{Name: name, Profile: *s.Profiles[name]}
		if pp.Firmware == "" {
			pp.FirmwareLimits = FirmwareLimits{} // nothing to bound: kept out of the plan
		}
		if pp.Firmware != "" && !filepath.IsAbs(pp.Firmware) && s.Dir != "" && !strings.HasPrefix(pp.Firmware, examples.Prefix) {
			pp.Firmware = filepath.Join(s.Dir, pp.Firmware)
		}
		p.Profiles = append(p.Profiles, pp)
		profIndex[name] = i
	}

	total := 0
	for _, g := range s.Fleet {
		if g.Count < 1 {
			return nil, fmt.Errorf("compiling a plan: group %s has %d devices", g.Name, g.Count)
		}
		if g.Count > MaxDevices || total+g.Count > MaxDevices {
			return nil, fmt.Errorf("compiling a plan: the fleet has more than %d devices", MaxDevices)
		}
		total += g.Count
	}
	if len(s.Fleet) > math.MaxUint16 {
		return nil, fmt.Errorf("compiling a plan: %d groups is too many", len(s.Fleet))
	}
	p.FleetSize = total
	p.devices = make([]device, 0, (total-opts.Shard+shards-1)/shards)
	first := 0
	for gi, g := range s.Fleet {
		pi, ok := profIndex[g.Profile]
		if !ok {
			return nil, fmt.Errorf("compiling a plan: group %s names profile %s, which is not defined", g.Name, g.Profile)
		}
		ids, err := compileIDPattern(g.IDPattern, g.Name, s.Seed)
		if err != nil {
			return nil, fmt.Errorf("compiling a plan: group %s: id_pattern %w", g.Name, err)
		}
		p.Groups = append(p.Groups, PlanGroup{
			Name: g.Name, Profile: g.Profile, Count: g.Count, First: first, Arrival: g.Arrival,
			FirstID: ids.id(0), LastID: ids.id(g.Count - 1), profile: pi, ids: ids,
		})
		p.addDevices(s.Seed, gi, g, first)
		first += g.Count
	}
	p.Cloud = p.cloud(s.Cloud)
	for i, e := range s.Events {
		p.Events = append(p.Events, p.event(s.Seed, i, e))
	}
	for _, key := range slices.Sorted(maps.Keys(s.Thresholds)) {
		for _, x := range s.Thresholds[key] {
			th, err := metricdef.Parse(key, x)
			if err != nil {
				return nil, fmt.Errorf("compiling a plan: threshold %s: %w", key, err)
			}
			p.Thresholds = append(p.Thresholds, th)
		}
	}
	return p, nil
}

func normalizeTier(t string) string {
	b := []byte(t)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// maxArrival keeps far-off Poisson arrivals from overflowing; such devices
// never start anyway.
const maxArrival = time.Duration(math.MaxInt64 / 2)

// addDevices appends the shard's devices of group g, whose first device has
// global index first. Arrival times are computed for the whole group, since a
// Poisson arrival depends on all earlier gaps; only the shard's are kept.
func (p *Plan) addDevices(seed uint64, gi int, g *Group, first int) {
	a := g.Arrival
	var rng *rand.Rand
	rate := a.Rate.PerSecond()
	if a.Kind == ArrivalPoisson {
		rng = rand.New(rand.NewPCG(mix(seed^streamArrival), uint64(gi)))
	}
	t := a.At.D()
	for j := range g.Count {
		arrival := a.At.D()
		switch a.Kind {
		case ArrivalRamp:
			// over·j/count, exactly: the product may not fit in 64 bits.
			hi, lo := bits.Mul64(uint64(a.Over), uint64(j))
			q, _ := bits.Div64(hi, lo, uint64(g.Count))
			arrival += time.Duration(q)
		case ArrivalPoisson:
			// The conversion rounds before the addition, so no platform
			// fuses the two and every one computes the same gaps.
			gap := time.Duration(math.Min(float64(rng.ExpFloat64()/rate)*1e9, float64(maxArrival)))
			t = min(t+gap, maxArrival)
			arrival = t
		}
		i := first + j
		if i%p.Shards != p.Shard {
			continue
		}
		p.devices = append(p.devices, device{seed: deviceSeed(seed, i), arrival: arrival, index: uint32(i), group: uint16(gi)})
	}
}

// receivers lists the groups a driver reaches.
func (p *Plan) receivers(to string, can []protocols.Protocol) []string {
	var out []string
	for _, g := range p.Groups {
		if (to == AllDevices || to == g.Name) && protoIn(p.Profiles[g.profile].Protocol, can) {
			out = append(out, g.Name)
		}
	}
	return out
}

func (p *Plan) cloud(c *Cloud) PlanCloud {
	var pc PlanCloud
	if c == nil {
		return pc
	}
	if c.C2D != nil {
		pc.C2D, pc.C2DGroups = c.C2D, p.receivers(c.C2D.To, canC2D)
	}
	if c.Methods != nil {
		pc.Methods, pc.MethodGroups = c.Methods, p.receivers(c.Methods.To, canTwin)
	}
	if c.Desired != nil {
		pc.Desired, pc.DesiredGroups = c.Desired, p.receivers(c.Desired.To, canTwin)
	}
	return pc
}

// event compiles an event. An outage picks round(fraction·n) of the n
// devices in scope by selection sampling (Knuth's algorithm S): one pass,
// each device in turn chosen with probability still-needed/still-left, from a
// generator seeded by the scenario seed and the event's position. The pick
// depends on neither the shard nor the other events.
func (p *Plan) event(seed uint64, k int, e *Event) PlanEvent {
	pe := PlanEvent{At: e.At, Kind: e.Kind}
	if e.Kind != EventOutage {
		return pe
	}
	pe.Duration, pe.Group, pe.Fraction = e.Duration, e.Group, e.Fraction
	lo, hi := 0, p.FleetSize
	if e.Group != "" {
		for _, g := range p.Groups {
			if g.Name == e.Group {
				lo, hi = g.First, g.First+g.Count
			}
		}
	}
	n := hi - lo
	want := int(math.Round(e.Fraction.Fraction() * float64(n)))
	want = max(0, min(want, n))
	pe.Selected = want
	rng := rand.New(rand.NewPCG(mix(seed^streamOutage), uint64(k)))
	for i := lo; i < hi && want > 0; i++ {
		if rng.Uint64N(uint64(hi-i)) < uint64(want) {
			want--
			if i%p.Shards == p.Shard {
				pe.Devices = append(pe.Devices, uint32(i))
			}
		}
	}
	return pe
}

// planJSON is the plan's JSON form.
type planJSON struct {
	Name       string                `json:"name"`
	Seed       uint64                `json:"seed"`
	Duration   Duration              `json:"duration"`
	Shard      int                   `json:"shard"`
	Shards     int                   `json:"shards"`
	FleetSize  int                   `json:"fleet_size"`
	Target     Target                `json:"target"`
	Profiles   []PlanProfile         `json:"profiles"`
	Groups     []PlanGroup           `json:"groups"`
	Cloud      PlanCloud             `json:"cloud"`
	Events     []PlanEvent           `json:"events"`
	Thresholds []metricdef.Threshold `json:"thresholds"`
	Devices    []Device              `json:"devices"`
}

// MarshalJSON writes the whole plan, devices included.
func (p *Plan) MarshalJSON() ([]byte, error) {
	devs := make([]Device, 0, len(p.devices))
	for d := range p.Devices() {
		devs = append(devs, d)
	}
	return json.Marshal(planJSON{
		Name: p.Name, Seed: p.Seed, Duration: p.Duration, Shard: p.Shard, Shards: p.Shards,
		FleetSize: p.FleetSize, Target: p.Target, Profiles: p.Profiles, Groups: p.Groups,
		Cloud: p.Cloud, Events: p.Events, Thresholds: p.Thresholds, Devices: devs,
	})
}

// String summarises the plan in one line.
func (p *Plan) String() string {
	return p.Name + ": " + strconv.Itoa(p.Len()) + " of " + strconv.Itoa(p.FleetSize) + " devices (shard " +
		strconv.Itoa(p.Shard) + "/" + strconv.Itoa(p.Shards) + ") for " + p.Duration.String()
}
