package reports

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
)

// SchemaVersion is the version of report.json this package writes and reads.
// It changes when a field changes meaning or disappears; added fields do not
// change it.
const SchemaVersion = 1

// DefaultBatteryMAh is the battery capacity battery life is projected for when
// a profile does not name one: a common single-cell LiPo for a FiPy or ESP32
// board.
const DefaultBatteryMAh = 2000

// Report is one run's report: what the run was (Meta), what it measured, raw
// (Devices, Latency, Timeline: enough to merge shards exactly), and what that
// adds up to (Summary, Thresholds), which is always computed from the raw part
// by the same function, whether the report was built from a run or merged.
type Report struct {
	SchemaVersion int               `json:"schema_version"`
	Meta          Meta              `json:"meta"`
	Summary       Summary           `json:"summary"`
	Thresholds    []ThresholdResult `json:"thresholds"`
	Devices       []DeviceRow       `json:"devices"`
	Latency       []LatencyHist     `json:"latency"`
	Timeline      Timeline          `json:"timeline"`
}

// Meta says what was run: scenario, seed, shard, when, for how long, against
// what, and the per-profile facts a report needs (data plan, billing, battery).
type Meta struct {
	RunID       string `json:"run_id"`
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	Seed        uint64 `json:"seed,string"`
	// Shard is this report's shard (from 0) of Shards. A merged report lists
	// the shards it holds in Merged, and Shard is the lowest of them.
	Shard  int   `json:"shard"`
	Shards int   `json:"shards"`
	Merged []int `json:"merged_shards,omitempty"`
	// Started is when the run began; Duration is how long it measured. For a
	// merged report, the earliest start and the longest shard.
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Target   string        `json:"target"`
	// Projection is set when the run replayed measured operation costs over
	// virtual time instead of running in real time.
	Projection bool          `json:"projection"`
	Profiles   []ProfileMeta `json:"profiles"`
	// Groups carry each group's schedule, when the run knows it, so that
	// projections replay measured operation costs at the scenario's rates.
	Groups     []GroupMeta `json:"groups,omitempty"`
	Thresholds Thresholds  `json:"thresholds"`
}

// GroupMeta describes a fleet group for projections.
type GroupMeta struct {
	Name     string   `json:"name"`
	Schedule Schedule `json:"schedule"`
}

// Schedule is how often a group's devices do each operation, per device per
// day, as the scenario sets it. Zero means the scenario does not schedule it.
type Schedule struct {
	Telemetry     float64 `json:"telemetry_per_day,omitempty"`      // messages
	C2D           float64 `json:"c2d_per_day,omitempty"`            // messages received
	C2DPolls      float64 `json:"c2d_polls_per_day,omitempty"`      // HTTPS polls
	Methods       float64 `json:"methods_per_day,omitempty"`        // calls answered
	Twin          float64 `json:"twin_per_day,omitempty"`           // desired updates received and reported patches
	TokenRenewals float64 `json:"token_renewals_per_day,omitempty"` // MQTT reconnects to renew a token
	// Connections is how many connections a device opens a day when it opens
	// them as part of its work (HTTPS without keep-alive: one per request);
	// zero for devices that stay connected.
	Connections float64 `json:"connections_per_day,omitempty"`
	// Firmware is set when the group's devices run firmware: what they send
	// and report, and when, is the firmware's decision, which no schedule
	// states, so those bytes scale with the measured time.
	Firmware bool `json:"firmware,omitempty"`
}

// ProfileMeta is what a report needs to know about a device profile.
type ProfileMeta struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Link     string `json:"link"`
	// DataPlan is the SIM's budget in bytes per 30-day month; 0 is no plan.
	DataPlan int64   `json:"data_plan_bytes_per_month"`
	Billing  Billing `json:"billing"`
	// BatteryMAh is the battery battery life is projected for; 0 means
	// DefaultBatteryMAh.
	BatteryMAh float64 `json:"battery_mah,omitempty"`
}

// Billing is how the carrier rounds what it bills (spec: catm-model §5).
type Billing struct {
	// Increment is the billing unit in bytes; 0 bills bytes as counted.
	Increment int64 `json:"increment_bytes"`
	// Per is what is rounded up to the increment: "session" (each data
	// session), "message" (each message) or "month" (the month's total).
	Per string `json:"per,omitempty"`
}

// Billing bases.
const (
	PerSession = "session"
	PerMessage = "message"
	PerMonth   = "month"
)

// Thresholds are the thresholds a run was held to. In JSON each one is its
// key and expression as written, and reading parses them again, so a report
// never carries a threshold the grammar would refuse.
type Thresholds []metricdef.Threshold

