package status

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.opentelemetry.io/otel/attribute"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/tracing"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// sessions finds the open session of an instance.
type sessions interface {
	Session(ctx context.Context, instance string) (whatsapp.Session, error)
}

// statusStore keeps published statuses so they can be deleted and traced.
type statusStore interface {
	StatusGet(ctx context.Context, instance, messageID string) (*store.Status, error)
	StatusMarkRevoked(ctx context.Context, instance, messageID string, at time.Time) error
	StatusDelete(ctx context.Context, instance, messageID string) error
}

// mediaPreparer turns a media URL into a file WhatsApp takes.
type mediaPreparer interface {
	Prepare(ctx context.Context, req MediaRequest) (*PreparedMedia, error)
}

// Idempotency runs a command at most once per (instance, key): Do calls run
// for the first request and returns the stored result for later ones with the
// same body hash; a different hash is [errcode.ErrIdempotencyKeyReused].
type Idempotency interface {
	Do(ctx context.Context, instance, key, requestHash string, run func(ctx context.Context) (*Result, error)) (*Result, error)
}

// Service is the status-publishing core. Every front door ends here.
type Service struct {
	sessions    sessions
	store       statusStore
	media       mediaPreparer
	outcomes    Recorder
	idempotency Idempotency
	log         *slog.Logger
	now         func() time.Time
	scheduler   *Scheduler // set by NewScheduler: woken by new schedules
	router      Router     // set by SetRouter (clustering): runs commands on the owner
}

// Router runs a command on the replica that owns its instance when that is
// not this one (internal/cluster forwards it over NATS request-reply).
type Router interface {
	// Route runs cmd on the owner and returns its outcome with handled
	// true; handled false means this replica owns the instance (or may take
	// it) and runs cmd itself. An instance in a failover gap (no owner yet,
	// the owner unreachable) is handled with a disconnected error wrapped in
	// an [errcode.Backoff].
	Route(ctx context.Context, cmd Command) (res *Result, err error, handled bool)
	// Backoff is how long to wait before retrying a command that found the
	// instance disconnected here: > 0 when this replica does not hold the
	// instance (it lost it between Route and the send), 0 otherwise.
	Backoff(instance string) time.Duration
}

// SetRouter makes Execute run each command on its instance's owner (see
// [Router]). Call before serving.
func (s *Service) SetRouter(r Router) { s.router = r }

// NewService returns the core; outcomes records what its commands do (the
// event log, internal/events). media may be nil until the media pipeline is
// configured (media statuses then fail with media_validation_failed);
// idempotency may be nil (keys are then ignored).
func NewService(sess sessions, st statusStore, media mediaPreparer, outcomes Recorder, idem Idempotency, log *slog.Logger) *Service {
	return &Service{sessions: sess, store: st, media: media, outcomes: outcomes, idempotency: idem, log: log, now: func() time.Time { return time.Now().UTC() }}
}

// Execute runs a command of any kind, on the replica that owns its
// instance when clustering is on (see [Service.SetRouter]).
func (s *Service) Execute(ctx context.Context, cmd Command) (*Result, error) {
	return s.execute(ctx, cmd, true)
}

// ExecuteLocal runs a command on this replica whoever owns its instance: the
// owner's side of a forwarded command (it never forwards again, so a lease
// that moved meanwhile ends in "not connected", not in a loop).
func (s *Service) ExecuteLocal(ctx context.Context, cmd Command) (*Result, error) {
	return s.execute(ctx, cmd, false)
}

