package whatsapp

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
)

// BenchmarkHistorySyncMemory measures the peak heap while 5 and 10 sessions of
// one engine each receive a large history chunk inline (as a phone sends
// the initial bootstrap), on whatsmeow's automatic path (what statusflow
// did before: every client inflates and parses its chunks at once and
// dispatches events.HistorySync into the session's event queue) and on the
// bounded path (ManualHistorySyncDownload, at most HistorySyncConcurrency
// chunks at once, parsed chats dropped). It prints both peaks and their
// ratio; it asserts nothing. Run it alone:
//
//	go test -run '^$' -bench HistorySyncMemory -benchtime 1x ./internal/whatsapp/
func BenchmarkHistorySyncMemory(b *testing.B) {
	const size = 30 << 20
	hs := bigHistory(size)
	raw, convs := proto.Size(hs), len(hs.GetConversations())
	payload := historyPayload(b, hs)
	hs = nil
	b.Logf("chunk: %d conversations of 200 messages, %.1f MB inflated, %.1f MB compressed inline",
		convs, float64(raw)/(1<<20), float64(len(payload))/(1<<20))
	for _, sessions := range []int{5, 10} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			for range b.N {
				auto, autoLive := historyPeak(b, sessions, payload, false)
				bounded, boundedLive := historyPeak(b, sessions, payload, true)
				b.ReportMetric(auto/(1<<20), "auto-heap-MB")
				b.ReportMetric(bounded/(1<<20), "bounded-heap-MB")
				b.ReportMetric(autoLive/(1<<20), "auto-live-MB")
				b.ReportMetric(boundedLive/(1<<20), "bounded-live-MB")
				fmt.Printf("history sync, %d sessions × %.0f MB chunk: peak heap automatic %.0f MB, bounded (%d at once) %.0f MB, ratio %.1f×; "+
					"peak live heap %.0f MB vs %.0f MB, ratio %.1f×\n",
					sessions, float64(raw)/(1<<20), auto/(1<<20), HistorySyncConcurrency, bounded/(1<<20), auto/bounded,
					autoLive/(1<<20), boundedLive/(1<<20), autoLive/boundedLive)
			}
		})
	}
}

// historyPeak delivers one chunk to each of n sessions at once and returns,
// above what was in use before, the peak heap (object bytes, live and not
// yet collected: what the process holds under the default GOGC) and the
// peak live heap (as the garbage collector last marked it), both sampled
// until every chunk was handled.
func historyPeak(b *testing.B, n int, payload []byte, bounded bool) (heap, live float64) {
	b.Helper()
	e, _ := newTestEngine(b, store.SQLite)
	var handled sync.WaitGroup
	handled.Add(n)
	if bounded {
		e.historyDownload = func(ctx context.Context, cli waClient, notif *waE2E.HistorySyncNotification) (*waHistorySync.HistorySync, error) {
			defer handled.Done()
			return downloadHistorySync(ctx, cli, notif)
		}
	}
	var sessions []*historyBundle
	var closers []func()
	for i := range n {
		dev := storeLinkedDevice(b, e, fmt.Sprintf("1555100%04d:1@s.whatsapp.net", i))
		s := newWhatsmeowSession(e, OpenParams{Instance: fmt.Sprintf("i%d", i)})
		cli := e.newClient(dev, s)
		s.setClient(dev, cli)
		closers = append(closers, func() { s.Close() })
		hb := &historyBundle{engine: e, cli: cli, own: *dev.ID}
		if !bounded {
			// As before: whatsmeow parses and dispatches the chunk, the
			// session queues events.HistorySync for its event goroutine.
			cli.ManualHistorySyncDownload = false
			cli.AddEventHandler(func(evt any) {
				if _, ok := evt.(*events.HistorySync); ok {
					handled.Done()
				}
			})
		}
		sessions = append(sessions, hb)
	}
	defer func() {
		for _, c := range closers {
			c()
		}
	}()

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() (float64, float64) {
		metrics.Read(sample)
		return float64(sample[0].Value.Uint64()), float64(sample[1].Value.Uint64())
	}
	runtime.GC()
	runtime.GC()
	base, baseLive := read()
	peak, peakLive := base, baseLive
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			h, l := read()
			peak, peakLive = max(peak, h), max(peakLive, l)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()

	ctx := context.Background()
	for i, hb := range sessions {
		notif := &waE2E.HistorySyncNotification{
			SyncType:                          waE2E.HistorySyncType_INITIAL_BOOTSTRAP.Enum(),
			ChunkOrder:                        proto.Uint32(uint32(i)),
			InitialHistBootstrapInlinePayload: payload,
		}
		if bounded {
			info, msg := historyMessage(hb.own, "HS", notif)
			hb.cli.DangerousInternals().HandleDecryptedMessage(ctx, info, msg, 0)
			continue
		}
		// whatsmeow's automatic path, one goroutine per client: the body
		// of handleHistorySyncNotificationLoop (message.go), run directly
		// because that loop never returns and would outlive the benchmark.
		go func() {
			blob, err := hb.cli.DownloadHistorySync(ctx, notif, false)
			if err != nil {
				b.Error(err)
				handled.Done()
				return
			}
			hb.cli.DangerousInternals().DispatchEvent(&events.HistorySync{Data: blob})
		}()
	}
	handled.Wait()
	close(stop)
	<-sampled
	return peak - base, peakLive - baseLive
}
