package status

import "github.com/statusflow/statusflow/internal/media"

// MediaRequest is what the core asks of its media port (the pipeline in
// internal/media) for an image, video or audio status.
type MediaRequest = media.Request

// PreparedMedia is the port's answer: a file ready to upload. The caller
// must call Cleanup when done.
type PreparedMedia = media.Prepared