func (s *Service) execute(ctx context.Context, cmd Command, route bool) (*Result, error) {
	tc, ok := tracing.Parse(cmd.TraceParent)
	if !ok {
		tc = tracing.New()
		cmd.TraceParent = tc.String()
	}
	ctx = tracing.With(ctx, tc)
	if err := checkStrings(cmd); err != nil {
		return nil, err
	}
	if route && s.router != nil && cmd.Args != nil {
		// Before idempotency: the owner claims the key (in the shared
		// database), so a retry reaching any replica gets the first result.
		if res, err, handled := s.router.Route(ctx, cmd); handled {
			return res, err
		}
	}
	if cmd.IdempotencyKey != "" && cmd.MessageID == "" {
		// A front door that pre-assigned an id (respond-async) derived it
		// the same way (MessageIDFor) and carries it in the queued request.
		cmd.MessageID = KeyedMessageID(cmd.Instance, cmd.IdempotencyKey)
	}
	run := func(ctx context.Context) (*Result, error) {
		switch a := cmd.Args.(type) {
		case PublishArgs:
			return s.publishObserved(ctx, cmd, a, tc)
		case *PublishArgs:
			return s.publishObserved(ctx, cmd, *a, tc)
		case DeleteArgs:
			return s.deleteObserved(ctx, cmd, a, tc)
		case *DeleteArgs:
			return s.deleteObserved(ctx, cmd, *a, tc)
		case CancelArgs:
			return s.cancel(ctx, cmd, a, tc)
		case *CancelArgs:
			return s.cancel(ctx, cmd, *a, tc)
		}
		return nil, errcode.Errorf(errcode.CodeInvalid, "unknown command kind")
	}
	var res *Result
	var err error
	if cmd.IdempotencyKey == "" || s.idempotency == nil {
		res, err = run(ctx)
	} else {
		res, err = s.idempotency.Do(ctx, cmd.Instance, cmd.IdempotencyKey, RequestHash(cmd), run)
	}
	if err != nil {
		e := scrub(err)
		if e.Code == errcode.CodeDisconnected && s.router != nil {
			if wait := s.router.Backoff(cmd.Instance); wait > 0 {
				return nil, errcode.RetryAfter(e, wait)
			}
		}
		return nil, e
	}
	return res, nil
}

// checkStrings refuses a command carrying a NUL character or invalid UTF-8
// in any of its strings. Front doors refuse them first (the schema bounds
// check, the HTTP hygiene middleware, the trigger consumer); this is the
// last line, so that no such string reaches the database (PostgreSQL
// refuses them with an error) or an event, whatever the door.
func checkStrings(cmd Command) error {
	fields := [...]struct{ name, v string }{
		{"instance name", cmd.Instance}, {"Idempotency-Key", cmd.IdempotencyKey}, {"messageId", cmd.MessageID},
		{"origin.platform", cmd.Origin.Platform}, {"origin.workflowId", cmd.Origin.WorkflowID},
		{"origin.workflowName", cmd.Origin.WorkflowName}, {"origin.executionId", cmd.Origin.ExecutionID},
		{"origin.nodeName", cmd.Origin.NodeName}, {"origin.source", cmd.Origin.Source}, {"origin.extra", string(cmd.Origin.Extra)},
	}
	for _, f := range fields {
		if !cleanString(f.v) {
			return errcode.Errorf(errcode.CodeInvalid, "Invalid request: %s contains a NUL character or invalid UTF-8", f.name)
		}
	}
	var args []string
	switch a := cmd.Args.(type) {
	case PublishArgs:
		args = []string{a.Type, a.Message, a.MediaURL, a.MimeType, a.FileName, a.BackgroundColor, a.Font, a.Source}
	case *PublishArgs:
		args = []string{a.Type, a.Message, a.MediaURL, a.MimeType, a.FileName, a.BackgroundColor, a.Font, a.Source}
	case DeleteArgs:
		args = []string{a.MessageID}
	case *DeleteArgs:
		args = []string{a.MessageID}
	}
	for _, v := range args {
		if !cleanString(v) {
			return errcode.Errorf(errcode.CodeInvalid, "Invalid request body: a field contains a NUL character or invalid UTF-8")
		}
	}
	return nil
}

// cleanString reports whether s is valid UTF-8 without NUL (raw, or as the
// JSON escape \u0000 in raw JSON such as origin.extra).
func cleanString(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && !strings.Contains(s, `\u0000`)
}

// RequestHash identifies a command's content for idempotency: the kind, the
// instance and the args, not the origin or trace (a retried request carries a
// new execution id or trace).
func RequestHash(cmd Command) string {
	b, _ := json.Marshal(struct {
		Kind     string `json:"k"`
		Instance string `json:"i"`
		Args     Args   `json:"a"`
	}{cmd.Args.Kind(), cmd.Instance, cmd.Args})
	return uuid.NewSHA1(uuid.NameSpaceOID, b).String()
}

