package whatsapp

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

func requireProtoEqual(t *testing.T, want, got proto.Message) {
	t.Helper()
	if !proto.Equal(want, got) {
		t.Fatalf("message mismatch\nwant: %v\n got: %v", want, got)
	}
}

func textMessage(text string, bg uint32, font waE2E.ExtendedTextMessage_FontType) *waE2E.Message {
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text:           proto.String(text),
		BackgroundArgb: proto.Uint32(bg),
		TextArgb:       proto.Uint32(0xFFFFFFFF),
		Font:           font.Enum(),
		PreviewType:    waE2E.ExtendedTextMessage_NONE.Enum(),
	}}
}

func TestBuildText(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		given TextStatus
		want  *waE2E.Message
	}{
		{"Defaults", TextStatus{Text: "hello"}, textMessage("hello", 0xFF128C7E, waE2E.ExtendedTextMessage_SYSTEM)},
		{"RGB", TextStatus{Text: "hi", BackgroundColor: "#FF0000"}, textMessage("hi", 0xFFFF0000, waE2E.ExtendedTextMessage_SYSTEM)},
		{"RGBLowercase", TextStatus{Text: "hi", BackgroundColor: "#0a0b0c"}, textMessage("hi", 0xFF0A0B0C, waE2E.ExtendedTextMessage_SYSTEM)},
		{"ARGB", TextStatus{Text: "hi", BackgroundColor: "#80112233"}, textMessage("hi", 0x80112233, waE2E.ExtendedTextMessage_SYSTEM)},
		{"ARGBTransparent", TextStatus{Text: "hi", BackgroundColor: "#00000000"}, textMessage("hi", 0x00000000, waE2E.ExtendedTextMessage_SYSTEM)},
		{"FontAndColor", TextStatus{Text: "x", BackgroundColor: "#123456", Font: "serif"}, textMessage("x", 0xFF123456, waE2E.ExtendedTextMessage_SYSTEM_TEXT)},
		{"FontCaseInsensitive", TextStatus{Text: "x", Font: "MonoSpace"}, textMessage("x", 0xFF128C7E, waE2E.ExtendedTextMessage_COURIERPRIME_BOLD)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := BuildText(tt.given)
			if err != nil {
				t.Fatalf("BuildText: %v", err)
			}
			requireProtoEqual(t, tt.want, got)
		})
	}

	t.Run("EveryFont", func(t *testing.T) {
		t.Parallel()
		// Faces by enum number: 0 and 1 are the system sans-serif and serif
		// faces (historic names SANS_SERIF and SERIF, see fonts).
		expected := map[string]waE2E.ExtendedTextMessage_FontType{
			"system":        0,
			"sans-serif":    0,
			"serif":         1,
			"script":        2,
			"bold":          6,
			"morningbreeze": 7,
			"calistoga":     8,
			"exo2":          9,
			"courierprime":  10,
			"monospace":     10,
			"handwriting":   7,
			"extrabold":     9,
		}
		if len(FontNames()) != len(expected) {
			t.Fatalf("FontNames() = %v, expected the %d names of this table", FontNames(), len(expected))
		}
		for _, name := range FontNames() {
			want, ok := expected[name]
			if !ok {
				t.Fatalf("font %q is not in this table", name)
			}
			got, err := BuildText(TextStatus{Text: "font " + name, Font: name})
			if err != nil {
				t.Fatalf("font %q: %v", name, err)
			}
			requireProtoEqual(t, textMessage("font "+name, DefaultBackgroundARGB, want), got)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, s := range []TextStatus{
			{Text: "x", BackgroundColor: "FF0000"},
			{Text: "x", BackgroundColor: "#FF00"},
			{Text: "x", BackgroundColor: "#GG0000"},
			{Text: "x", BackgroundColor: "#FF0000FF00"},
			{Text: "x", Font: "comic-sans"},
		} {
			if m, err := BuildText(s); err == nil {
				t.Errorf("BuildText(%+v) = %v, want an error", s, m)
			}
		}
	})
}

