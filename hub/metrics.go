package hub

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the hub's counters in the Prometheus text format, so a
// person or a script can see what the emulator received without reading logs.
func metricsHandler(h *Hub) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(hubCollector{h}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("catmsim_hub_"+name, help, labels, nil)
}

var (
	descConnections   = desc("connections", "Live device connections.", "protocol")
	descConnects      = desc("connects_total", "Device connections opened.", "protocol")
	descReconnects    = desc("reconnects_total", "Connections of identities that had connected before.", "protocol")
	descD2CMessages   = desc("d2c_messages_total", "Device-to-cloud messages accepted.", "protocol")
	descD2CBytes      = desc("d2c_bytes_total", "Size of accepted device-to-cloud messages, as IoT Hub counts it.", "protocol")
	descDevMessages   = desc("device_d2c_messages_total", "Device-to-cloud messages accepted, per device.", "protocol", "device")
	descDevBytes      = desc("device_d2c_bytes_total", "Size of accepted device-to-cloud messages, per device.", "protocol", "device")
	descRejects       = desc("rejects_total", "Operations refused, by IoT Hub error code.", "reason")
	descAuthFailures  = desc("auth_failures_total", "Failed authentications.")
	descTokenExpiries = desc("token_expiries_total", "Connections closed because their SAS token expired.")
	descTokenRenewals = desc("token_renewals_total", "SAS tokens renewed on a live connection.")
	descC2D           = desc("c2d_total", "Cloud-to-device messages, by what happened to them.", "outcome")
	descMethods       = desc("methods_total", "Direct-method calls, by result.", "result")
	descTwin          = desc("twin_operations_total", "Twin operations.", "operation")
	descStored        = desc("stored_messages", "Messages in the store, all time.")
	descIdentities    = desc("registered_identities", "Devices and modules in the registry.")
)

type hubCollector struct{ h *Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descConnects, descReconnects, descD2CMessages, descD2CBytes, descDevMessages, descDevBytes,
		descRejects, descAuthFailures, descTokenExpiries, descTokenRenewals, descC2D, descMethods, descTwin, descStored, descIdentities} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range Protocols {
		ps := st.Protocols[p]
		gauge(descConnections, float64(ps.Connections), string(p))
		counter(descConnects, ps.Connects, string(p))
		counter(descReconnects, ps.Reconnects, string(p))
		counter(descD2CMessages, ps.Messages, string(p))
		counter(descD2CBytes, ps.MessageBytes, string(p))
	}
	for id, d := range st.Devices {
		for p, n := range d.Messages {
			counter(descDevMessages, n, string(p), id.String())
			counter(descDevBytes, d.MessageBytes[p], string(p), id.String())
		}
	}
	for code, n := range st.Rejects {
		counter(descRejects, n, string(code))
	}
	counter(descAuthFailures, st.AuthFailures)
	counter(descTokenExpiries, st.TokenExpiries)
	counter(descTokenRenewals, st.TokenRenewals)
	for k, v := range st.C2D {
		counter(descC2D, v, k)
	}
	for k, v := range st.Methods {
		counter(descMethods, v, k)
	}
	for k, v := range st.Twin {
		counter(descTwin, v, k)
	}
	gauge(descStored, float64(st.StoredMessages))
	gauge(descIdentities, float64(st.RegisteredCount))
}
