package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/media"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/schemas"
)

// mediaUploadOverhead is what a multipart body may carry beyond the file
// itself (boundaries, part headers, a few small fields).
const mediaUploadOverhead = 64 << 10

// registerMedia adds media by upload (API.md §10) when the server has an
// upload store.
func (s *Server) registerMedia() {
	up := s.deps.Uploads
	if up == nil {
		return
	}
	// Only POST /api/media/… may send a body as large as a media file; every
	// other route keeps BodyLimit. fasthttp asks before reading the body.
	limit := int(up.MaxBytes()) + mediaUploadOverhead
	s.app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if bytes.Equal(h.Method(), []byte(fiber.MethodPost)) && bytes.HasPrefix(h.RequestURI(), []byte("/api/media/")) {
			return fasthttp.RequestConfig{MaxRequestBodySize: limit}
		}
		return fasthttp.RequestConfig{}
	}
	s.Handle(Route{Method: "POST", Path: "/api/media/:instance", Auth: AuthInstance, Tag: "media",
		Summary:   "Upload a media file; answers a short-lived mediaUrl to publish it with (multipart/form-data with a file part, or the raw file with its Content-Type)",
		Responses: Responses{201: DataOf(schemas.MediaUploadOutput)}, RequestTypes: []string{"multipart/form-data", "image/*", "video/*", "audio/*", "application/octet-stream"}}, s.uploadMedia)
	s.Handle(Route{Method: "GET", Path: "/api/media/:instance/:id", Auth: AuthInstance, Tag: "media",
		Summary:   "The bytes of an upload that is not yet published nor expired",
		Responses: Responses{200: ""}, ContentType: "*/*"}, s.getUpload)
}

// uploadMedia is POST /api/media/:instance.
func (s *Server) uploadMedia(c *fiber.Ctx) error {
	name := c.Params("instance")
	if _, err := s.deps.Instances.InstanceGetByName(c.UserContext(), name); errors.Is(err, store.ErrNotFound) {
		return newError(fiber.StatusNotFound, "Instance not found")
	} else if err != nil {
		return err
	}
	body, declared, fileName, err := uploadBody(c)
	if err != nil {
		return err
	}
	up, err := s.deps.Uploads.Put(c.UserContext(), name, declared, fileName, body)
	var se *errcode.Error
	if errors.As(err, &se) && se.Code == errcode.CodeMediaValidationFailed && strings.Contains(se.Message, "larger than the limit") {
		return &apiError{HTTP: fiber.StatusRequestEntityTooLarge, Message: se.Message, Status: string(errcode.CodeMediaValidationFailed)}
	}
	if err != nil {
		return err
	}
	return reply(c, fiber.StatusCreated, "Media uploaded", fiber.Map{"data": uploadView{
		MediaURL: c.BaseURL() + media.UploadPath(name, up.ID), ID: up.ID, MimeType: up.MimeType, Kind: up.Kind,
		FileName: up.FileName, Size: up.Size, ExpiresAt: up.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"),
	}})
}

// uploadView is the data of POST /api/media/:instance's answer
// (schemas/media.upload.output.json).
type uploadView struct {
	MediaURL  string `json:"mediaUrl"`
	ID        string `json:"id"`
	MimeType  string `json:"mimeType"`
	Kind      string `json:"kind"`
	FileName  string `json:"fileName,omitempty"`
	Size      int64  `json:"size"`
	ExpiresAt string `json:"expiresAt"`
}

// uploadBody finds the file in the request: the first file part of a
// multipart/form-data body (read as a stream, never spooled to temp files),
// or the raw body with its Content-Type.
func uploadBody(c *fiber.Ctx) (r io.Reader, declared, fileName string, err error) {
	ct := c.Get(fiber.HeaderContentType)
	mt, params, _ := mime.ParseMediaType(ct)
	if mt != "multipart/form-data" {
		if len(c.Body()) == 0 {
			return nil, "", "", newError(fiber.StatusBadRequest, "Invalid request body: send the file as multipart/form-data (a file part) or as the raw body with its Content-Type")
		}
		return bytes.NewReader(c.Body()), ct, "", nil
	}
	if params["boundary"] == "" {
		return nil, "", "", newError(fiber.StatusBadRequest, "Invalid request body: multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(c.Body()), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", "", newError(fiber.StatusBadRequest, "Invalid request body: the multipart form has no file part")
		}
		if err != nil {
			return nil, "", "", newError(fiber.StatusBadRequest, "Invalid request body: "+err.Error())
		}
		if p.FileName() != "" || p.FormName() == "file" {
			return p, p.Header.Get(fiber.HeaderContentType), p.FileName(), nil
		}
	}
}

// getUpload is GET /api/media/:instance/:id: the upload's bytes, for a
// caller that wants to check what it uploaded.
func (s *Server) getUpload(c *fiber.Ctx) error {
	up, f, err := s.deps.Uploads.Open(c.UserContext(), c.Params("instance"), c.Params("id"))
	if err != nil {
		return newError(http.StatusNotFound, err.Error())
	}
	c.Set(fiber.HeaderContentType, up.MimeType)
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.SendStream(f, int(up.Size))
}
