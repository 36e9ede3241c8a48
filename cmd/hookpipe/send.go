package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hookpipe/hookpipe/plugins/auth"
	"github.com/hookpipe/hookpipe/plugins/examples"
)

// sendCommand posts documented example payloads (or a file) to a running
// hookpipe, authenticated the way each provider authenticates.
func sendCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "send",
		Usage:     "Post provider webhooks to a URL, authenticated as the provider does",
		ArgsUsage: "[example ...]",
		Description: `Posts the example payloads of ControlShift Labs' and The City's webhook documentation
(embedded in this binary) or a file of your own, and prints the status and latency of each request.

   hookpipe send --all                                   # every example of both providers
   hookpipe send --provider thecity --all                # every City example
   hookpipe send --provider controlshift petition.launched signature.created
   hookpipe send --provider thecity --file delivery.json
   hookpipe send --list                                  # names of the examples

ControlShift deliveries carry HTTP basic auth (--user, --password or $CONTROLSHIFT_PASSWORD) and optionally
a query token (--token). The City's carry X-City-Webhook-Signature: the shared secret itself (--city-mode shared)
or an HMAC of the body (hmac_sha256, hmac_sha1), from --city-secret or $THECITY_SECRET.
Exits non-zero when any request is not answered 200.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "url", Value: "http://127.0.0.1:8080", Usage: "base URL of the webhook listener"},
			&ucli.StringFlag{Name: "provider", Usage: "controlshift or thecity (default: both with --all)"},
			&ucli.StringFlag{Name: "path", Usage: "endpoint path (default /webhooks/<provider>)"},
			&ucli.BoolFlag{Name: "all", Usage: "send every documented example"},
			&ucli.BoolFlag{Name: "list", Usage: "list the embedded examples and exit"},
			&ucli.StringFlag{Name: "file", Usage: "send this file's bytes instead of an example (needs --provider)"},
			&ucli.StringFlag{Name: "user", Value: "controlshift", Usage: "ControlShift basic auth user"},
			&ucli.StringFlag{Name: "password", EnvVars: []string{"CONTROLSHIFT_PASSWORD"}, Usage: "ControlShift basic auth password"},
			&ucli.StringFlag{Name: "token", Usage: "ControlShift secret token, sent as ?token="},
			&ucli.StringFlag{Name: "city-secret", EnvVars: []string{"THECITY_SECRET"}, Usage: "The City's webhook secret"},
			&ucli.StringFlag{Name: "city-mode", Value: auth.ModeShared, Usage: "shared, hmac_sha256 or hmac_sha1"},
			&ucli.StringFlag{Name: "city-encoding", Value: "hex", Usage: "hex or base64 (HMAC modes)"},
			&ucli.IntFlag{Name: "repeat", Value: 1, Usage: "send each payload this many times (a provider retry repeats the same bytes)"},
			&ucli.IntFlag{Name: "concurrency", Value: 1, Usage: "requests in flight at once"},
			&ucli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "per request"},
		},
		Action: runSend,
	}
}

type delivery struct {
	provider, name string
	body           []byte
}

func runSend(c *ucli.Context) error {
	if c.Bool("list") {
		for _, e := range examples.All() {
			fmt.Fprintf(c.App.Writer, "%-13s %s\n", e.Provider, e.Name)
		}
		return nil
	}
	deliveries, err := selectDeliveries(c)
	if err != nil {
		return err
	}
	var city *auth.CitySignature
	if secret := c.String("city-secret"); secret != "" {
		if city, err = auth.NewCitySignature("", c.String("city-mode"), c.String("city-encoding"), []string{secret}); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: c.Duration("timeout")}
	jobs := make(chan delivery)
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		failed   int
	)
	var wg sync.WaitGroup
	for range max(1, c.Int("concurrency")) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				req, err := buildRequest(c, d, city)
				if err != nil {
					fmt.Fprintf(c.App.ErrWriter, "%s/%s: %v\n", d.provider, d.name, err)
					mu.Lock()
					failed++
					mu.Unlock()
					continue
				}
				start := time.Now()
				res, err := client.Do(req)
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					failed++
					fmt.Fprintf(c.App.Writer, "ERR  %8s  %s/%s  %v\n", took.Round(10*time.Microsecond), d.provider, d.name, err)
				} else {
					var b bytes.Buffer
					_, _ = b.ReadFrom(res.Body)
					res.Body.Close()
					statuses[res.StatusCode]++
					if res.StatusCode != http.StatusOK {
						failed++
					}
					fmt.Fprintf(c.App.Writer, "%d  %8s  %s/%s  %s\n", res.StatusCode, took.Round(10*time.Microsecond), d.provider, d.name, strings.TrimSpace(b.String()))
				}
				mu.Unlock()
			}
		}()
	}
	for range max(1, c.Int("repeat")) {
		for _, d := range deliveries {
			jobs <- d
		}
	}
	close(jobs)
	wg.Wait()

	codes := make([]int, 0, len(statuses))
	for code := range statuses {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	var parts []string
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d × %d", statuses[code], code))
	}
	fmt.Fprintf(c.App.Writer, "sent %d: %s\n", len(deliveries)*max(1, c.Int("repeat")), strings.Join(parts, ", "))
	if failed > 0 {
		return ucli.Exit(fmt.Sprintf("%d requests were not answered 200", failed), 1)
	}
	return nil
}

func selectDeliveries(c *ucli.Context) ([]delivery, error) {
	provider := c.String("provider")
	if provider != "" && provider != examples.ControlShift && provider != examples.TheCity {
		return nil, fmt.Errorf("unknown provider %q (controlshift or thecity)", provider)
	}
	if f := c.String("file"); f != "" {
		if provider == "" {
			return nil, errors.New("--file needs --provider")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		return []delivery{{provider: provider, name: f, body: b}}, nil
	}
	var out []delivery
	if c.Bool("all") {
		for _, e := range examples.All() {
			if provider == "" || e.Provider == provider {
				out = append(out, delivery{e.Provider, e.Name, e.Body})
			}
		}
		return out, nil
	}
	if c.NArg() == 0 {
		return nil, errors.New("name examples to send, or use --all or --file (see --list)")
	}
	for _, name := range c.Args().Slice() {
		found := false
		for _, e := range examples.All() {
			if e.Name == name && (provider == "" || e.Provider == provider) {
				out = append(out, delivery{e.Provider, e.Name, e.Body})
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no example named %q (see --list)", name)
		}
	}
	return out, nil
}

func buildRequest(c *ucli.Context, d delivery, city *auth.CitySignature) (*http.Request, error) {
	path := c.String("path")
	if path == "" {
		path = "/webhooks/" + d.provider
	}
	url := strings.TrimRight(c.String("url"), "/") + path
	if d.provider == examples.ControlShift && c.String("token") != "" {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "token=" + c.String("token")
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookpipe-send/"+Version)
	switch d.provider {
	case examples.ControlShift:
		if pw := c.String("password"); pw != "" {
			req.SetBasicAuth(c.String("user"), pw)
		}
	case examples.TheCity:
		if city == nil {
			return nil, errors.New("no City secret: set --city-secret or THECITY_SECRET")
		}
		sig := string(city.Secrets[0])
		if city.Mode != auth.ModeShared {
			sig = city.Encode(city.Sign(city.Secrets[0], d.body))
		}
		req.Header.Set(auth.DefaultCitySignatureHeader, sig)
	}
	return req, nil
}