// NewMessageID returns an id in the format WhatsApp Web uses (3EB0 + 18 hex
// digits). The 9 bytes are the milliseconds since 2024 (5 bytes, enough until
// 2058) and a counter that starts at a random 31-bit value each millisecond
// and counts up within it (UUIDv7's monotonic method): ids never repeat within
// a process, collide across processes only by a 1-in-2³¹ chance per
// millisecond, and sort by time, so the statuses' primary-key index grows at
// its right edge instead of taking a random page per publication.
func NewMessageID() string {
	msgIDs.Lock()
	ms := uint64(max(time.Now().UnixMilli()-msgIDEpoch, 0))
	if ms > msgIDs.ms {
		var r [4]byte
		rand.Read(r[:])
		msgIDs.ms, msgIDs.ctr = ms, uint64(r[0]&0x7f)<<24|uint64(r[1])<<16|uint64(r[2])<<8|uint64(r[3])
	} else if msgIDs.ctr++; msgIDs.ctr > 0xffffffff { // 2³¹ ids in a millisecond: borrow the next one
		msgIDs.ms, msgIDs.ctr = msgIDs.ms+1, 0
	}
	ms, ctr := msgIDs.ms, msgIDs.ctr
	msgIDs.Unlock()
	var b [9]byte
	for i := 4; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[5], b[6], b[7], b[8] = byte(ctr>>24), byte(ctr>>16), byte(ctr>>8), byte(ctr)
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}

const msgIDEpoch = 1704067200000 // 2024-01-01T00:00:00Z in Unix milliseconds

var msgIDs struct {
	sync.Mutex
	ms, ctr uint64
}

// instance returns an instance's session, whatever its state.
func (s *Service) instance(ctx context.Context, instance string) (whatsapp.Session, error) {
	sess, err := s.sessions.Session(ctx, instance)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.ErrInstanceNotFound
	}
	if errors.Is(err, whatsapp.ErrNotConnected) {
		// The session could not be opened for now (a cluster whose NATS
		// cannot grant the lease): a gap, answered 503 with Retry-After.
		return nil, &errcode.Error{Code: errcode.CodeDisconnected, Message: errcode.ErrDisconnected.Message, Err: err}
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	return sess, nil
}

func (s *Service) session(ctx context.Context, instance string) (whatsapp.Session, error) {
	sess, err := s.instance(ctx, instance)
	if err != nil {
		return nil, err
	}
	if sess.State() != whatsapp.StateConnected {
		return nil, errcode.ErrDisconnected
	}
	return sess, nil
}

func (s *Service) publish(ctx context.Context, cmd Command, a PublishArgs, tc tracing.Context) (*Result, error) {
	id := cmd.MessageID
	if id == "" {
		id = NewMessageID()
	}
	source := a.Source
	if source == "" {
		source = cmd.Origin.Source
	}
	// Attributes on the record itself: a logger With them would be built
	// (its attributes encoded) for every publication.
	attrs := [...]slog.Attr{slog.String("instance", cmd.Instance), slog.String("traceId", tc.TraceID), slog.String("messageId", id), slog.String("type", a.Type)}
	var res *Result
	t, err := s.parseTiming(a)
	switch {
	case err != nil:
	case !t.publishAt.IsZero():
		return s.schedulePublish(ctx, cmd, a, t, tc)
	default:
		res, err = s.publishOnce(ctx, cmd, a, id, source, tc)
	}
	if err != nil {
		e := scrub(err)
		s.log.LogAttrs(ctx, slog.LevelWarn, "status failed", append(attrs[:], slog.String("status", string(e.Code)), slog.Any("err", err))...)
		if !errors.Is(err, errcode.ErrInstanceNotFound) {
			s.emit(ctx, Event{Type: EventStatusFailed, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
				Data: FailedData{MessageID: id, MessageType: a.Type, Source: source, TraceID: tc.TraceID, Status: string(e.Code), Message: e.Message}})
		}
		return nil, e
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "status published", attrs[:]...)
	if t.expire > 0 {
		s.scheduleExpiry(ctx, cmd, res, t.expire, a.ExpireAfter, tc)
	}
	return res, nil
}

// scrub is the error a command answers: database and driver failures
// become a generic internal_error (or insufficient_storage for a full disk)
// whose cause stays in Err for the logs, so no answer, event or DLQ reason
// carries a driver's text (SQLSTATEs, table names, file paths).
func scrub(err error) *errcode.Error {
	e := errcode.AsError(err)
	switch {
	case e.Code == errcode.CodeInsufficientStorage:
		return e
	case store.IsDiskFull(err):
		return &errcode.Error{Code: errcode.CodeInsufficientStorage, Message: errcode.ErrInsufficientStorage.Message, Err: err}
	case e.Code != errcode.CodeInternal && store.IsDriverError(err):
		return &errcode.Error{Code: errcode.CodeInternal, Message: "Internal error", Err: err}
	}
	return e
}

