// Package errcode is statusflow's one error vocabulary: a [Code] says what
// went wrong and an [Error] carries it with the message a user reads. Every
// layer returns these (the core, the schemas, the media pipeline, webhooks,
// auth, the bus) and every front door maps a Code to its own answer (an HTTP
// status in the server's table, an ack/nak/term and DLQ status on the bus).
//
// It imports only the standard library, so packages as low as schemas and
// media can return coded errors without linking the database drivers or
// whatsmeow that the publishing core needs.
package errcode

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Code identifies what went wrong. Codes are part of the external contract: the
// public ones appear as `error.status` in HTTP envelopes, in DLQ reasons and in
// `status.failed` events, so they never change once shipped.
type Code string

const (
	// CodeInvalid: the request broke a schema rule; the message is the literal
	// message of API.md §4–5. Never retried.
	CodeInvalid Code = "invalid_request"
	// CodeInstanceNotFound: no instance has that name. Never retried.
	CodeInstanceNotFound Code = "instance_not_found"
	// CodeMessageNotFound: no stored status has that id on the instance. Never retried.
	CodeMessageNotFound Code = "message_not_found"
	// CodeIdempotencyKeyReused: an Idempotency-Key was reused with another body.
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	// CodeMediaDownloadFailed: the media URL could not be fetched (network,
	// refused address, HTTP error, timeout).
	CodeMediaDownloadFailed Code = "media_download_failed"
	// CodeMediaValidationFailed: the media was fetched but is unusable (too
	// large, undecodable, wrong kind for the status type, lying mimeType).
	CodeMediaValidationFailed Code = "media_validation_failed"
	// CodeUnsupportedMediaType: the detected type cannot be delivered for the
	// requested status type.
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	// CodeMediaUploadFailed: the engine could not upload the prepared media.
	CodeMediaUploadFailed Code = "media_upload_failed"
	// CodeAudioConversionFailed: FFmpeg failed to convert audio.
	CodeAudioConversionFailed Code = "audio_conversion_failed"
	// CodeSendFailed: the engine refused or failed to send the message.
	CodeSendFailed Code = "send_failed"
	// CodeDisconnected: the instance is not connected to WhatsApp. Retryable.
	CodeDisconnected Code = "disconnected"
	// CodeInternal: anything else (a database failure, a bug).
	CodeInternal Code = "internal_error"
	// CodeNodeNotFound: no node of the catalog has that id. Never retried.
	CodeNodeNotFound Code = "node_not_found"
	// CodeIdempotencyInProgress: a request with the same Idempotency-Key is
	// still running and did not finish within the wait. Retryable.
	CodeIdempotencyInProgress Code = "idempotency_in_progress"
	// CodeScheduleNotFound: the instance has no schedule with that id. Never retried.
	CodeScheduleNotFound Code = "schedule_not_found"
	// CodeScheduleNotPending: the schedule already ran, failed or was
	// cancelled, so it cannot be cancelled. Never retried.
	CodeScheduleNotPending Code = "schedule_not_pending"
	// CodeScheduleMissed: a scheduled publication came due while no
	// statusflow was running and was found later than the grace window allows.
	CodeScheduleMissed Code = "schedule_missed"
	// CodeInsufficientStorage: the server's disk (database, media temp files)
	// is full. HTTP 507. Retryable: the command may succeed once space is freed.
	CodeInsufficientStorage Code = "insufficient_storage"
	// CodeEmptyAudience: the status would reach nobody (the phone's status
	// privacy and contacts leave no recipient) and the request did not say
	// allowEmptyAudience. Never retried: the phone's settings must change.
	CodeEmptyAudience Code = "empty_audience"

	// Front-door and edge codes. They never reach the core; the HTTP table
	// and the bus map them like the others.

	// CodeTokenMissing: no API token was given (HTTP 401).
	CodeTokenMissing Code = "token_missing"
	// CodeTokenInvalid: the token is unknown, or an instance token was used
	// where the account token is needed (HTTP 401).
	CodeTokenInvalid Code = "token_invalid"
	// CodeWrongInstance: an instance token used on another instance (HTTP 403).
	CodeWrongInstance Code = "wrong_instance"
	// CodeWebhookNotFound: no webhook has that label on the instance (HTTP 404).
	CodeWebhookNotFound Code = "webhook_not_found"
	// CodeDeliveryNotFound: no delivery has that id on the instance (HTTP 404).
	CodeDeliveryNotFound Code = "delivery_not_found"
	// CodeInboundNotFound: no inbound hook has that id (HTTP 404).
	CodeInboundNotFound Code = "inbound_hook_not_found"
	// CodeWebhookDisabled: a replay of a disabled or deleted webhook's delivery (HTTP 409).
	CodeWebhookDisabled Code = "webhook_disabled"
	// CodeDeliveryBusy: a replay of a delivery being sent right now (HTTP 409).
	CodeDeliveryBusy Code = "delivery_busy"
	// CodeSignatureMissing: an inbound webhook without its Standard Webhooks headers (HTTP 401).
	CodeSignatureMissing Code = "signature_missing"
	// CodeSignatureInvalid: an inbound webhook whose signature does not verify (HTTP 401).
	CodeSignatureInvalid Code = "signature_invalid"
	// CodeTimestampOutOfRange: an inbound webhook signed too long ago or in the future (HTTP 401).
	CodeTimestampOutOfRange Code = "timestamp_out_of_range"
	// CodeReplayed: an inbound webhook-id already received (HTTP 409).
	CodeReplayed Code = "replayed"

	// Bus codes: the DLQ status of a trigger dead-lettered before it reached
	// the core, and the request door's answer to a duplicate. They are shown
	// as `error.status` in NATS reply envelopes.

	// CodeUnauthorized: a trigger with a missing or unknown token, or a bad signature.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden: a trigger whose instance token is for another instance.
	CodeForbidden Code = "forbidden"
	// CodeMaxDeliveries: a retryable failure that did not clear within the
	// bus's maximum number of deliveries.
	CodeMaxDeliveries Code = "max_deliveries"
	// CodeBadSubject: a trigger subject that names no node and instance.
	CodeBadSubject Code = "invalid_subject"
	// CodeDuplicate: a request whose Nats-Msg-Id the trigger stream already
	// holds; its result went to the first requester.
	CodeDuplicate Code = "duplicate"
)

