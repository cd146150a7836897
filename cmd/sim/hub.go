package main

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/sas"
)

// envGroupKey fixes the emulator's group key, so device keys are reproducible
// across runs without putting the key on the command line.
const envGroupKey = "CATMSIM_GROUP_KEY"

// hubInfo is what --info writes, for scripts and CI jobs that start the emulator
// and then point clients at it.
type hubInfo struct {
	HostName                string            `json:"hostname"`
	CAFile                  string            `json:"ca_file"`
	GroupKey                string            `json:"group_key"`
	ServiceConnectionString string            `json:"service_connection_string"`
	Endpoints               hub.Endpoints     `json:"endpoints"`
	Devices                 map[string]string `json:"device_connection_strings"`
}

func (a *app) hubCommand() *cobra.Command {
	var (
		hostName, listen, groupKey, caFile, infoFile, logFormat string
		mqttPort, amqpPort, httpsPort, metricsPort              int
		devices                                                 []string
		tlsMin, tlsMax, tier                                    string
		units                                                   int
		noResumption, quiet                                     bool
	)
	cmd := &cobra.Command{
		Use:     "hub",
		GroupID: "tools",
		Short:   "Run the IoT Hub emulator on its own",
		Long: `Run the IoT Hub emulator standalone on loopback, for devices and service SDKs under test.

It listens on the standard ports when they are free (MQTT 8883; AMQP 5671; HTTPS and WebSockets 443)
and on free ports otherwise, prints its endpoints, the CA file clients must trust, and ready-to-use device
connection strings (with GatewayHostName when a port is not the standard one). Any device id is
admitted: its key derives from the hub's group key, as with a DPS symmetric-key group enrollment,
so --group-key (or ` + envGroupKey + `) makes every key reproducible. Connections and messages are
logged on standard error, and Prometheus metrics are served on their own port. With --tier the
emulator throttles like a hub of that tier and unit count: a burst passes, then requests queue
(latency grows), then they are refused with the hub's throttling answer. Ctrl-C stops it.`,
		Example: `  # Start it and use the printed connection string in a device
  sim hub

  # Reproducible keys and a JSON file for scripts
  sim hub --group-key "$(head -c 32 /dev/urandom | base64)" --info hub.json
  jq -r .device_connection_strings.\"device-1\" hub.json

  # Throttle like a one-unit S1 hub
  sim hub --tier S1 --units 1

  # Trust its CA from Node.js and mosquitto
  NODE_EXTRA_CA_CERTS=/path/from/output/ca.pem node device.js
  mosquitto_pub --cafile /path/from/output/ca.pem ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gk, err := a.groupKey(groupKey)
			if err != nil {
				return err
			}
			topts := hub.TLSOptions{DisableResumption: noResumption}
			if topts.MinVersion, err = tlsVersion("--tls-min", tlsMin); err != nil {
				return err
			}
			if topts.MaxVersion, err = tlsVersion("--tls-max", tlsMax); err != nil {
				return err
			}
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			var handler slog.Handler = slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})
			switch logFormat {
			case "text":
			case "json":
				handler = slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level})
			default:
				return usageErrorf("--log-format must be text or json (got %q)", logFormat)
			}
			logger := slog.New(handler)
			hcfg := hub.Config{HostName: hostName, GroupKey: gk, PerDeviceStats: true, Logger: logger}
			if tier != "" {
				t, err := hub.ParseTier(tier)
				if err != nil {
					return usageErrorf("--tier: %v", err)
				}
				q, err := hub.NewQuota(hub.QuotaConfig{Tier: t, Units: units})
				if err != nil {
					return usageErrorf("--tier %s --units %d: %v", tier, units, err)
				}
				hcfg.Throttler = q
			}
			cfg := hub.ServerConfig{
				Hub:            hcfg,
				ListenHost:     listen,
				MQTTPort:       mqttPort,
				AMQPPort:       amqpPort,
				HTTPSPort:      httpsPort,
				MetricsPort:    metricsPort,
				TLS:            topts,
				ConnectTimeout: 30 * time.Second,
			}
			// A port flag left at its standard default means "standard if free";
			// one the user set must be bound exactly.
			if !cmd.Flags().Changed("mqtt-port") && !cmd.Flags().Changed("https-port") && !cmd.Flags().Changed("amqp-port") {
				cfg.PreferStandardPorts = true
				cfg.MQTTPort, cfg.AMQPPort, cfg.HTTPSPort = 0, 0, 0
			} else if !cmd.Flags().Changed("amqp-port") {
				// Other ports were chosen: AMQP, left at its default, takes a
				// free port rather than failing when 5671 is taken.
				cfg.AMQPPort = 0
			}
			return a.runHub(cmd.Context(), cfg, gk, caFile, infoFile, devices, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&hostName, "host-name", "localhost", "the hub's name, used in tokens, MQTT usernames and connection strings")
	f.StringVar(&listen, "listen", "127.0.0.1", "loopback address to listen on")
	f.IntVar(&mqttPort, "mqtt-port", hub.StandardMQTTPort, "MQTT over TLS port (0: any free port)")
	f.IntVar(&amqpPort, "amqp-port", hub.StandardAMQPPort, "AMQP over TLS port (0: any free port, -1: off)")
	f.IntVar(&httpsPort, "https-port", hub.StandardHTTPSPort, "HTTPS and WebSocket port (0: any free port)")
	f.IntVar(&metricsPort, "metrics-port", 0, "Prometheus metrics port (0: any free port, -1: off)")
	f.StringVar(&groupKey, "group-key", "", "base64 group key that device keys derive from (default $"+envGroupKey+", else random)")
	f.StringSliceVar(&devices, "device", []string{"device-1"}, "device ids to print connection strings for (any id connects)")
	f.StringVar(&caFile, "ca-file", "", "where to write the CA certificate clients must trust (default: a temporary file)")
	f.StringVar(&infoFile, "info", "", "write endpoints, CA file, keys and connection strings to this JSON file")
	f.StringVar(&tlsMin, "tls-min", "1.2", "lowest TLS version offered (1.2 or 1.3)")
	f.StringVar(&tlsMax, "tls-max", "1.3", "highest TLS version offered (1.2 or 1.3)")
	f.BoolVar(&noResumption, "no-resumption", false, "refuse TLS session resumption, as IoT Hub does")
	f.StringVar(&tier, "tier", "", "throttle like an IoT Hub of this tier: free, B1, B2, B3, S1, S2 or S3 (default: no throttling)")
	f.IntVar(&units, "units", 1, "number of units of the --tier")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.BoolVarP(&quiet, "quiet", "q", false, "log warnings only, not every connection and message")
	return cmd
}

func (a *app) groupKey(flag string) ([]byte, error) {
	s := flag
	if s == "" {
		s = a.env[envGroupKey]
	}
	if s == "" {
		k := make([]byte, 32)
		if _, err := io.ReadFull(cryptorand.Reader, k); err != nil {
			return nil, fmt.Errorf("making a group key: %w", err)
		}
		return k, nil
	}
	k, err := sas.DecodeKey(s)
	if err != nil {
		return nil, usageErrorf("--group-key: %v", err)
	}
	return k, nil
}

func tlsVersion(flag, v string) (uint16, error) {
	switch v {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, usageErrorf("%s must be 1.2 or 1.3 (got %q)", flag, v)
}

func (a *app) runHub(ctx context.Context, cfg hub.ServerConfig, gk []byte, caFile, infoFile string, devices []string, logger *slog.Logger) error {
	srv, err := hub.Start(ctx, cfg)
	if err != nil {
		return withCode(exitFailure, fmt.Errorf("starting the emulator: %w", err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			logger.Warn("emulator did not stop cleanly", "error", err)
		}
	}()
	if caFile == "" {
		dir, err := os.MkdirTemp("", "catmsim-hub-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		caFile = filepath.Join(dir, "ca.pem")
	}
	if err := srv.Chain().WriteCAFile(caFile); err != nil {
		return err
	}
	info, err := describeHub(srv, gk, caFile, devices)
	if err != nil {
		return err
	}
	if infoFile != "" {
		b, _ := json.MarshalIndent(info, "", "  ")
		if err := os.WriteFile(infoFile, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("writing --info: %w", err)
		}
	}
	printHub(a.stdout, info, devices)

	events, stop := srv.Hub.Subscribe(1024)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(a.stdout, "stopping the emulator")
			return nil
		case e := <-events:
			switch e.Kind {
			case hub.EventTelemetry:
				logger.Info("telemetry", "identity", e.Identity.String(), "protocol", string(e.Protocol), "bytes", e.Bytes, "seq", e.Seq)
			case hub.EventC2DCompleted, hub.EventC2DAbandoned, hub.EventC2DRejected, hub.EventC2DExpired, hub.EventMethodResult, hub.EventTwinReported, hub.EventTwinDesired:
				logger.Info(string(e.Kind), "identity", e.Identity.String(), "detail", e.Detail)
			}
		}
	}
}

func describeHub(srv *hub.Server, gk []byte, caFile string, devices []string) (hubInfo, error) {
	h := srv.Hub
	svc, err := h.ServiceConnectionString("iothubowner")
	if err != nil {
		return hubInfo{}, err
	}
	info := hubInfo{HostName: h.HostName(), CAFile: caFile, GroupKey: sas.EncodeKey(gk), ServiceConnectionString: svc, Endpoints: srv.Endpoints(), Devices: map[string]string{}}
	// Clients find the hub by HostName on the standard ports; on other ports a
	// GatewayHostName carries the address and port the socket must use.
	gateway := ""
	if srv.MQTTPort() != hub.StandardMQTTPort {
		gateway = "127.0.0.1:" + strconv.Itoa(srv.MQTTPort())
	}
	for _, d := range devices {
		cs, err := h.DeviceConnectionString(d, gateway)
		if err != nil {
			return hubInfo{}, usageErrorf("--device %q: %v", d, err)
		}
		info.Devices[d] = cs
	}
	return info, nil
}

func printHub(w io.Writer, info hubInfo, devices []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "catmsim IoT Hub emulator %s\n", info.HostName)
	row := func(name, v string) {
		if v != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", name, v)
		}
	}
	row("MQTT", info.Endpoints.MQTT)
	row("MQTT/WebSocket", info.Endpoints.MQTTWS)
	row("AMQP", info.Endpoints.AMQP)
	row("AMQP/WebSocket", info.Endpoints.AMQPWS)
	row("HTTPS", info.Endpoints.HTTPS)
	row("metrics", info.Endpoints.Metrics)
	row("CA file", info.CAFile)
	row("group key", info.GroupKey)
	row("service", info.ServiceConnectionString)
	tw.Flush()
	fmt.Fprintln(w, "Device connection strings (any device id connects; its key derives from the group key):")
	for _, d := range devices {
		fmt.Fprintln(w, "  "+info.Devices[d])
	}
	if hp, ok := strings.CutPrefix(info.Endpoints.AMQP, "amqps://"); ok && !strings.HasSuffix(hp, ":"+strconv.Itoa(hub.StandardAMQPPort)) {
		fmt.Fprintln(w, "AMQP devices (the SDKs dial GatewayHostName, port 5671 unless it names one): use GatewayHostName="+hp)
	}
	fmt.Fprintln(w, "Trust the CA file in clients (NODE_EXTRA_CA_CERTS, --cafile). Press Ctrl-C to stop.")
}
