package server

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/status"
)

// httpStatus maps the core's error codes to HTTP statuses (API.md §4). It is
// the HTTP front door's one mapping table.
var httpStatus = map[status.Code]int{
	status.CodeInvalid:               http.StatusBadRequest,
	status.CodeInstanceNotFound:      http.StatusNotFound,
	status.CodeMessageNotFound:       http.StatusNotFound,
	status.CodeIdempotencyKeyReused:  http.StatusConflict,
	status.CodeMediaDownloadFailed:   http.StatusBadRequest,
	status.CodeMediaValidationFailed: http.StatusBadRequest,
	status.CodeUnsupportedMediaType:  http.StatusBadRequest,
	status.CodeMediaUploadFailed:     http.StatusInternalServerError,
	status.CodeAudioConversionFailed: http.StatusInternalServerError,
	status.CodeSendFailed:            http.StatusInternalServerError,
	status.CodeDisconnected:          http.StatusServiceUnavailable,
	status.CodeInternal:              http.StatusInternalServerError,
	status.CodeNodeNotFound:          http.StatusNotFound,
	status.CodeIdempotencyInProgress: http.StatusConflict,
}

// apiError is an error answered as-is: an HTTP status, a message and an
// optional internal status. Handlers return it for errors the core never sees
// (auth, rate limit, instance management).
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
	var se *status.Error
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
	}
	body.Error.Message = "Internal error"
	return http.StatusInternalServerError, body
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
	if code >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", code, "traceId", tc.TraceID, "err", err)
	}
	return c.Status(code).JSON(body)
}