type thresholdJSON struct {
	Key  string `json:"key"`
	Expr string `json:"expr"`
}

// MarshalJSON writes each threshold as {"key", "expr"}.
func (t Thresholds) MarshalJSON() ([]byte, error) {
	out := make([]thresholdJSON, len(t))
	for i, th := range t {
		out[i] = thresholdJSON{Key: th.Key().String(), Expr: th.Source}
	}
	return marshal(out, "")
}

// UnmarshalJSON parses each threshold again.
func (t *Thresholds) UnmarshalJSON(b []byte) error {
	var in []thresholdJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := make(Thresholds, 0, len(in))
	for _, x := range in {
		th, err := metricdef.Parse(x.Key, x.Expr)
		if err != nil {
			return fmt.Errorf("threshold %s: %s: %w", x.Key, x.Expr, err)
		}
		out = append(out, th)
	}
	*t = out
	return nil
}

// DeviceRow is one device as measured. Everything in it but Projected is raw;
// Projected is derived from the rest when the report is summarised.
type DeviceRow struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Group    string `json:"group"`
	Profile  string `json:"profile"`
	Protocol string `json:"protocol"`
	// DataPlan is the device's plan in bytes per month (0: none).
	DataPlan int64  `json:"data_plan_bytes_per_month,omitempty"`
	State    string `json:"state"`
	// Elapsed is how long the device's run measured; its bytes per day are
	// its bytes scaled from Elapsed to 24 hours.
	Elapsed     time.Duration `json:"elapsed_ns"`
	Bytes       ByteTable     `json:"bytes"`
	Connections ConnTable     `json:"connections"`
	Counts      CountTable    `json:"counts"`
	// Setup counts the operations of Counts that the device's start-up
	// performed and that recur only when it restarts (what a firmware sent
	// from its init); projections count their share of the bytes once a
	// month. Nil when nothing was set apart.
	Setup     *CountTable       `json:"setup_counts,omitempty"`
	Errors    map[string]uint64 `json:"errors,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	LastAcked int64             `json:"last_acked,omitempty"`
	Energy    *Energy           `json:"energy,omitempty"`
	Projected DeviceProjection  `json:"projected"`
}

// Energy is a device's radio energy as its link measured it.
type Energy struct {
	Elapsed   time.Duration `json:"elapsed_ns"`
	ChargeMAh float64       `json:"charge_mah"`
	TAUs      int           `json:"taus,omitempty"`
	States    RadioTable    `json:"radio_ns"`
}

// DeviceProjection is a device's measurements scaled from the run's measured
// duration to a day and a 30-day month: a projection, not a measurement.
type DeviceProjection struct {
	BytesPerDay     LayerValues `json:"bytes_per_day"`
	IPBytesPerMonth float64     `json:"ip_bytes_per_month"`
	// BilledPerMonth is IPBytesPerMonth rounded as the carrier bills.
	BilledPerMonth float64 `json:"billed_bytes_per_month"`
	// BudgetUse is BilledPerMonth over the data plan (absent without a plan).
	BudgetUse  float64 `json:"budget_use,omitempty"`
	OverBudget bool    `json:"over_budget,omitempty"`
	MAhPerDay  float64 `json:"mah_per_day,omitempty"`
	// BatteryLifeDays is the battery's life at the device's mean draw
	// (absent when nothing was drawn).
	BatteryLifeDays float64 `json:"battery_life_days,omitempty"`

	// cells is the projected bytes per day of every layer, direction and
	// class, from which the figures above and the class tables are summed.
	cells *[numLayers][numDirections][numClasses]float64
}

// LayerValues is one number per layer.
type LayerValues struct {
	Payload  float64 `json:"payload"`
	Protocol float64 `json:"protocol"`
	TLS      float64 `json:"tls"`
	IP       float64 `json:"ip"`
}

// LatencyHist is one HDR latency histogram of a group on a protocol, in
// microseconds.
type LatencyHist struct {
	Group     string       `json:"group"`
	Protocol  string       `json:"protocol"`
	Latency   string       `json:"latency"`
	Histogram HistSnapshot `json:"histogram"`
}

// Timeline is the fleet over time in buckets of equal width: point i is the
// fleet as last sampled before the end of bucket i (carried forward through
// buckets without a sample), so shards' timelines add up point by point.
type Timeline struct {
	Bucket time.Duration   `json:"bucket_ns"`
	Points []TimelinePoint `json:"points"`
}

// TimelinePoint is the fleet at the end of one bucket.
type TimelinePoint struct {
	States  StateTable `json:"states"`
	D2CSent uint64     `json:"d2c_sent"`
	IPBytes uint64     `json:"ip_bytes"`
}
