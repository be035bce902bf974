package whatsapp

import (
	"fmt"
	"strconv"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// Font names accepted in `font`, each mapped to the WhatsApp enum value it
// selects. schemas/status.publish.input.json lists the same names (a test
// keeps them in step); the schema is what rejects unknown ones.
//
// The enum was renamed over the years, and the original API docs' names
// (`system`, `serif`, `sans-serif`) come from its first names. WhatsApp's
// older protobuf schema (still shipped by Cobalt, it.auties.whatsapp
// TextMessageFontType) numbers them SANS_SERIF=0, SERIF=1,
// NORICAN_REGULAR=2, BRYNDAN_WRITE=3, BEBASNEUE_REGULAR=4, OSWALD_HEAVY=5;
// today's (whatsmeow's waE2E, Baileys' WAProto FontType) calls them
// SYSTEM=0, SYSTEM_TEXT=1, FB_SCRIPT=2, SYSTEM_BOLD=6, MORNINGBREEZE_REGULAR=7,
// CALISTOGA_REGULAR=8, EXO2_EXTRABOLD=9, COURIERPRIME_BOLD=10 and dropped
// 3–5. Phones render a number, not a name: 0 is the sans-serif system face
// and 1 the serif one, so `sans-serif` is 0 and `serif` is 1 (statusflow once
// sent `serif` as CALISTOGA and `sans-serif` as SYSTEM_TEXT, i.e. serif). The
// display faces get their own names; the older aliases stay accepted.
var fonts = map[string]waE2E.ExtendedTextMessage_FontType{
	"system":        waE2E.ExtendedTextMessage_SYSTEM,
	"sans-serif":    waE2E.ExtendedTextMessage_SYSTEM,      // historic SANS_SERIF = 0
	"serif":         waE2E.ExtendedTextMessage_SYSTEM_TEXT, // historic SERIF = 1
	"script":        waE2E.ExtendedTextMessage_FB_SCRIPT,   // historic NORICAN_REGULAR = 2
	"bold":          waE2E.ExtendedTextMessage_SYSTEM_BOLD,
	"morningbreeze": waE2E.ExtendedTextMessage_MORNINGBREEZE_REGULAR,
	"calistoga":     waE2E.ExtendedTextMessage_CALISTOGA_REGULAR,
	"exo2":          waE2E.ExtendedTextMessage_EXO2_EXTRABOLD,
	"courierprime":  waE2E.ExtendedTextMessage_COURIERPRIME_BOLD,
	// Aliases of the display faces, accepted since the first release.
	"monospace":   waE2E.ExtendedTextMessage_COURIERPRIME_BOLD,
	"handwriting": waE2E.ExtendedTextMessage_MORNINGBREEZE_REGULAR,
	"extrabold":   waE2E.ExtendedTextMessage_EXO2_EXTRABOLD,
}

// FontNames lists the accepted font names in documentation order.
func FontNames() []string {
	return []string{"system", "sans-serif", "serif", "script", "bold", "morningbreeze", "calistoga", "exo2", "courierprime",
		"monospace", "handwriting", "extrabold"}
}

// Font returns the WhatsApp enum for a font name; "" is system.
func Font(name string) (waE2E.ExtendedTextMessage_FontType, bool) {
	if name == "" {
		return waE2E.ExtendedTextMessage_SYSTEM, true
	}
	f, ok := fonts[strings.ToLower(name)]
	return f, ok
}

// Defaults for text statuses when the request leaves them out.
const (
	// DefaultBackgroundARGB is WhatsApp's teal, the colour of its own text statuses.
	DefaultBackgroundARGB uint32 = 0xFF128C7E
	// DefaultTextARGB is opaque white, readable on every default background.
	DefaultTextARGB uint32 = 0xFFFFFFFF
)

// ParseColor turns `#RRGGBB` (opaque) or `#AARRGGBB` into ARGB.
func ParseColor(s string) (uint32, error) {
	h, ok := strings.CutPrefix(s, "#")
	if !ok || (len(h) != 6 && len(h) != 8) {
		return 0, fmt.Errorf("colour %q is not #RRGGBB or #AARRGGBB", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("colour %q is not hexadecimal", s)
	}
	if len(h) == 6 {
		v |= 0xFF000000
	}
	return uint32(v), nil
}

// TextStatus is a text status as the core hands it to [BuildText].
type TextStatus struct {
	Text            string
	BackgroundColor string
	Font            string
}

// BuildText builds the message of a text status: an ExtendedTextMessage with
// background colour, text colour and font, exactly as WhatsApp clients send it.
func BuildText(s TextStatus) (*waE2E.Message, error) {
	bg := DefaultBackgroundARGB
	if s.BackgroundColor != "" {
		c, err := ParseColor(s.BackgroundColor)
		if err != nil {
			return nil, err
		}
		bg = c
	}
	font, ok := Font(s.Font)
	if !ok {
		return nil, fmt.Errorf("unknown font %q", s.Font)
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text:           proto.String(s.Text),
		BackgroundArgb: proto.Uint32(bg),
		TextArgb:       proto.Uint32(DefaultTextARGB),
		Font:           font.Enum(),
		PreviewType:    waE2E.ExtendedTextMessage_NONE.Enum(),
	}}, nil
}

// MediaStatus is a prepared media status: what the media pipeline measured
// and what the upload recorded.
type MediaStatus struct {
	Kind      MediaKind
	Caption   string
	Mimetype  string
	Upload    *Upload
	Width     uint32
	Height    uint32
	Seconds   uint32
	Thumbnail []byte
	// Audio only.
	PTT             bool
	Waveform        []byte
	BackgroundColor string
}

// BuildMedia builds the image, video or audio message of a media status with
// every field a WhatsApp client needs to download, decrypt and show it.
func BuildMedia(s MediaStatus) (*waE2E.Message, error) {
	u := s.Upload
	if u == nil {
		return nil, fmt.Errorf("media status without upload")
	}
	var caption *string
	if s.Caption != "" {
		caption = proto.String(s.Caption)
	}
	switch s.Kind {
	case MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath),
			MediaKey: u.MediaKey, FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256,
			FileLength: proto.Uint64(u.FileLength), Mimetype: proto.String(s.Mimetype),
			Caption: caption, Width: nonZero(s.Width), Height: nonZero(s.Height),
			JPEGThumbnail: s.Thumbnail, MediaKeyTimestamp: mediaKeyTimestamp(u),
		}}, nil
	case MediaVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath),
			MediaKey: u.MediaKey, FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256,
			FileLength: proto.Uint64(u.FileLength), Mimetype: proto.String(s.Mimetype),
			Caption: caption, Width: nonZero(s.Width), Height: nonZero(s.Height),
			Seconds: proto.Uint32(s.Seconds), JPEGThumbnail: s.Thumbnail, MediaKeyTimestamp: mediaKeyTimestamp(u),
		}}, nil
	case MediaAudio:
		m := &waE2E.AudioMessage{
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath),
			MediaKey: u.MediaKey, FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256,
			FileLength: proto.Uint64(u.FileLength), Mimetype: proto.String(s.Mimetype),
			Seconds: proto.Uint32(s.Seconds), PTT: proto.Bool(s.PTT), MediaKeyTimestamp: mediaKeyTimestamp(u),
		}
		if s.PTT {
			m.Waveform = s.Waveform
			bg := DefaultBackgroundARGB
			if s.BackgroundColor != "" {
				c, err := ParseColor(s.BackgroundColor)
				if err != nil {
					return nil, err
				}
				bg = c
			}
			m.BackgroundArgb = proto.Uint32(bg)
		}
		return &waE2E.Message{AudioMessage: m}, nil
	}
	return nil, fmt.Errorf("unknown media kind %q", s.Kind)
}

func mediaKeyTimestamp(u *Upload) *int64 {
	if u.MediaKeyTimestamp == 0 {
		return nil
	}
	return proto.Int64(u.MediaKeyTimestamp)
}

func nonZero(v uint32) *uint32 {
	if v == 0 {
		return nil
	}
	return proto.Uint32(v)
}
