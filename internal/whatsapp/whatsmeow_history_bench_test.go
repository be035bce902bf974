package whatsapp

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
)

// historyPath is how a benchmark's sessions handle their chunks.
type historyPath int

const (
	// pathAuto is whatsmeow's automatic path, what statusflow did
	// first: every client inflates and parses its chunks at once and
	// dispatches events.HistorySync into the session's event queue.
	pathAuto historyPath = iota
	// pathParse is ManualHistorySyncDownload with at most
	// HistorySyncConcurrency chunks at once, each through whatsmeow's
	// DownloadHistorySync (full parse, parsed chats dropped).
	pathParse
	// pathScan is the same bound with scanHistorySync, statusflow's
	// path now.
	pathScan
)

// BenchmarkHistorySyncMemory measures the peak heap while 5 and 10 sessions of
// one engine each receive a large history chunk inline (as a phone sends
// the initial bootstrap), on the three paths of [historyPath]. It prints
// the peaks and their ratios; it asserts nothing. Run it alone:
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
	mb := func(v float64) float64 { return v / (1 << 20) }
	for _, sessions := range []int{5, 10} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			for range b.N {
				auto, autoLive := historyPeak(b, sessions, payload, pathAuto)
				parse, parseLive := historyPeak(b, sessions, payload, pathParse)
				scan, scanLive := historyPeak(b, sessions, payload, pathScan)
				b.ReportMetric(mb(auto), "auto-heap-MB")
				b.ReportMetric(mb(parse), "parse-heap-MB")
				b.ReportMetric(mb(scan), "scan-heap-MB")
				b.ReportMetric(mb(autoLive), "auto-live-MB")
				b.ReportMetric(mb(parseLive), "parse-live-MB")
				b.ReportMetric(mb(scanLive), "scan-live-MB")
				fmt.Printf("history sync, %d sessions × %.0f MB chunk, peak heap: automatic %.0f MB, bounded full parse (%d at once) %.0f MB, bounded scan %.0f MB; "+
					"automatic/scan %.1f×, parse/scan %.1f×; peak live heap %.0f / %.0f / %.0f MB\n",
					sessions, mb(float64(raw)), mb(auto), HistorySyncConcurrency, mb(parse), mb(scan), auto/scan, parse/scan,
					mb(autoLive), mb(parseLive), mb(scanLive))
			}
		})
	}
}

// historyPeak delivers one chunk to each of n sessions at once and returns,
// above what was in use before, the peak heap (object bytes, live and not
// yet collected: what the process holds under the default GOGC) and the
// peak live heap (as the garbage collector last marked it), both sampled
// until every chunk was handled.
func historyPeak(b *testing.B, n int, payload []byte, path historyPath) (heap, live float64) {
	b.Helper()
	e, _ := newTestEngine(b, store.SQLite)
	var handled sync.WaitGroup
	handled.Add(n)
	switch path {
	case pathParse:
		e.historyDownload = func(ctx context.Context, cli waClient, dev *wastore.Device, notif *waE2E.HistorySyncNotification) (historySummary, error) {
			defer handled.Done()
			_, err := cli.(*whatsmeow.Client).DownloadHistorySync(ctx, notif, true)
			return historySummary{}, err
		}
	case pathScan:
		e.historyDownload = func(ctx context.Context, cli waClient, dev *wastore.Device, notif *waE2E.HistorySyncNotification) (historySummary, error) {
			defer handled.Done()
			return scanHistorySync(ctx, cli, dev, notif)
		}
	}
	bounded := path != pathAuto
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
