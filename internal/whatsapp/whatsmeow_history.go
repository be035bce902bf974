package whatsapp

import (
	"context"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
)

// History sync.
//
// After a phone links a device it sends the account's chat history in
// chunks: protocol messages carrying a HistorySyncNotification, either with
// the (zlib-compressed) chunk inline (InitialHistBootstrapInlinePayload) or
// as an encrypted media blob to download. By default whatsmeow
// (message.go, handleProtocolMessage → handleHistorySyncNotificationLoop →
// DownloadHistorySync) downloads, inflates and parses every chunk in a
// goroutine per client and dispatches an [events.HistorySync] holding all
// of the parsed conversations and messages. statusflow uses none of it (a
// status's audience is the contact list from app state, see
// whatsmeow_events.go), yet with many accounts linking at once those
// parsed chunks are what fill memory: WAHA's whatsmeow-based GOWS engine
// "rapidly jumps to 8–12 GB and sometimes exceeds 20–25 GB" when several
// users link in a short window (github.com/devlikeapro/waha/issues/1826),
// and offers no way to limit the depth (devlikeapro/waha#1963).
//
// So the engine sets whatsmeow's Client.ManualHistorySyncDownload, as
// mautrix-whatsapp does (pkg/connector/client.go; it queues notifications
// and downloads them later in its own loop, backfill.go). whatsmeow then
// still acknowledges the notification itself (handleProtocolMessage sends
// the hist_sync receipt whatever the setting) and still dispatches the
// protocol message as an [events.Message]; the session turns that into a
// [historySyncJob], and a goroutine runs [scanHistorySync] once one of the
// engine's [HistorySyncConcurrency] slots is free. It makes the writes
// whatsmeow's DownloadHistorySync (with synchronousStorage) would make,
// the side effects statusflow relies on: push names (PUSH_NAME chunks),
// phone-number↔LID mappings (used when a status goes to LID-addressed
// contacts), message secrets and privacy tokens of the conversations, and
// the LID migration timestamp. But where DownloadHistorySync parses the
// whole chunk, every message with its content, the scan reads only those
// fields off the wire (whatsmeow_history_scan.go): a chunk costs its
// compressed and inflated bytes and what it stores, not the several times
// its size that the parsed messages take. Nothing is dispatched or queued.

// HistorySyncConcurrency bounds how many history-sync chunks the whatsmeow
// engine downloads, parses and stores at once, across all of its sessions.
// One chunk in flight costs its compressed bytes, its inflated bytes and
// the records it stores (see [scanHistorySync]); two keep a replica
// whose accounts all link at once within a few chunks' worth of memory,
// while a linking account still gets its push names and LID mappings in
// seconds. It is a constant rather than a setting: it trades memory for
// how soon a freshly linked account's history side effects land, which
// statusflow's publishing does not wait for.
const HistorySyncConcurrency = 2

// HistorySyncTimeout bounds one chunk's download, scan and storage.
const HistorySyncTimeout = 5 * time.Minute

// historySyncJob is what the session queues instead of the [events.Message]
// carrying a history-sync notification: the notification, the client that
// received it (whose media connection downloads the blob) and the client's
// device store (where the chunk's side effects go).
type historySyncJob struct {
	cli   waClient
	dev   *wastore.Device
	notif *waE2E.HistorySyncNotification
}

// historyNotification returns the history-sync notification an event
// carries, or nil. Only the account's own phone sends them (whatsmeow's
// handleProtocolMessage ignores protocol messages not from the own account).
func historyNotification(evt any) *waE2E.HistorySyncNotification {
	m, ok := evt.(*events.Message)
	if !ok || !m.Info.IsFromMe {
		return nil
	}
	return m.Message.GetProtocolMessage().GetHistorySyncNotification()
}

// startHistorySync hands a chunk to a goroutine that waits for one of the
// engine's history-sync slots, so neither whatsmeow's loops nor the
// session's event goroutine wait on it. The chunk is skipped when, by the
// time a slot is free, the session is closed, holds another client (logged
// out meanwhile) or has lost its lease.
func (s *whatsmeowSession) startHistorySync(j historySyncJob) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sem := s.engine.historySem
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		defer func() { <-sem }()
		if s.ctx.Err() != nil || !s.holds(j.cli) || (s.owned != nil && !s.owned()) {
			return
		}
		s.runHistorySync(j)
	}()
}

// runHistorySync downloads, scans and stores one chunk and logs it.
func (s *whatsmeowSession) runHistorySync(j historySyncJob) {
	n := j.notif
	ctx, cancel := context.WithTimeout(s.ctx, HistorySyncTimeout)
	defer cancel()
	start := time.Now()
	sum, err := s.engine.historyDownload(ctx, j.cli, j.dev, n)
	ms := time.Since(start).Milliseconds()
	if err != nil {
		s.log.Warn("history sync chunk failed", "type", n.GetSyncType().String(), "chunk", n.GetChunkOrder(),
			"progress", n.GetProgress(), "bytes", historyBytes(n), "inflated", sum.Inflated, "ms", ms, "err", err)
		return
	}
	lvl, msg, args := slog.LevelInfo, "history sync chunk stored, chats dropped", []any{}
	if sum.StoreErr != nil {
		lvl, msg, args = slog.LevelWarn, "history sync chunk stored with errors, chats dropped", []any{"err", sum.StoreErr}
	}
	s.log.Log(ctx, lvl, msg, append([]any{"type", sum.SyncType.String(), "chunk", sum.ChunkOrder,
		"progress", sum.Progress, "bytes", historyBytes(n), "inflated", sum.Inflated, "conversations", sum.Conversations,
		"messages", sum.Messages, "pushNames", sum.PushNames, "lidMappings", sum.LIDMappings,
		"secrets", sum.Secrets, "privacyTokens", sum.PrivacyTokens, "ms", ms}, args...)...)
}

// historyBytes is the compressed size of a chunk: its inline payload, or
// the blob's length as the notification announces it.
func historyBytes(n *waE2E.HistorySyncNotification) int {
	if p := n.GetInitialHistBootstrapInlinePayload(); p != nil {
		return len(p)
	}
	return int(n.GetFileLength())
}
