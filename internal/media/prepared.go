package media

import "os"

// Request is what the publishing core asks of the pipeline for an image,
// video or audio status.
type Request struct {
	Instance string // the instance publishing; uploaded media must be its own, and it holds at most its share of the FFmpeg slots
	Type     string // image, video or audio
	URL      string
	MimeType string // declared by the caller; "" to sniff
	FileName string
	Voice    bool     // audio: deliver as a voice note (PTT)
	Duration *float64 // audio: seconds given by the caller
	Waveform []int    // audio: 64 values 0–100 given by the caller
}

// Prepared is media ready to upload: a temporary file in a format
// WhatsApp takes, with what the message needs to describe it. The caller must
// call Cleanup when done, whatever happens.
type Prepared struct {
	Type      string // image, video or audio
	Mimetype  string // e.g. "image/jpeg", "video/mp4", "audio/ogg; codecs=opus"
	Path      string // the temporary file holding the bytes to upload
	Size      int64
	Width     uint32
	Height    uint32
	Seconds   uint32
	Thumbnail []byte // JPEG, images and video
	Waveform  []byte // audio: 64 values 0–100
	Voice     bool

	// Remove is called by Cleanup; the pipeline sets it to remove its files.
	Remove func()
	// Used, when set, is called once the media is uploaded to WhatsApp: the
	// pipeline removes an uploaded source file then (uploads are single-use).
	Used func()
}

// Open opens the prepared file for reading.
func (p *Prepared) Open() (*os.File, error) { return os.Open(p.Path) }

// Cleanup removes the temporary files. Safe to call more than once.
func (p *Prepared) Cleanup() {
	if p != nil && p.Remove != nil {
		p.Remove()
		p.Remove = nil
	}
}
