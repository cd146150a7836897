package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/catmsim/catmsim/sas"
	"github.com/spf13/cobra"
)

// Environment variables the sas commands read when a flag is not given, so keys
// stay out of shell history and process listings.
const (
	envConnectionString = "CATMSIM_CONNECTION_STRING"
	envKey              = "CATMSIM_SAS_KEY"
	envToken            = "CATMSIM_SAS_TOKEN"
)

func (a *app) sasCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "sas",
		GroupID: "tools",
		Short:   "Make and check SAS tokens",
		Long: `Make shared access signature (SAS) tokens exactly as the Azure IoT SDKs do, and check a token
the way IoT Hub does, saying why it is or is not valid: a signature that does not match the key
(and the common signing mistakes behind it), an expiry in the past — shown in both the Unix and
the MicroPython epoch-2000 clock — or a token scoped to another device.`,
	}
	c.AddCommand(a.sasTokenCommand(), a.sasVerifyCommand())
	return c
}

func (a *app) sasTokenCommand() *cobra.Command {
	var (
		connStr, policy, resource string
		ttl                       time.Duration
		expiry, now               int64
		verbose                   bool
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a SAS token for a connection string",
		Long: `Print a SAS token for the device, module, service policy or Event Hubs entity that a
connection string names. The token is the only thing written to standard output, so it can be
captured by a script; --verbose explains it on standard error.

The connection string comes from --connection-string or, when that is not given, from the
` + envConnectionString + ` environment variable.`,
		Example: `  # A device token valid for one hour
  sim sas token --connection-string "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=..."

  # Valid for a day, explained on stderr
  export ` + envConnectionString + `="HostName=...;DeviceId=dev1;SharedAccessKey=..."
  sim sas token --ttl 24h --verbose

  # A fixed expiry, as a Unix time
  sim sas token --expiry 1893456000

  # A device token signed with the hub's "device" policy key instead of the device key
  sim sas token --connection-string "HostName=myhub...;DeviceId=dev1;SharedAccessKey=<device policy key>" --policy device`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := a.connectionString(connStr)
			if err != nil {
				return err
			}
			if cs.X509 {
				return usageErrorf("this connection string authenticates with an X.509 certificate (x509=true): there is no key to sign a token with")
			}
			if cs.SharedAccessSignature != "" {
				return usageErrorf("this connection string carries a ready-made token (SharedAccessSignature) and no key: there is nothing to sign; check that token with 'sim sas verify'")
			}
			key, err := cs.Key()
			if err != nil {
				return usageErrorf("%v", err)
			}
			if policy != "" {
				cs.SharedAccessKeyName = policy
			}
			if cs.Kind() == sas.KindEventHubs && cs.SharedAccessKeyName == "" {
				return usageErrorf("an Event Hubs token needs a policy name (--policy)")
			}
			res := cs.Resource()
			if resource != "" {
				res = resource
			}
			clock := time.Now()
			if cmd.Flags().Changed("now") {
				clock = time.Unix(now, 0)
			}
			exp := clock.Add(ttl)
			if cmd.Flags().Changed("expiry") {
				exp = time.Unix(expiry, 0)
			} else if ttl <= 0 {
				return usageErrorf("--ttl must be positive (got %s)", ttl)
			}
			tok := sas.Sign(res, key, cs.SharedAccessKeyName, exp)
			if verbose {
				describeToken(a.stderr, tok, clock)
			}
			_, err = fmt.Fprintln(a.stdout, tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&connStr, "connection-string", "c", "", "device, module, service or Event Hubs connection string (default $"+envConnectionString+")")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid")
	f.Int64Var(&expiry, "expiry", 0, "absolute expiry as Unix seconds, instead of --ttl")
	f.StringVar(&policy, "policy", "", "sign as this shared access policy (sets skn); the key must be that policy's key")
	f.StringVar(&resource, "resource", "", "sign for this resource URI instead of the one the connection string names")
	f.BoolVarP(&verbose, "verbose", "v", false, "explain the token on standard error")
	f.Int64Var(&now, "now", 0, "take this Unix time as the current time")
	_ = f.MarkHidden("now")
	cmd.MarkFlagsMutuallyExclusive("ttl", "expiry")
	return cmd
}

func (a *app) connectionString(flag string) (sas.ConnectionString, error) {
	s := flag
	if s == "" {
		s = a.env[envConnectionString]
	}
	if s == "" {
		return sas.ConnectionString{}, usageErrorf("no connection string: pass --connection-string or set %s", envConnectionString)
	}
	cs, err := sas.Parse(s)
	if err != nil {
		return cs, usageErrorf("%v", err)
	}
	return cs, nil
}

func (a *app) sasVerifyCommand() *cobra.Command {
	var (
		token, key, connStr, resource, policy string
		now                                   int64
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Explain why a SAS token is or is not valid",
		Long: `Check a SAS token the way IoT Hub checks it and explain the verdict, line by line: the
resource it is scoped to, which kind of key signed it, whether the signature matches the key
(and, when it does not, which common signing mistake would explain it), when it expires — in
human terms and in both the Unix and MicroPython epoch-2000 clocks — and whether it covers the
resource being accessed.

The token comes from --token (or "-" to read it from standard input) or ` + envToken + `; the key
from --key, from the connection string's key (--connection-string), or from ` + envKey + `.
Exits 0 when the token is valid and 1 when it is not.`,
		Example: `  # Is this device's token any good?
  sim sas verify --token "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=...&se=1735689600" --key "$DEVICE_KEY"

  # ... and does it give access to dev1's telemetry?
  sim sas verify --token "$TOKEN" --key "$DEVICE_KEY" --resource myhub.azure-devices.net/devices/dev1

  # Key and resource from the device's connection string, token from a file
  sim sas verify --connection-string "$DEVICE_CS" --token - < token.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := a.readToken(token)
			if err != nil {
				return err
			}
			k, res, err := a.verifyKey(key, connStr, resource)
			if err != nil {
				return err
			}
			clock := time.Now()
			if cmd.Flags().Changed("now") {
				clock = time.Unix(now, 0)
			}
			if !explainVerify(a.stdout, tok, k, res, policy, clock) {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&token, "token", "t", "", `the token, or "-" to read it from standard input (default $`+envToken+`)`)
	f.StringVarP(&key, "key", "k", "", "base64 key the token should be signed with (default $"+envKey+")")
	f.StringVarP(&connStr, "connection-string", "c", "", "take the key, and the resource unless --resource is given, from this connection string")
	f.StringVar(&resource, "resource", "", "check that the token covers this resource, e.g. myhub.azure-devices.net/devices/dev1")
	f.StringVar(&policy, "policy", "", "the shared access policy the key belongs to; the token's skn must name it")
	f.Int64Var(&now, "now", 0, "take this Unix time as the current time")
	_ = f.MarkHidden("now")
	cmd.MarkFlagsMutuallyExclusive("key", "connection-string")
	return cmd
}

func (a *app) readToken(flag string) (string, error) {
	switch {
	case flag == "-":
		b, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
		if err != nil {
			return "", fmt.Errorf("reading the token from standard input: %w", err)
		}
		flag = strings.TrimSpace(string(b))
	case flag == "":
		flag = a.env[envToken]
	}
	if flag == "" {
		return "", usageErrorf("no token: pass --token (or --token - to read standard input) or set %s", envToken)
	}
	return flag, nil
}

func (a *app) verifyKey(key, connStr, resource string) ([]byte, string, error) {
	if connStr != "" {
		cs, err := a.connectionString(connStr)
		if err != nil {
			return nil, "", err
		}
		k, err := cs.Key()
		if err != nil {
			return nil, "", usageErrorf("the connection string has no key to check the token with: %v", err)
		}
		if resource == "" {
			resource = cs.Resource()
		}
		return k, resource, nil
	}
	if key == "" {
		key = a.env[envKey]
	}
	if key == "" {
		return nil, "", usageErrorf("no key: pass --key, --connection-string, or set %s", envKey)
	}
	k, err := sas.DecodeKey(key)
	if err != nil {
		return nil, "", usageErrorf("--key: %v", err)
	}
	return k, resource, nil
}

// explainVerify writes the verdict and one line per check, and reports whether
// the token is valid. Every check runs even after one fails, because a user
// fixing a token wants to know everything that is wrong with it.
func explainVerify(w io.Writer, token string, key []byte, resource, policy string, now time.Time) bool {
	t, err := sas.ParseToken(token)
	if err != nil {
		fmt.Fprintf(w, "token is INVALID: %v\n", err)
		return false
	}
	var problems []error
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", name, fmt.Sprintf(format, args...))
	}
	var lines []func()
	add := func(f func()) { lines = append(lines, f) }

	add(func() {
		if t.RawResource != t.Resource {
			line("resource", "%s (sr as sent: %s)", t.Resource, t.RawResource)
		} else {
			line("resource", "%s (sr sent unencoded)", t.Resource)
		}
	})
	switch {
	case t.KeyName == "":
		add(func() { line("key", "a device or module key (no skn)") })
	default:
		add(func() { line("key", "shared access policy %q (skn)", t.KeyName) })
	}
	if policy != "" && t.KeyName != policy {
		e := &sas.UnknownPolicyError{Name: t.KeyName}
		problems = append(problems, e)
		add(func() { line("policy", "FAIL: the key belongs to policy %q but the token names %q", policy, t.KeyName) })
	}
	if err := sas.CheckSignature(t, key); err != nil {
		problems = append(problems, err)
		add(func() { line("signature", "FAIL: %v", err) })
	} else {
		add(func() { line("signature", "ok: matches the key") })
	}
	exp := t.Expiry
	clocks := fmt.Sprintf("se=%d Unix; %d in MicroPython's epoch-2000 clock", exp.Unix(), exp.Unix()-sas.Epoch2000Offset)
	if err := sas.CheckExpiry(t, now); err != nil {
		problems = append(problems, err)
		hint := sas.ClockHint(exp, now)
		add(func() {
			line("expiry", "FAIL: expired %s ago, at %s (%s)", sas.HumanDuration(now.Sub(exp)), exp.Format(time.RFC3339), clocks)
			if hint != "" {
				line("", "%s", hint)
			}
		})
	} else {
		hint := sas.ClockHint(exp, now)
		add(func() {
			line("expiry", "ok: %s (%s), valid for another %s", exp.Format(time.RFC3339), clocks, sas.HumanDuration(exp.Sub(now)))
			if hint != "" {
				line("", "warning: %s", hint)
			}
		})
	}
	if resource != "" {
		if !sas.Covers(t.Resource, resource) {
			e := &sas.ResourceError{Audience: t.Resource, Resource: resource}
			problems = append(problems, e)
			add(func() { line("scope", "FAIL: scoped to %s, which does not cover %s", t.Resource, resource) })
		} else {
			add(func() { line("scope", "ok: covers %s", resource) })
		}
	}
	switch len(problems) {
	case 0:
		fmt.Fprintln(w, "token is VALID")
	case 1:
		fmt.Fprintf(w, "token is INVALID: %v\n", problems[0])
	default:
		fmt.Fprintf(w, "token is INVALID: %d problems, each marked FAIL below\n", len(problems))
	}
	for _, l := range lines {
		l()
	}
	tw.Flush()
	return len(problems) == 0
}

// describeToken explains a freshly signed token for --verbose.
func describeToken(w io.Writer, token string, now time.Time) {
	t, err := sas.ParseToken(token)
	if err != nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "resource\t%s\n", t.Resource)
	if t.KeyName != "" {
		fmt.Fprintf(tw, "policy\t%s\n", t.KeyName)
	} else {
		fmt.Fprintf(tw, "policy\tnone (signed with the identity's own key)\n")
	}
	fmt.Fprintf(tw, "expires\t%s, in %s\n", t.Expiry.Format(time.RFC3339), sas.HumanDuration(t.Expiry.Sub(now)))
	fmt.Fprintf(tw, "se\t%s Unix (%s in MicroPython's epoch-2000 clock)\n", t.RawExpiry, strconv.FormatInt(t.Expiry.Unix()-sas.Epoch2000Offset, 10))
	tw.Flush()
}
