package status

import "github.com/statusflow/statusflow/internal/errcode"

// The core's errors are statusflow's one error vocabulary, declared in the
// standard-library-only package [errcode] so that low packages (schemas,
// media) return them without linking the core. These names re-export it for
// the core's callers; they are the same types and values.

// Code identifies what went wrong; see [errcode.Code].
type Code = errcode.Code

// Error is the one error type; see [errcode.Error].
type Error = errcode.Error

// The core's codes; see [errcode] for their meaning.
const (
	CodeInvalid               = errcode.CodeInvalid
	CodeInstanceNotFound      = errcode.CodeInstanceNotFound
	CodeMessageNotFound       = errcode.CodeMessageNotFound
	CodeIdempotencyKeyReused  = errcode.CodeIdempotencyKeyReused
	CodeMediaDownloadFailed   = errcode.CodeMediaDownloadFailed
	CodeMediaValidationFailed = errcode.CodeMediaValidationFailed
	CodeUnsupportedMediaType  = errcode.CodeUnsupportedMediaType
	CodeMediaUploadFailed     = errcode.CodeMediaUploadFailed
	CodeAudioConversionFailed = errcode.CodeAudioConversionFailed
	CodeSendFailed            = errcode.CodeSendFailed
	CodeDisconnected          = errcode.CodeDisconnected
	CodeInternal              = errcode.CodeInternal
	CodeNodeNotFound          = errcode.CodeNodeNotFound
	CodeIdempotencyInProgress = errcode.CodeIdempotencyInProgress
	CodeScheduleNotFound      = errcode.CodeScheduleNotFound
	CodeScheduleNotPending    = errcode.CodeScheduleNotPending
	CodeScheduleMissed        = errcode.CodeScheduleMissed
	CodeInsufficientStorage   = errcode.CodeInsufficientStorage
	CodeEmptyAudience         = errcode.CodeEmptyAudience
)

// Sentinels for errors.Is; see [errcode].
var (
	ErrInstanceNotFound      = errcode.ErrInstanceNotFound
	ErrMessageNotFound       = errcode.ErrMessageNotFound
	ErrDisconnected          = errcode.ErrDisconnected
	ErrIdempotencyKeyReused  = errcode.ErrIdempotencyKeyReused
	ErrIdempotencyInProgress = errcode.ErrIdempotencyInProgress
	ErrNodeNotFound          = errcode.ErrNodeNotFound
	ErrScheduleNotFound      = errcode.ErrScheduleNotFound
	ErrInsufficientStorage   = errcode.ErrInsufficientStorage
)

// Errorf builds an [Error] whose message is formatted.
func Errorf(code Code, format string, args ...any) *Error {
	return errcode.Errorf(code, format, args...)
}

// Wrap builds an [Error] with a fixed user message and a cause kept for logs.
func Wrap(code Code, message string, err error) *Error { return errcode.Wrap(code, message, err) }

// AsError returns err as an *Error, wrapping unknown errors as [CodeInternal].
func AsError(err error) *Error { return errcode.AsError(err) }

// IsDiskFull reports whether err is the file system refusing a write for lack of space; see [errcode.IsDiskFull].
func IsDiskFull(err error) bool { return errcode.IsDiskFull(err) }
