package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/store"
)

// httpStatus maps error codes to HTTP statuses (API.md §2, §4): the core's,
// and the auth and webhooks packages' sentinels. It is the HTTP front door's
// one mapping table.
var httpStatus = map[errcode.Code]int{
	errcode.CodeInvalid:               http.StatusBadRequest,
	errcode.CodeInstanceNotFound:      http.StatusNotFound,
	errcode.CodeMessageNotFound:       http.StatusNotFound,
	errcode.CodeIdempotencyKeyReused:  http.StatusConflict,
	errcode.CodeMediaDownloadFailed:   http.StatusBadRequest,
	errcode.CodeMediaValidationFailed: http.StatusBadRequest,
	errcode.CodeUnsupportedMediaType:  http.StatusBadRequest,
	errcode.CodeMediaUploadFailed:     http.StatusInternalServerError,
	errcode.CodeAudioConversionFailed: http.StatusInternalServerError,
	errcode.CodeSendFailed:            http.StatusInternalServerError,
	errcode.CodeDisconnected:          http.StatusServiceUnavailable,
	errcode.CodeInternal:              http.StatusInternalServerError,
	errcode.CodeNodeNotFound:          http.StatusNotFound,
	errcode.CodeIdempotencyInProgress: http.StatusConflict,
	errcode.CodeScheduleNotFound:      http.StatusNotFound,
	errcode.CodeScheduleNotPending:    http.StatusConflict,
	errcode.CodeScheduleMissed:        http.StatusConflict,
	errcode.CodeEmptyAudience:         http.StatusConflict,

	errcode.CodeTokenMissing:        http.StatusUnauthorized,
	errcode.CodeTokenInvalid:        http.StatusUnauthorized,
	errcode.CodeWrongInstance:       http.StatusForbidden,
	errcode.CodeWebhookNotFound:     http.StatusNotFound,
	errcode.CodeDeliveryNotFound:    http.StatusNotFound,
	errcode.CodeInboundNotFound:     http.StatusNotFound,
	errcode.CodeWebhookDisabled:     http.StatusConflict,
	errcode.CodeDeliveryBusy:        http.StatusConflict,
	errcode.CodeReplayed:            http.StatusConflict,
	errcode.CodeSignatureMissing:    http.StatusUnauthorized,
	errcode.CodeSignatureInvalid:    http.StatusUnauthorized,
	errcode.CodeTimestampOutOfRange: http.StatusUnauthorized,

	errcode.CodeInsufficientStorage: http.StatusInsufficientStorage,
}

// apiError is an error answered as-is: an HTTP status, a message and an
// optional internal status. Handlers return it for one-off answers that have no
// code (rate limit, instance management, query parameters).
type apiError struct {
	HTTP    int
	Message string
	Status  string
}

func (e *apiError) Error() string { return e.Message }

func newError(code int, msg string) *apiError { return &apiError{HTTP: code, Message: msg} }

// errorBody is the error envelope of API.md §3.
type errorBody struct {
	Success bool      `json:"success"`
	Error   errorInfo `json:"error"`
	TraceID string    `json:"traceId"`
}

type errorInfo struct {
	Message string `json:"message"`
	Status  string `json:"status,omitempty"`
}

// toEnvelope turns any error into (HTTP status, envelope).
func toEnvelope(err error, traceID string) (int, errorBody) {
	body := errorBody{TraceID: traceID}
	var ae *apiError
	var se *errcode.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
		body.Error = errorInfo{Message: ae.Message, Status: ae.Status}
		return ae.HTTP, body
	case errors.As(err, &se):
		code, ok := httpStatus[se.Code]
		if !ok {
			code = http.StatusInternalServerError
		}
		body.Error.Message = se.Message
		if se.Code.Public() {
			body.Error.Status = string(se.Code)
		}
		return code, body
	case errors.As(err, &fe):
		body.Error.Message = fiberMessage(fe)
		return fe.Code, body
	case store.IsDiskFull(err):
		body.Error = errorInfo{Message: errcode.ErrInsufficientStorage.Message, Status: string(errcode.CodeInsufficientStorage)}
		return http.StatusInsufficientStorage, body
	}
	body.Error.Message = "Internal error"
	return http.StatusInternalServerError, body
}

// reason is an error's text for an answer, unless it comes from the
// database or its driver: then it is logged with the trace id and the
// answer says only that it failed.
func (s *Server) reason(c *fiber.Ctx, err error) string {
	switch {
	case store.IsDiskFull(err):
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "traceId", traceOf(c).TraceID, "err", err)
		return "cannot write: the disk is full"
	case store.IsDriverError(err):
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "traceId", traceOf(c).TraceID, "err", err)
		return "internal error (logged with trace id " + traceOf(c).TraceID + ")"
	}
	return err.Error()
}

func fiberMessage(fe *fiber.Error) string {
	switch fe.Code {
	case http.StatusNotFound:
		return "Route not found"
	case http.StatusMethodNotAllowed:
		return "Method not allowed"
	case http.StatusRequestEntityTooLarge:
		return "Request body too large"
	}
	return fe.Message
}

// errorHandler is Fiber's ErrorHandler: every error, Fiber's own included
// (404 route, 405, body too large), leaves in the envelope.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	tc := traceOf(c)
	if c.GetRespHeader("traceparent") == "" {
		c.Set("traceparent", tc.String())
	}
	code, body := toEnvelope(err, tc.TraceID)
	if wait, ok := errcode.RetryAfterOf(err); ok {
		// A failover gap (internal/cluster): retry once a replica owns the instance.
		c.Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", code, "traceId", tc.TraceID, "err", err)
	}
	return c.Status(code).JSON(body)
}
