package harness

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// CityBackoff is The City's documented retry schedule (60 s, 10 min, 1 h,
// 3 h, 6 h), compressed by a factor: CityBackoff(6000) is 10 ms, 100 ms,
// 600 ms, 1.8 s and 3.6 s.
func CityBackoff(factor float64) []time.Duration {
	base := []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour}
	out := make([]time.Duration, len(base))
	for i, d := range base {
		out[i] = time.Duration(float64(d) / factor)
	}
	return out
}

// Delivery is one webhook as a provider sends it, with the id hookpipe is
// expected to store it under.
type Delivery struct {
	Path    string
	Body    []byte
	Header  map[string]string
	EventID string
}

// SendResult is what a provider-like sender saw.
type SendResult struct {
	// Acked holds the event id of every delivery answered 200.
	Acked map[string]bool
	// GaveUp counts deliveries abandoned after the last retry.
	GaveUp int
	// Attempts counts every request sent; Statuses counts replies by status,
	// with 0 for connection errors.
	Attempts int
	Statuses map[int]int
}

// Sender behaves like the providers: it posts each delivery and retries any
// reply other than 200 (and connection errors) after each Backoff step, then
// gives up, as The City does after its sixth attempt.
type Sender struct {
	URL         string
	Concurrency int
	Backoff     []time.Duration
	Client      *http.Client

	acked atomic.Int64
}

// AckedSoFar is the number of deliveries answered 200 until now.
func (s *Sender) AckedSoFar() int { return int(s.acked.Load()) }

// Send delivers everything and returns when each delivery was acknowledged
// or given up, or ctx ends.
func (s *Sender) Send(ctx context.Context, deliveries []Delivery) SendResult {
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: s.Concurrency}}
	}
	var (
		mu  sync.Mutex
		res = SendResult{Acked: map[string]bool{}, Statuses: map[int]int{}}
		wg  sync.WaitGroup
	)
	jobs := make(chan Delivery)
	for range max(1, s.Concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				for attempt := 0; ; attempt++ {
					status := post(ctx, client, s.URL+d.Path, d)
					mu.Lock()
					res.Attempts++
					res.Statuses[status]++
					if status == http.StatusOK {
						res.Acked[d.EventID] = true
					}
					mu.Unlock()
					if status == http.StatusOK {
						s.acked.Add(1)
						break
					}
					if attempt >= len(s.Backoff) || ctx.Err() != nil {
						mu.Lock()
						res.GaveUp++
						mu.Unlock()
						break
					}
					select {
					case <-time.After(s.Backoff[attempt]):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	for _, d := range deliveries {
		select {
		case jobs <- d:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return res
}

func post(ctx context.Context, client *http.Client, url string, d Delivery) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range d.Header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0
	}
	var sink bytes.Buffer
	_, _ = sink.ReadFrom(res.Body)
	res.Body.Close()
	return res.StatusCode
}