// publishOnce publishes now: session, status.accepted, audience, message,
// send, then the status row with its status.published event.
func (s *Service) publishOnce(ctx context.Context, cmd Command, a PublishArgs, id, source string, tc tracing.Context) (*Result, error) {
	vctx, endValidate := step(ctx, stageValidate)
	sess, err := s.session(vctx, cmd.Instance)
	endValidate(err)
	if errors.Is(err, errcode.ErrInstanceNotFound) {
		return nil, err
	}
	// status.accepted commits with the request's next write (or on its own
	// while the media step runs). accepted() waits for that commit; it runs
	// before any later event of this status (the deferred call before
	// publish emits status.failed), so their order holds.
	accepted := s.record(ctx, Outcome{Event: Event{Type: EventStatusAccepted, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
		Data: AcceptedData{MessageID: id, MessageType: a.Type, Source: source, TraceID: tc.TraceID}}})
	defer accepted()
	if err != nil {
		return nil, err
	}
	// Before any media work: a status that would reach nobody is refused.
	actx, endAudience := step(ctx, stageAudience)
	aud, err := s.audience(actx, sess, a)
	endAudience(err)
	if err != nil {
		return nil, err
	}
	msg, err := s.message(ctx, sess, cmd.Instance, a)
	if err != nil {
		return nil, err
	}
	// A send that is itself a database write (the sandbox's) is deferred
	// into the transaction that records the outcome: one commit for the
	// request, and the send, the status row and status.published all
	// happen or none does.
	ctx, deferred := store.WithDeferred(ctx)
	ts, confirmed, err := s.send(ctx, sess, cmd.Instance, id, msg)
	if err != nil {
		return nil, err
	}
	rec, res, published := sent(cmd, id, a.Type, source, tc, ts, aud, confirmed)
	sctx, endStore := step(ctx, stageStore)
	recorded := s.record(sctx, Outcome{Event: published, Status: rec})
	accepted() // its event goes out before status.published
	err = recorded()
	endStore(err)
	if err != nil && deferred.Used() {
		return nil, sendError(err) // the send was that write: it did not happen
	}
	// Else the status is out: a failed record (logged) only costs the
	// ability to delete it.
	return res, nil
}

// message builds the WhatsApp message of a publication (uploading its media).
func (s *Service) message(ctx context.Context, sess whatsapp.Session, instance string, a PublishArgs) (*waE2E.Message, error) {
	switch a.Type {
	case TypeText:
		msg, err := whatsapp.BuildText(whatsapp.TextStatus{Text: a.Message, BackgroundColor: a.BackgroundColor, Font: a.Font})
		if err != nil {
			return nil, errcode.Errorf(errcode.CodeInvalid, "%s", err)
		}
		return msg, nil
	case TypeImage, TypeVideo, TypeAudio:
		return s.buildMedia(ctx, sess, instance, a)
	}
	return nil, errcode.Errorf(errcode.CodeInvalid, "Type must be one of: text, image, video, audio")
}

// send sends msg and returns WhatsApp's timestamp (now when it gave none)
// and whether WhatsApp acknowledged the send.
func (s *Service) send(ctx context.Context, sess whatsapp.Session, instance, id string, msg *waE2E.Message) (time.Time, bool, error) {
	sctx, endSend := step(ctx, stageSend)
	ts, err := sess.SendStatus(sctx, id, msg)
	endSend(err)
	confirmed := true
	if errors.Is(err, whatsapp.ErrUnconfirmed) {
		// Sent, not acknowledged: recipients may have it. Recorded and
		// reported as published (confirmed: false), so the idempotency key
		// completes and a retry replays this result instead of posting again.
		s.log.LogAttrs(ctx, slog.LevelWarn, "status sent, not confirmed by WhatsApp", slog.String("instance", instance),
			slog.String("messageId", id), slog.Any("err", err))
		confirmed, err = false, nil
	}
	if err != nil {
		return time.Time{}, false, sendError(err)
	}
	if ts.IsZero() {
		ts = s.now()
	}
	return ts.UTC(), confirmed, nil
}

