package reports

import (
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/network"
)

// csvHeader lists devices.csv's columns. Byte columns are measured totals;
// "projected_" columns are scaled to a day or a 30-day month.
func csvHeader() []string {
	h := []string{"index", "id", "group", "profile", "protocol", "state", "elapsed_s"}
	for _, l := range layerNames {
		h = append(h, l+"_up", l+"_down")
	}
	for _, c := range classNames {
		h = append(h, "ip_"+c)
	}
	for _, rn := range reasonNames {
		h = append(h, "connections_"+rn)
	}
	h = append(h, countNames...)
	return append(h, "errors", "last_error", "last_acked", "charge_mah",
		"projected_ip_bytes_per_day", "projected_ip_bytes_per_month", "projected_billed_bytes_per_month",
		"data_plan_bytes_per_month", "projected_budget_use", "over_budget", "projected_mah_per_day", "projected_battery_life_days")
}

// WriteCSV writes devices.csv: one row per device, for spreadsheets and for
// finding the devices behind an average.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader()); err != nil {
		return err
	}
	plans := map[string]int64{}
	for _, p := range r.Meta.Profiles {
		plans[p.Name] = p.DataPlan
	}
	row := make([]string, 0, len(csvHeader()))
	for i := range r.Devices {
		d := &r.Devices[i]
		row = append(row[:0], strconv.Itoa(d.Index), d.ID, d.Group, d.Profile, d.Protocol, d.State, fmtFloat(d.Elapsed.Seconds()))
		for _, l := range network.Layers() {
			row = append(row, u(sumRow(&d.Bytes[l][network.Up])), u(sumRow(&d.Bytes[l][network.Down])))
		}
		for c := range numClasses {
			row = append(row, u(d.Bytes.classTotal(network.LayerIP, c)))
		}
		for _, n := range d.Connections {
			row = append(row, u(n))
		}
		for _, n := range d.Counts {
			row = append(row, u(n))
		}
		var errs []string
		for _, k := range slices.Sorted(maps.Keys(d.Errors)) {
			errs = append(errs, fmt.Sprintf("%s:%d", k, d.Errors[k]))
		}
		charge := ""
		if d.Energy != nil {
			charge = fmtFloat(d.Energy.ChargeMAh)
		}
		plan := d.DataPlan
		if plan == 0 {
			plan = plans[d.Profile]
		}
		pj := &d.Projected
		use, over := "", ""
		if plan > 0 {
			use, over = fmtFloat(pj.BudgetUse), strconv.FormatBool(pj.OverBudget)
		}
		row = append(row, strings.Join(errs, ";"), d.LastError, strconv.FormatInt(d.LastAcked, 10), charge,
			fmtFloat(pj.BytesPerDay.IP), fmtFloat(pj.IPBytesPerMonth), fmtFloat(pj.BilledPerMonth),
			strconv.FormatInt(plan, 10), use, over, fmtFloat(pj.MAhPerDay), fmtFloat(pj.BatteryLifeDays))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// fmtFloat writes a number to at most four decimals.
func fmtFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes junit.xml: one test case per threshold, failed with the
// observed value against the limit, so CI shows each threshold as a test.
func WriteJUnit(w io.Writer, r *Report) error {
	m := &r.Meta
	s := junitSuite{
		Name: "thresholds: " + m.Scenario, Tests: len(r.Thresholds),
		Time:      strconv.FormatFloat(m.Duration.Seconds(), 'f', 3, 64),
		Timestamp: m.Started.UTC().Format(time.RFC3339),
		Properties: []junitProperty{
			{"run_id", m.RunID}, {"scenario", m.Scenario}, {"seed", strconv.FormatUint(m.Seed, 10)},
			{"shards", shardText(m)}, {"target", m.Target}, {"devices", strconv.Itoa(r.Summary.Devices)},
		},
	}
	for _, t := range r.Thresholds {
		c := junitCase{Name: t.Threshold.Key().String() + " " + t.Threshold.Source, Classname: "catmsim." + m.Scenario + ".thresholds", Time: "0"}
		if !t.Pass {
			s.Failures++
			observed := "no data"
			if !t.NoData {
				if mt, ok := lookupMetric(t.Threshold.Metric); ok {
					observed = formatValue(mt, t.Threshold.Agg, t.Observed)
				}
			}
			c.Failure = &junitFailure{
				Message: fmt.Sprintf("observed %s, limit %s", observed, t.Threshold.Source),
				Type:    "threshold",
				Text:    t.Message,
			}
		}
		s.Cases = append(s.Cases, c)
	}
	doc := junitSuites{Name: "catmsim", Tests: s.Tests, Failures: s.Failures, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
