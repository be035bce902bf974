package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
)

// Outcomes of a send that is not a plain success.
var (
	// ErrUnconfirmed: the message was written to WhatsApp's socket but the
	// server's acknowledgement did not come in time (whatsmeow's
	// ErrMessageTimedOut, or the send's deadline ending after the write).
	// Recipients may well have it: the core stores it as `unconfirmed`, never
	// as a failure that invites a second post.
	ErrUnconfirmed = errors.New("whatsapp: sent, not confirmed by WhatsApp")
)

// RefusedError is a definite refusal: WhatsApp's server acknowledged the
// message with an error code (whatsmeow's ErrServerReturnedError, "server
// returned error N"). The message was not delivered.
type RefusedError struct {
	// Code is the error code of the ack (e.g. 463, 479, 429).
	Code int
	Err  error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("WhatsApp refused the message (error %d)", e.Code)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same message cannot help. Every
// ack error code is, except 429 (rate limited: WAHA users sending statuses
// to 30 000 contacts get "server returned error 429" on later batches,
// devlikeapro/waha#2096) and 5xx (a server fault). The NATS trigger consumer
// terminates a trigger whose error is permanent instead of redelivering it.
func (e *RefusedError) Permanent() bool { return e.Code != 429 && e.Code < 500 }

var serverErrorCode = regexp.MustCompile(`server returned error (\d+)`)

// classifySend turns what whatsmeow's SendMessage returned into the
// engine's outcome. SendMessage has named results: on error, resp still
// holds the timings of the stages that ran, and DebugTimings.Send > 0 means
// the message node was written to the socket (send.go, sendGroup) — after
// that, a timeout or an ended context leaves the outcome unknown.
func classifySend(resp whatsmeow.SendResponse, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, whatsmeow.ErrServerReturnedError):
		code := 0
		if m := serverErrorCode.FindStringSubmatch(err.Error()); m != nil {
			code, _ = strconv.Atoi(m[1])
		}
		return &RefusedError{Code: code, Err: err}
	case errors.Is(err, whatsmeow.ErrMessageTimedOut):
		return fmt.Errorf("%w: %v", ErrUnconfirmed, err)
	case (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && resp.DebugTimings.Send > 0:
		return fmt.Errorf("%w: %v", ErrUnconfirmed, err)
	}
	return notConnected(err)
}

// Send deadlines. A status goes to every device of every recipient:
// whatsmeow fetches the device lists (usync, batched), fetches prekeys and
// encrypts once per device it has no session with, writes one node, then
// waits for the server's ack. WAHA users report that 20 000 contacts
// outlast a 75 s default (devlikeapro/waha#1358, #413, #2080) and that the
// status was delivered all the same.
const (
	// SendDeadlineBase is the deadline of a send to a small audience (and
	// whatsmeow's own default per-request timeout).
	SendDeadlineBase = 75 * time.Second
	// SendDeadlinePerRecipient is added per recipient: about 2 devices each,
	// a prekey fetch and an encryption per new device, measured in reports at
	// well under 15 ms per recipient; 30 ms leaves a margin.
	SendDeadlinePerRecipient = 30 * time.Millisecond
	// SendDeadlineMax caps the deadline (30 000 recipients reach it).
	SendDeadlineMax = 15 * time.Minute
)

// SendDeadline is how long a send to n recipients may take:
// [SendDeadlineBase] + n × [SendDeadlinePerRecipient], at most
// [SendDeadlineMax]. 1 000 recipients: 1 m 45 s; 10 000: 6 m 15 s.
func SendDeadline(n int) time.Duration {
	return min(SendDeadlineBase+time.Duration(max(n, 0))*SendDeadlinePerRecipient, SendDeadlineMax)
}