// sent is what a status sent at ts leaves: its row, the command's result and
// its status.published event.
func sent(cmd Command, id, typ, source string, tc tracing.Context, ts time.Time, aud *Audience, confirmed bool) (*store.Status, *Result, Event) {
	origin, _ := json.Marshal(cmd.Origin)
	rec := &store.Status{Instance: cmd.Instance, MessageID: id, Type: typ, Source: source, TraceID: tc.TraceID, Origin: string(origin), CreatedAt: ts,
		Unconfirmed: !confirmed}
	res := &Result{MessageID: id, MessageType: typ, Chat: Chat{JID: StatusBroadcastJID}, Timestamp: ts, Source: source, TraceID: tc.TraceID,
		Confirmed: &confirmed, Audience: aud}
	if !cmd.Origin.IsZero() {
		o := cmd.Origin
		res.Origin = &o
	}
	published := Event{Type: EventStatusPublished, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
		Data: PublishedData{MessageID: id, MessageType: typ, Chat: res.Chat, Timestamp: ts, Source: source, TraceID: tc.TraceID,
			Confirmed: confirmed, Audience: aud}}
	return rec, res, published
}

// sendError is a failed send or revoke as the API reports it.
func sendError(err error) *errcode.Error {
	if errors.Is(err, whatsapp.ErrNotConnected) {
		return &errcode.Error{Code: errcode.CodeDisconnected, Message: errcode.ErrDisconnected.Message, Err: err}
	}
	if store.IsDriverError(err) || store.IsDiskFull(err) {
		return scrub(err) // the sandbox's (or whatsmeow's store's) database failed, not WhatsApp
	}
	return &errcode.Error{Code: errcode.CodeSendFailed, Message: "Failed to send status: " + err.Error(), Err: err}
}

// sendAsVoice reports whether an audio status goes out as a voice note:
// always. WhatsApp's status viewer plays audio only as a voice status (the
// composer records voice since February 2023 and offers no audio-file
// status); a non-PTT AudioMessage on status@broadcast is not shown as
// playable, so `isVoice: false` is sent as voice rather than published for
// nobody to hear (README "Audio statuses").
func sendAsVoice(PublishArgs) bool { return true }

func (s *Service) buildMedia(ctx context.Context, sess whatsapp.Session, instance string, a PublishArgs) (*waE2E.Message, error) {
	if s.media == nil {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "media statuses are not available: the media pipeline is not configured")
	}
	mctx, endPrepare := step(ctx, stageMediaPrepare)
	pm, err := preparedFrom(ctx) // prepared ahead by the scheduler
	if pm == nil {
		pm, err = s.media.Prepare(mctx, mediaRequest(instance, a))
	}
	endPrepare(err)
	if err != nil {
		return nil, errcode.AsError(err)
	}
	defer pm.Cleanup()
	f, err := pm.Open()
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	defer f.Close()
	uctx, endUpload := step(ctx, stageUpload)
	up, err := sess.Upload(uctx, f, pm.Size, whatsapp.MediaKind(pm.Type))
	endUpload(err)
	if err != nil {
		if errors.Is(err, whatsapp.ErrNotConnected) {
			return nil, &errcode.Error{Code: errcode.CodeDisconnected, Message: errcode.ErrDisconnected.Message, Err: err}
		}
		return nil, errcode.Wrap(errcode.CodeMediaUploadFailed, "Failed to upload media to WhatsApp", err)
	}
	if pm.Used != nil {
		pm.Used()
	}
	msg, err := whatsapp.BuildMedia(whatsapp.MediaStatus{
		Kind: whatsapp.MediaKind(pm.Type), Caption: a.Message, Mimetype: pm.Mimetype, Upload: up,
		Width: pm.Width, Height: pm.Height, Seconds: pm.Seconds, Thumbnail: pm.Thumbnail,
		PTT: pm.Voice, Waveform: pm.Waveform, BackgroundColor: a.BackgroundColor,
	})
	if err != nil {
		return nil, errcode.Errorf(errcode.CodeInvalid, "%s", err)
	}
	return msg, nil
}

