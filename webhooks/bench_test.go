package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/webhooks"
)

// BenchmarkDelivery measures, with 4 webhooks per instance and a local
// receiver, events delivered per second and the p50/p99 time from the
// event's Emit to its arrival at the receiver.
//
//   - "saturated": 4 goroutines emit as fast as they can; events/s is the
//     throughput and the latency is mostly queueing.
//   - "paced-100eps": one event every 10 ms (400 deliveries/s), below the
//     throughput: the latency is the outbox's own (commit → wake → claim →
//     sign → POST).
//
// "bare-deliveries/s" is the same receiver POSTed directly by 16 goroutines
// (the worker's concurrency), and "ratio" is outbox deliveries/s over it.
func BenchmarkDelivery(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d)+"/saturated", func(b *testing.B) { benchDelivery(b, d, 0) })
		b.Run(string(d)+"/paced-100eps", func(b *testing.B) { benchDelivery(b, d, 100) })
	}
}

func benchDelivery(b *testing.B, d store.Dialect, rate int) {
	const hooks = 4
	ctx := context.Background()
	var mu sync.Mutex
	arrived := map[string]time.Time{} // webhook-id → arrival
	done := make(chan struct{}, 1)
	want := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		arrived[r.Header.Get("webhook-id")] = now
		n := len(arrived)
		mu.Unlock()
		if n == want {
			select {
			case done <- struct{}{}:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	st := storetest.New(b, d)
	st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: "h", State: "connected", CreatedAt: time.Now()})
	cfg := webhooks.Config{AllowPrivate: true, PollInterval: 50 * time.Millisecond}
	worker, _ := webhooks.NewWorker(st, nil, cfg)
	svc, _ := webhooks.NewService(st, nil, worker, nil, cfg)
	rec := newRecorder(st, svc, worker.Wake)
	var webhookIDs []string
	for i := range hooks {
		w, _, err := svc.Upsert(ctx, "sales", webhooks.WebhookInput{Label: fmt.Sprint("h", i), URL: fmt.Sprintf("%s/hook/%d", srv.URL, i)})
		if err != nil {
			b.Fatal(err)
		}
		webhookIDs = append(webhookIDs, w.ID)
	}
	worker.Start(ctx)
	defer worker.Stop(ctx)

	want = hooks * b.N
	emitted := make([]struct {
		id string
		at time.Time
	}, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	emitters := 4
	var pace <-chan time.Time
	if rate > 0 {
		emitters = 1
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		pace = t.C
	}
	for g := range emitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.N; i += emitters {
				if pace != nil {
					<-pace
				}
				id := uuid.NewString()
				tc := tracing.New()
				emitted[i].id, emitted[i].at = id, time.Now()
				if err := rec.Emit(ctx, status.Event{ID: id, Type: status.EventStatusPublished, Instance: "sales", Time: time.Now().UTC(), TraceParent: tc.String(),
					Data: status.PublishedData{MessageID: status.NewMessageID(), MessageType: "text", Chat: status.Chat{JID: status.StatusBroadcastJID}, TraceID: tc.TraceID}}); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	emitTime := time.Since(start)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries arrived", len(arrived), want)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	mu.Lock()
	lat := make([]time.Duration, 0, want)
	for _, e := range emitted {
		for _, wid := range webhookIDs {
			if at, ok := arrived[webhooks.DeliveryID(wid, e.id)]; ok {
				lat = append(lat, at.Sub(e.at))
			}
		}
	}
	mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/emitTime.Seconds(), "emitted/s")
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")

	// Baseline: the same number of POSTs straight to the receiver.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	body := []byte(`{"specversion":"1.0","type":"status.published"}`)
	jobs := make(chan int)
	bstart := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				req, _ := http.NewRequest("POST", srv.URL+"/bare", bytes.NewReader(body))
				req.Header.Set("webhook-id", fmt.Sprint("bare_", i))
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range want {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	bare := float64(want) / time.Since(bstart).Seconds()
	b.ReportMetric(bare, "bare-deliveries/s")
	b.ReportMetric(float64(want)/elapsed.Seconds()/bare, "ratio")
}