// send sends msg to status@broadcast on its own context: the caller's
// cancellation does not cut a fan-out short (that would leave its outcome
// unknown), only the deadline for the audience does, and whatsmeow's
// per-request timeout matches it. whatsmeow's stage timings go on the
// caller's span (status.send).
func (s *whatsmeowSession) send(ctx context.Context, cli waClient, id string, msg *waE2E.Message) (time.Time, error) {
	d := SendDeadline(s.audienceSize())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	if err := s.engine.rememberSent(sctx, s.instance, id, msg); err != nil {
		// Only retry receipts after a restart depend on it: log, send anyway.
		s.log.Warn("keep sent message for retry receipts", "messageId", id, "err", err)
	}
	resp, err := cli.SendMessage(sctx, types.StatusBroadcastJID, msg, whatsmeow.SendRequestExtra{ID: id, Timeout: d})
	spanTimings(ctx, d, resp.DebugTimings)
	if err := classifySend(resp, err); err != nil {
		return time.Time{}, err
	}
	return resp.Timestamp.UTC(), nil
}

// spanTimings puts whatsmeow's send timings on the span in ctx.
func spanTimings(ctx context.Context, deadline time.Duration, t whatsmeow.MessageDebugTimings) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	span.SetAttributes(
		attribute.Float64("whatsmeow.deadline_ms", ms(deadline)),
		attribute.Float64("whatsmeow.queue_ms", ms(t.Queue)),
		attribute.Float64("whatsmeow.marshal_ms", ms(t.Marshal)),
		attribute.Float64("whatsmeow.get_participants_ms", ms(t.GetParticipants)),
		attribute.Float64("whatsmeow.get_devices_ms", ms(t.GetDevices)),
		attribute.Float64("whatsmeow.group_encrypt_ms", ms(t.GroupEncrypt)),
		attribute.Float64("whatsmeow.peer_encrypt_ms", ms(t.PeerEncrypt)),
		attribute.Float64("whatsmeow.send_ms", ms(t.Send)),
		attribute.Float64("whatsmeow.resp_ms", ms(t.Resp)),
		attribute.Float64("whatsmeow.retry_ms", ms(t.Retry)),
	)
}

// audienceSize is the recipient count of the last audience read, or of the
// stored contacts when none was read yet.
func (s *whatsmeowSession) audienceSize() int {
	s.mu.Lock()
	n, dev := s.lastAudience, s.dev
	s.mu.Unlock()
	if n >= 0 || dev == nil || dev.Contacts == nil {
		return max(n, 0)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	contacts, err := dev.Contacts.GetAllContacts(ctx)
	if err != nil {
		return 0
	}
	return len(contacts)
}

// Audience implements [AudienceReader]: the phone's status privacy (read
// from WhatsApp) and the recipients whatsmeow will send to, computed as
// whatsmeow's getStatusBroadcastRecipients does (broadcast.go): the list
// for "only share with"; otherwise every stored contact with a saved name
// (FullName: pushnames alone do not count), minus the list for "contacts
// except". The own account is left out (whatsmeow adds it for the other
// devices of the account, which are not an audience).
func (s *whatsmeowSession) Audience(ctx context.Context) (*Audience, error) {
	cli, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.readAudience(ctx, cli)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lastAudience = len(a.Recipients)
	s.mu.Unlock()
	return a, nil
}

func (s *whatsmeowSession) readAudience(ctx context.Context, cli waClient) (*Audience, error) {
	priv, err := cli.GetStatusPrivacy(ctx)
	if err != nil {
		return nil, fmt.Errorf("read status privacy: %w", notConnected(err))
	}
	s.mu.Lock()
	dev, own := s.dev, s.jid
	s.mu.Unlock()
	var contacts map[types.JID]types.ContactInfo
	if len(priv) == 0 || priv[0].Type != types.StatusPrivacyTypeWhitelist {
		if dev == nil || dev.Contacts == nil {
			return nil, ErrNotConnected
		}
		if contacts, err = dev.Contacts.GetAllContacts(ctx); err != nil {
			return nil, fmt.Errorf("read contacts: %w", err)
		}
	}
	return statusAudience(priv, contacts, own), nil
}

// statusAudience is the audience of a status for the privacy settings priv
// (the first is the default, as GetStatusPrivacy returns them; none means
// whatsmeow's DefaultStatusPrivacy, contacts) and the stored contacts.
func statusAudience(priv []types.StatusPrivacy, contacts map[types.JID]types.ContactInfo, ownJID string) *Audience {
	p := types.StatusPrivacy{Type: types.StatusPrivacyTypeContacts}
	if len(priv) > 0 {
		p = priv[0]
	}
	own := ""
	if j, err := types.ParseJID(ownJID); err == nil {
		own = j.User
	}
	var out []string
	keep := func(j types.JID) {
		if j.User != own {
			out = append(out, j.ToNonAD().String())
		}
	}
	switch p.Type {
	case types.StatusPrivacyTypeWhitelist:
		for _, j := range p.List {
			keep(j)
		}
		return sortedAudience(AudienceOnlyShareWith, out)
	case types.StatusPrivacyTypeBlacklist:
		except := make(map[types.JID]bool, len(p.List))
		for _, j := range p.List {
			except[j] = true
		}
		for j, c := range contacts {
			if !except[j] && c.FullName != "" {
				keep(j)
			}
		}
		return sortedAudience(AudienceContactsExcept, out)
	}
	for j, c := range contacts {
		if c.FullName != "" {
			keep(j)
		}
	}
	return sortedAudience(AudienceContacts, out)
}

// sentKeep is how long sent status messages are kept for retry receipts: a
// status lives 24 h, and a phone that was off may ask later in that time.
const sentKeep = 48 * time.Hour

// rememberSent keeps msg, as sent under id, for [Whatsmeow.sentMessage].
func (e *Whatsmeow) rememberSent(ctx context.Context, instance, id string, msg *waE2E.Message) error {
	if e.sent == nil {
		return nil
	}
	body, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	now := e.now()
	return e.sent.SentMessagePut(ctx, instance, id, body, now, now.Add(-sentKeep))
}

// sentMessage answers whatsmeow's GetMessageForRetry for status@broadcast
// from the database (nil: not ours, or gone), so a recipient's device that
// asks for a status again after statusflow restarted still gets it.
// whatsmeow re-encrypts it for the asking device.
func (e *Whatsmeow) sentMessage(instance string, to types.JID, id types.MessageID) *waE2E.Message {
	if e.sent == nil || to != types.StatusBroadcastJID {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := e.sent.SentMessageGet(ctx, instance, string(id))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("load sent status for a retry receipt", "instance", instance, "messageId", id, "err", err)
		}
		return nil
	}
	var m waE2E.Message
	if err := proto.Unmarshal(body, &m); err != nil {
		e.log.Warn("decode sent status for a retry receipt", "instance", instance, "messageId", id, "err", err)
		return nil
	}
	return &m
}