func (s *Service) delete(ctx context.Context, cmd Command, a DeleteArgs, tc tracing.Context) (*Result, error) {
	var sess whatsapp.Session
	var err error
	if a.DeleteForEveryone {
		sess, err = s.session(ctx, cmd.Instance)
	} else {
		// "Delete for me" is local: it works while the instance is offline.
		_, err = s.instance(ctx, cmd.Instance)
	}
	if err != nil {
		return nil, err
	}
	st, err := s.store.StatusGet(ctx, cmd.Instance, a.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.ErrMessageNotFound
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
	}
	res := &Result{MessageID: a.MessageID, MessageType: st.Type, Chat: Chat{JID: StatusBroadcastJID}, Source: st.Source, TraceID: tc.TraceID}
	if a.DeleteForEveryone {
		ts, err := sess.RevokeStatus(ctx, a.MessageID)
		if err != nil {
			return nil, sendError(err)
		}
		if ts.IsZero() {
			ts = s.now()
		}
		res.Timestamp, res.DeleteType = ts.UTC(), "revoke"
		if err := s.store.StatusMarkRevoked(ctx, cmd.Instance, a.MessageID, res.Timestamp); err != nil {
			s.log.Error("record revoke", "instance", cmd.Instance, "messageId", a.MessageID, "err", err)
		}
	} else {
		// "Delete for me" on one's own status only forgets it here: WhatsApp
		// keeps showing it to contacts until it expires.
		if err := s.store.StatusDelete(ctx, cmd.Instance, a.MessageID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", err)
		}
		res.Timestamp, res.DeleteType = s.now(), "delete_for_me"
	}
	s.emit(ctx, Event{Type: EventStatusDeleted, Instance: cmd.Instance, TraceParent: tc.String(), Origin: cmd.Origin,
		Data: DeletedData{MessageID: a.MessageID, DeleteType: res.DeleteType, Timestamp: res.Timestamp, TraceID: tc.TraceID}})
	return res, nil
}

// EmitInstanceOwner emits instance.owner: replica took ("taken"), gave back
// ("released") or lost ("lost") the lease of instance.
func (s *Service) EmitInstanceOwner(ctx context.Context, instance, replica, change string) {
	owner := ""
	if change == "taken" {
		owner = replica
	}
	s.emit(ctx, Event{Type: EventInstanceOwner, Instance: instance, TraceParent: tracing.New().String(),
		Origin: Origin{Platform: "statusflow"}, Data: InstanceOwnerData{Replica: replica, Change: change, Owner: owner}})
}

// EmitInstanceState reports an instance's state change as an event.
func (s *Service) EmitInstanceState(ctx context.Context, c whatsapp.StateChange) {
	s.emit(ctx, Event{Type: EventInstanceState, Instance: c.Instance, TraceParent: tracing.New().String(),
		Origin: Origin{Platform: "statusflow"}, Data: InstanceStateData{State: string(c.State), JID: c.JID, Reason: c.Reason}})
}

// emit records ev and waits for it. Failures are logged (by record), never
// returned to the command: what the event reports already happened.
func (s *Service) emit(ctx context.Context, ev Event) {
	s.record(ctx, Outcome{Event: ev})()
}

// record queues o on the outcome port; the returned func waits for its
// commit (once; later calls return the first's error), counts the event
// and logs a failure.
func (s *Service) record(ctx context.Context, o Outcome) (wait func() error) {
	ectx, ev := s.eventContext(ctx, o.Event)
	o.Event = ev
	ectx, endEmit := step(ectx, stageEmit, attribute.String("statusflow.event.type", ev.Type))
	recorded := s.outcomes.Record(ectx, o)
	var (
		once sync.Once
		err  error
	)
	return func() error {
		once.Do(func() {
			err = recorded()
			endEmit(err)
			metrics.Event(ev.Type)
			if err != nil {
				s.log.Error("emit event", "type", ev.Type, "instance", ev.Instance, "err", fmt.Sprint(err))
			}
		})
		return err
	}
}

// eventContext fills ev's id and time and returns the context its span
// starts in: ctx without its cancellation (an event is recorded even when
// the request is gone), in the event's trace.
func (s *Service) eventContext(ctx context.Context, ev Event) (context.Context, Event) {
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ectx := context.WithoutCancel(ctx)
	if _, ok := tracing.From(ectx); !ok { // instance.state: the span joins the event's trace
		if tc, ok := tracing.Parse(ev.TraceParent); ok {
			ectx = tracing.With(ectx, tc)
		}
	}
	return ectx, ev
}

// newEventID is a UUIDv7: time-ordered, so the event log's id index grows at
// its right edge (a random UUID took a random page per event).
func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// SetClock replaces the service's clock (tests drive schedules with it).
func (s *Service) SetClock(now func() time.Time) { s.now = now }