// Public reports whether the code is shown as `error.status` in envelopes.
// API.md's error table gives no status for plain validation and not-found
// rows, nor for authentication and webhook-management answers.
func (c Code) Public() bool {
	switch c {
	case CodeInvalid, CodeInstanceNotFound, CodeMessageNotFound, CodeInternal, CodeNodeNotFound, CodeScheduleNotFound,
		CodeTokenMissing, CodeTokenInvalid, CodeWrongInstance,
		CodeWebhookNotFound, CodeDeliveryNotFound, CodeInboundNotFound, CodeWebhookDisabled, CodeDeliveryBusy,
		CodeSignatureMissing, CodeSignatureInvalid, CodeTimestampOutOfRange, CodeReplayed:
		return false
	}
	return true
}

// Retryable reports whether the same command may succeed later without change:
// a disconnected instance, a send or upload that failed on the network, a
// download that failed (the URL's server may come back) and internal errors.
// Front doors that retry (the NATS trigger consumer) use it; invalid input,
// unknown instances and unusable media are permanent.
func (c Code) Retryable() bool {
	switch c {
	case CodeDisconnected, CodeSendFailed, CodeMediaUploadFailed, CodeMediaDownloadFailed, CodeInternal, CodeIdempotencyInProgress, CodeInsufficientStorage:
		return true
	}
	return false
}

// Error is statusflow's one error type. Front doors map its Code
// to their own answer (an HTTP status, an ack/nak/term, a DLQ entry); Message is
// what a user reads, Err the underlying cause for logs.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// New builds an [Error] with a fixed message, for sentinels.
func New(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Errorf builds an [Error] whose message is formatted.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an [Error] with a fixed user message and a cause kept for logs.
func Wrap(code Code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches any *Error with the same Code, so errors.Is(err, ErrDisconnected)
// holds however much detail was added.
func (e *Error) Is(target error) bool {
	var o *Error
	return errors.As(target, &o) && o.Code == e.Code
}

// Sentinels for errors.Is. Returned errors carry the same Code with their own message.
var (
	// ErrInstanceNotFound is returned when the command names an unknown instance.
	ErrInstanceNotFound = &Error{Code: CodeInstanceNotFound, Message: "Instance not found"}
	// ErrMessageNotFound is returned by Delete for an id that was never published on the instance.
	ErrMessageNotFound = &Error{Code: CodeMessageNotFound, Message: "message not found"}
	// ErrDisconnected is returned when the instance's engine is not connected.
	ErrDisconnected = &Error{Code: CodeDisconnected, Message: "Instance is not connected to WhatsApp"}
	// ErrIdempotencyKeyReused is returned when a key comes back with a different body.
	ErrIdempotencyKeyReused = &Error{Code: CodeIdempotencyKeyReused, Message: "Idempotency-Key was already used with a different request"}
	// ErrIdempotencyInProgress is returned when an earlier request with the same key is still running.
	ErrIdempotencyInProgress = &Error{Code: CodeIdempotencyInProgress, Message: "A request with this Idempotency-Key is still in progress; retry later"}
	// ErrNodeNotFound is returned by the node catalog for an unknown node id.
	ErrNodeNotFound = &Error{Code: CodeNodeNotFound, Message: "Node not found"}
	// ErrScheduleNotFound is returned when the instance has no schedule with that id.
	ErrScheduleNotFound = &Error{Code: CodeScheduleNotFound, Message: "Schedule not found"}
	// ErrInsufficientStorage is returned when a write failed because the disk is full.
	ErrInsufficientStorage = &Error{Code: CodeInsufficientStorage, Message: "The server is out of disk space; try again later"}
)

// AsError returns err as an *Error, wrapping unknown errors as [CodeInternal]
// ([CodeInsufficientStorage] when the file system is full).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if IsDiskFull(err) {
		return &Error{Code: CodeInsufficientStorage, Message: ErrInsufficientStorage.Message, Err: err}
	}
	return &Error{Code: CodeInternal, Message: "Internal error", Err: err}
}

// IsDiskFull reports whether err is the file system refusing a write for
// lack of space (ENOSPC) or quota (EDQUOT). The store adds its databases'
// own codes (store.IsDiskFull).
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Backoff is an error the caller may retry after Wait: a cluster replica
// answering for an instance in a failover gap (no owner yet, the owner
// unreachable). Front doors say so (HTTP Retry-After, a NAK with that delay).
type Backoff struct {
	Err  error
	Wait time.Duration
}

func (b *Backoff) Error() string { return b.Err.Error() }

func (b *Backoff) Unwrap() error { return b.Err }

// RetryAfter wraps err as a [Backoff] of d; errors.Is and errors.As still
// see err's Code.
func RetryAfter(err error, d time.Duration) error { return &Backoff{Err: err, Wait: d} }

// RetryAfterOf returns the wait of a [Backoff] in err's chain.
func RetryAfterOf(err error) (time.Duration, bool) {
	var b *Backoff
	if errors.As(err, &b) {
		return b.Wait, true
	}
	return 0, false
}
