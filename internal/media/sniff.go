package media

import (
	"encoding/binary"
	"mime"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// sniffLen is how many leading bytes sniffing looks at (mimetype's default).
const sniffLen = 3072

// format is a file format the pipeline takes, as sniffed from the bytes.
type format struct {
	mime    string // canonical MIME type, as the sniffer names it
	kind    string // image, video or audio
	demuxer string // the FFmpeg demuxer forced with -f: never left to FFmpeg's guess
	label   string // for messages
}

// formats lists every input the pipeline accepts. Anything else is
// unsupported_media_type. Forcing the demuxer is a safety rule as much as a
// speed one: FFmpeg's own probing would also accept playlists (HLS, concat)
// that point at other files or URLs.
var formats = []format{
	{"image/jpeg", "image", "jpeg_pipe", "JPEG"},
	{"image/png", "image", "png_pipe", "PNG"},
	{"image/webp", "image", "webp_pipe", "WebP"},
	{"image/gif", "image", "gif", "GIF"},

	{"video/mp4", "video", "mov", "MP4"},
	{"video/quicktime", "video", "mov", "QuickTime"},
	{"video/x-m4v", "video", "mov", "M4V"},
	{"video/3gpp", "video", "mov", "3GP"},
	{"video/3gpp2", "video", "mov", "3G2"},
	{"video/webm", "video", "matroska", "WebM"},
	{"video/x-matroska", "video", "matroska", "Matroska"},
	{"video/x-msvideo", "video", "avi", "AVI"},

	{"audio/mpeg", "audio", "mp3", "MP3"},
	{"audio/ogg", "audio", "ogg", "Ogg"},
	{"audio/wav", "audio", "wav", "WAV"},
	{"audio/aac", "audio", "aac", "AAC"},
	{"audio/flac", "audio", "flac", "FLAC"},
	{"audio/x-m4a", "audio", "mov", "M4A"},
	{"audio/mp4", "audio", "mov", "MP4 audio"},
	{"audio/amr", "audio", "amr", "AMR"},
	{"audio/aiff", "audio", "aiff", "AIFF"},
}

// accepted lists the MIME types a status type takes, for messages.
func accepted(kind string) string {
	var names []string
	for _, f := range formats {
		if f.kind == kind {
			names = append(names, f.mime)
		}
	}
	list := strings.Join(names, ", ")
	if kind == "audio" {
		list += " (and video/mp4, video/webm or video/x-matroska holding only audio)"
	}
	return list
}

// sniff names the type of a file from its first bytes and finds the
// matching accepted format (nil when the file is of no accepted format).
func sniff(header []byte) (detected string, f *format) {
	if len(header) > sniffLen {
		header = header[:sniffLen]
	}
	m := mimetype.Detect(header)
	for i := range formats {
		if m.Is(formats[i].mime) {
			return formats[i].mime, &formats[i]
		}
	}
	detected, _, _ = mime.ParseMediaType(m.String())
	if detected == "" {
		detected = m.String()
	}
	return detected, nil
}

// declaredMatches reports whether a caller's mimeType agrees with the bytes:
// the same type or an alias of it, or a type of the same kind (a declared
// image/png for a JPEG is harmless, we convert anyway; a declared image/jpeg
// for a text file or a video is a lie).
func declaredMatches(declared, detected string, f *format) bool {
	base, _, err := mime.ParseMediaType(declared)
	if err != nil {
		return false
	}
	if base == detected || mimetype.Lookup(detected) != nil && mimetype.Lookup(detected).Is(base) {
		return true
	}
	major, _, _ := strings.Cut(base, "/")
	return f != nil && major == f.kind
}

// opusChannels reads the channel count from an Ogg file's first page when it
// carries an Opus identification header ("OpusHead"), and 0 otherwise. It
// reads only the bytes given and never panics on garbage.
func opusChannels(b []byte) int {
	// Ogg page: "OggS", version, header type, granule (8), serial (4),
	// sequence (4), CRC (4), segment count, segment table, then the packet.
	if len(b) < 27 || string(b[:4]) != "OggS" {
		return 0
	}
	nseg := int(b[26])
	start := 27 + nseg
	if len(b) < start+19 {
		return 0
	}
	pkt := b[start:]
	if string(pkt[:8]) != "OpusHead" {
		return 0
	}
	return int(pkt[9])
}

// jpegOrientation returns the EXIF orientation (1–8) of a JPEG from its
// leading bytes, 1 when there is none or it cannot be read. It parses
// untrusted bytes defensively: every offset is bounds-checked.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image: no more metadata
			return 1
		}
		size := int(binary.BigEndian.Uint16(b[i+2:]))
		if size < 2 {
			return 1
		}
		seg := b[i+4 : min(i+2+size, len(b))]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
		i += 2 + size
	}
	return 1
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF structure.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 { // SHORT
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// orientationFilter is the FFmpeg filter that displays an image the way its
// EXIF orientation says ("" for none). transpose=0 is cclock_flip (the
// main-diagonal mirror), 1 clock, 2 cclock, 3 clock_flip.
func orientationFilter(o int) string {
	switch o {
	case 2:
		return "hflip"
	case 3:
		return "hflip,vflip"
	case 4:
		return "vflip"
	case 5:
		return "transpose=0"
	case 6:
		return "transpose=1"
	case 7:
		return "transpose=3"
	case 8:
		return "transpose=2"
	}
	return ""
}

// webpSize reads the canvas size of a WebP file from its first chunk
// (VP8X, VP8L or VP8), bounds-checked like every parser of untrusted bytes.
func webpSize(b []byte) (width, height int, ok bool) {
	if len(b) < 30 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0, false
	}
	le24 := func(p []byte) int { return int(p[0]) | int(p[1])<<8 | int(p[2])<<16 }
	switch string(b[12:16]) {
	case "VP8X":
		return le24(b[24:]) + 1, le24(b[27:]) + 1, true
	case "VP8L":
		if b[20] != 0x2f {
			return 0, 0, false
		}
		bits := binary.LittleEndian.Uint32(b[21:])
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, true
	case "VP8 ":
		if b[23] != 0x9d || b[24] != 0x01 || b[25] != 0x2a {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(b[26:]) & 0x3fff), int(binary.LittleEndian.Uint16(b[28:]) & 0x3fff), true
	}
	return 0, 0, false
}