// SetVersionPolicy sets how the advertised WhatsApp Web version is chosen
// (see [VersionConfig]); a malformed pinned version is an error. Nothing is
// fetched until the first whatsmeow session is opened: a server with only
// sandbox instances never calls web.whatsapp.com.
func (e *Whatsmeow) SetVersionPolicy(cfg VersionConfig) error {
	if cfg.Pinned != "" {
		if _, err := wastore.ParseVersion(cfg.Pinned); err != nil {
			return fmt.Errorf("STATUSFLOW_WA_VERSION: %w", err)
		}
	}
	e.version = newVersionKeeper(cfg, e.settings, e.log)
	return nil
}

// startVersion starts the version keeper once (first Open).
func (e *Whatsmeow) startVersion() {
	if e.version == nil {
		return
	}
	e.versionOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		e.versionFirst = make(chan struct{})
		e.versionStop = cancel
		e.versionDone = make(chan struct{})
		go func() {
			defer close(e.versionDone)
			e.version.run(ctx, e.versionFirst)
		}()
	})
}

// awaitVersion waits until the first version choice is made (at most the
// fetch timeout), so a dial advertises the version chosen at start.
func (e *Whatsmeow) awaitVersion(ctx context.Context) {
	e.startVersion()
	if e.versionFirst == nil {
		return
	}
	t := time.NewTimer(VersionFetchTimeout + time.Second)
	defer t.Stop()
	select {
	case <-e.versionFirst:
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stop ends the engine's background work (the version refresh).
func (e *Whatsmeow) Stop() {
	if e.versionStop != nil {
		e.versionStop()
		<-e.versionDone
	}
}

// Version is the WhatsApp Web version advertised now and where it came from
// ("pinned", "fetched", "stored", "built-in").
func (e *Whatsmeow) Version() (string, string) {
	if e.version == nil {
		return wastore.GetWAVersion().String(), "built-in"
	}
	v, src := e.version.Current()
	return v.String(), src
}