func TestBuildMedia(t *testing.T) {
	t.Parallel()

	up := &Upload{
		URL:           "https://mmg.whatsapp.net/v/t62.7118-24/abc.enc",
		DirectPath:    "/v/t62.7118-24/abc.enc",
		MediaKey:      []byte("0123456789abcdef0123456789abcdef"),
		FileEncSHA256: []byte("enc-sha256-enc-sha256-enc-sha256"),
		FileSHA256:    []byte("sha256-sha256-sha256-sha256-sha2"),
		FileLength:    12345,
		// Every media message carries it, as WhatsApp Web and Baileys send it.
		MediaKeyTimestamp: 1764417600,
	}
	waveform := make([]byte, 64)
	for i := range waveform {
		waveform[i] = byte(i)
	}
	thumb := []byte{0xFF, 0xD8, 0xFF, 0xD9}

	tests := []struct {
		name  string
		given MediaStatus
		want  *waE2E.Message
	}{
		{
			name:  "Image",
			given: MediaStatus{Kind: MediaImage, Caption: "look", Mimetype: "image/jpeg", Upload: up, Width: 640, Height: 480, Thumbnail: thumb},
			want: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("image/jpeg"),
				Caption: proto.String("look"), Width: proto.Uint32(640), Height: proto.Uint32(480),
				JPEGThumbnail: thumb,
			}},
		},
		{
			name:  "ImageNoCaptionNoSize",
			given: MediaStatus{Kind: MediaImage, Mimetype: "image/jpeg", Upload: up},
			want: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("image/jpeg"),
			}},
		},
		{
			name:  "Video",
			given: MediaStatus{Kind: MediaVideo, Caption: "clip", Mimetype: "video/mp4", Upload: up, Width: 1280, Height: 720, Seconds: 30, Thumbnail: thumb},
			want: &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("video/mp4"),
				Caption: proto.String("clip"), Width: proto.Uint32(1280), Height: proto.Uint32(720),
				Seconds: proto.Uint32(30), JPEGThumbnail: thumb,
			}},
		},
		{
			name: "AudioPTT",
			given: MediaStatus{Kind: MediaAudio, Mimetype: "audio/ogg; codecs=opus", Upload: up, Seconds: 7,
				PTT: true, Waveform: waveform, BackgroundColor: "#336699"},
			want: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("audio/ogg; codecs=opus"),
				Seconds: proto.Uint32(7), PTT: proto.Bool(true),
				Waveform: waveform, BackgroundArgb: proto.Uint32(0xFF336699),
			}},
		},
		{
			name:  "AudioPTTDefaultBackground",
			given: MediaStatus{Kind: MediaAudio, Mimetype: "audio/ogg; codecs=opus", Upload: up, Seconds: 7, PTT: true, Waveform: waveform},
			want: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("audio/ogg; codecs=opus"),
				Seconds: proto.Uint32(7), PTT: proto.Bool(true),
				Waveform: waveform, BackgroundArgb: proto.Uint32(0xFF128C7E),
			}},
		},
		{
			// Waveform and background belong to voice notes only.
			name: "AudioNotPTT",
			given: MediaStatus{Kind: MediaAudio, Caption: "ignored", Mimetype: "audio/ogg; codecs=opus", Upload: up, Seconds: 90,
				Waveform: waveform, BackgroundColor: "#336699"},
			want: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath),
				MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
				FileLength: proto.Uint64(12345), MediaKeyTimestamp: proto.Int64(1764417600), Mimetype: proto.String("audio/ogg; codecs=opus"),
				Seconds: proto.Uint32(90), PTT: proto.Bool(false),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := BuildMedia(tt.given)
			if err != nil {
				t.Fatalf("BuildMedia: %v", err)
			}
			requireProtoEqual(t, tt.want, got)
		})
	}

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for name, s := range map[string]MediaStatus{
			"NoUpload":       {Kind: MediaImage, Mimetype: "image/jpeg"},
			"UnknownKind":    {Kind: "sticker", Upload: up},
			"BadVoiceColour": {Kind: MediaAudio, Upload: up, PTT: true, BackgroundColor: "blue"},
		} {
			if m, err := BuildMedia(s); err == nil {
				t.Errorf("%s: BuildMedia = %v, want an error", name, m)
			}
		}
	})
}
