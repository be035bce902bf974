package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	_ "image/gif"  // DecodeConfig of GIF headers
	_ "image/jpeg" // DecodeConfig of JPEG headers and our own output
	_ "image/png"  // DecodeConfig of PNG headers
	"math"
	"os"
	"strconv"

	"github.com/statusflow/statusflow/internal/errcode"
)

// Output settings. Opus at these rates is what WhatsApp's own clients send;
// video is capped at 1280 px on its long side (statuses are shown full
// screen on phones, WhatsApp recompresses anything larger) and images at
// 2560 px.
const (
	opusVoiceBitrate = "32k"
	opusAudioBitrate = "64k"
	maxVideoSide     = "1280"
	maxImageSide     = "2560"
	thumbSide        = "96"
	maxVideoPixels   = 7680 * 4320
	// maxImageInputSide and maxImagePixels bound the images accepted: a
	// status is shown on a phone screen and delivered at most 2560 px on
	// its long side, so no status needs more than a few thousand pixels a
	// side; 8192×6144 (50 MP) still takes any phone camera's photo.
	maxImageInputSide = 8192
	maxImagePixels    = 8192 * 6144
	maxThumbBytes     = 64 << 10
)

// Mimetypes of the prepared files.
const (
	MimeOpus = "audio/ogg; codecs=opus"
	MimeMP4  = "video/mp4"
	MimeJPEG = "image/jpeg"
)

// audio converts to Ogg Opus, mono, 48 kHz, unless the input is already mono
// Opus in Ogg (then the stream is copied). In the same FFmpeg run, the decoded
// audio is also piped to us as raw PCM: the waveform and the exact duration
// come from it, with no second decode and no ffprobe run. When converting,
// one filter graph resamples and downmixes once and splits the result
// between the Opus encoder and the pipe, so the waveform costs FFmpeg almost
// nothing (the bare conversion is the benchmark's baseline).
func (w *work) audio(ctx context.Context) (*Prepared, error) {
	out := w.path("out.ogg")
	args := w.input()
	pcm := []string{"-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"}
	if w.format.mime == "audio/ogg" && opusChannels(w.header) == 1 {
		// Opus decodes at 48 kHz natively: the PCM branch needs no resampling.
		args = append(args, "-map", "0:a:0", "-map_metadata", "-1", "-c:a", "copy", "-f", "ogg", "file:"+out,
			"-map", "0:a:0", "-ac", "1", "-ar", strconv.Itoa(waveformRate))
		args = append(args, pcm...)
	} else {
		bitrate, app := opusAudioBitrate, "audio"
		if w.req.Voice {
			bitrate, app = opusVoiceBitrate, "voip"
		}
		args = append(args,
			"-filter_complex", "[0:a:0]aresample="+strconv.Itoa(waveformRate)+",aformat=channel_layouts=mono,asplit=2[enc][pcm]",
			"-map", "[enc]", "-map_metadata", "-1", "-c:a", "libopus", "-b:a", bitrate, "-vbr", "on", "-application", app, "-f", "ogg", "file:"+out,
			"-map", "[pcm]")
		args = append(args, pcm...)
	}
	wf := newWaveformWriter(waveformRate)
	if err := w.p.run(ctx, w.p.ffmpeg, args, wf); err != nil {
		if bad := w.unreadableAudio(ctx); bad != nil {
			return nil, bad
		}
		return nil, errcode.Wrap(errcode.CodeAudioConversionFailed, "ffmpeg could not convert the audio: "+w.reason(err), err)
	}
	if wf.samples == 0 {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the audio could not be read: no sound was decoded (the file may be truncated or damaged)")
	}
	pm := &Prepared{Mimetype: MimeOpus, Path: out, Voice: w.req.Voice}
	secs := wf.seconds(waveformRate)
	if secs > MaxVoiceSeconds+0.5 { // what rounds to 60 is 60
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed,
			"the audio is %.0f s long; a voice status is at most %d s (WhatsApp's limit): shorten it", secs, MaxVoiceSeconds)
	}
	// A caller's duration may shorten what players show (e.g. trimmed
	// silence), never lengthen it past the audio that is there.
	if w.req.Duration != nil && *w.req.Duration > 0 && *w.req.Duration < secs {
		secs = *w.req.Duration
	}
	pm.Seconds = roundSeconds(secs)
	if w.req.Voice {
		if len(w.req.Waveform) > 0 {
			given, err := waveformFrom(w.req.Waveform)
			if err != nil {
				return nil, err
			}
			pm.Waveform = given
		} else {
			pm.Waveform = wf.waveform()
		}
	}
	return pm, nil
}

// unreadableAudio tells, after a failed conversion, whether the input is to
// blame: when ffprobe cannot read it or finds no audio stream in it (a
// truncated download, a damaged file), it is the caller's media
// (media_validation_failed, a 400), not our conversion (a 500).
func (w *work) unreadableAudio(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	pr, err := w.p.probeFile(ctx, w.format.demuxer, w.in)
	var re *runError
	if errors.As(err, &re) && re.stopped {
		return nil // the probe was cut short: no verdict on the file
	}
	if err != nil {
		return errcode.Wrap(errcode.CodeMediaValidationFailed, "the audio could not be read (the file may be truncated or damaged): "+w.reason(err), err)
	}
	if a := pr.stream("audio"); a == nil || pr.duration() <= 0 {
		return errcode.Errorf(errcode.CodeMediaValidationFailed, "the audio could not be read: no audio stream with a duration was found (the file may be truncated or damaged)")
	}
	return nil
}

func waveformFrom(v []int) ([]byte, error) {
	if len(v) != WaveformLen {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "waveform must have %d values, got %d", WaveformLen, len(v))
	}
	out := make([]byte, WaveformLen)
	for i, x := range v {
		if x < 0 || x > 100 {
			return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "waveform values must be 0–100, got %d", x)
		}
		out[i] = byte(x)
	}
	return out, nil
}

// audioOnly reports whether a video container holds sound only, which an
// audio status takes: browsers record voice notes as audio-only WebM, and
// some apps export audio as .mp4. Cover art does not count as video.
func (w *work) audioOnly(ctx context.Context) bool {
	if w.format.demuxer != "mov" && w.format.demuxer != "matroska" {
		return false
	}
	pr, err := w.p.probeFile(ctx, w.format.demuxer, w.in)
	if err != nil || pr.stream("audio") == nil {
		return false
	}
	for _, s := range pr.Streams {
		if s.CodecType == "video" && s.Disposition["attached_pic"] == 0 {
			return false
		}
	}
	return true
}

// roundSeconds rounds to whole seconds, at least 1 for any audible length.
func roundSeconds(s float64) uint32 {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	return uint32(max(math.Round(s), 1))
}

// video delivers MP4 (H.264/AAC, faststart), trimmed to [MaxVideoSeconds].
// Each stream is re-encoded only when needed: H.264 4:2:0 video and AAC audio
// are copied (a trim needs no re-encode either, since the cut is at the end),
// anything else becomes H.264 High (at most 1280 px) or AAC. The JPEG
// thumbnail comes from the same FFmpeg run when the video is re-encoded, from
// a run of its own seeking to the frame when it is copied; size and seconds
// from ffprobe on the result, so they describe what is actually sent
// (rotation included).
func (w *work) video(ctx context.Context) (*Prepared, error) {
	in, err := w.p.probeFile(ctx, w.format.demuxer, w.in)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed, "the video could not be read: "+w.reason(err), err)
	}
	v := in.stream("video")
	if v == nil {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the file has no video stream")
	}
	a := in.stream("audio")
	dur := in.duration()
	if dur <= 0 {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the video has no duration (it may be truncated)")
	}
	if v.Width*v.Height > maxVideoPixels {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the video is %dx%d pixels, larger than 8K", v.Width, v.Height)
	}
	// Each stream is copied when WhatsApp plays it as is, re-encoded otherwise.
	copyVideo := v.CodecName == "h264" && (v.PixFmt == "yuv420p" || v.PixFmt == "yuvj420p")
	copyAudio := a == nil || a.CodecName == "aac"

	out, thumb := w.path("out.mp4"), w.path("thumb.jpg")
	args := w.input()
	args = append(args, "-map", "0:v:0")
	if a != nil {
		args = append(args, "-map", "0:a:0")
	}
	args = append(args, "-map_metadata", "-1", "-sn", "-dn")
	if copyVideo {
		args = append(args, "-c:v", "copy")
	} else {
		args = append(args,
			"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-profile:v", "high",
			"-vf", "scale=w=min(iw\\,"+maxVideoSide+"):h=min(ih\\,"+maxVideoSide+"):force_original_aspect_ratio=decrease:force_divisible_by=2")
	}
	if a != nil {
		if copyAudio {
			args = append(args, "-c:a", "copy")
		} else {
			args = append(args, "-c:a", "aac", "-b:a", "128k", "-ac", "2")
		}
	}
	if dur > MaxVideoSeconds {
		args = append(args, "-t", strconv.Itoa(MaxVideoSeconds))
	}
	args = append(args, "-movflags", "+faststart", "-f", "mp4", "file:"+out)
	// Thumbnail: one frame at 1 s (0 for very short videos; first frames are
	// often black fades), fitted in a 96 px box.
	at := "1"
	if dur < 2 {
		at = "0"
	}
	thumbArgs := []string{"-map", "0:v:0", "-frames:v", "1",
		"-vf", "scale=w=" + thumbSide + ":h=" + thumbSide + ":force_original_aspect_ratio=decrease",
		"-c:v", "mjpeg", "-q:v", "6", "-f", "image2", "file:" + thumb}
	if !copyVideo {
		// Re-encoding decodes every frame anyway: the thumbnail is one
		// more output of the same run (an output -ss drops frames before it).
		args = append(append(args, "-ss", at), thumbArgs...)
	}
	if err := w.p.run(ctx, w.p.ffmpeg, args, nil); err != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed, "the video could not be converted: "+w.reason(err), err)
	}
	if copyVideo {
		// A copied stream is never decoded, but a thumbnail output in the
		// same run made FFmpeg decode the whole video for one frame: 2.8 s
		// of CPU for a 20 s 1080p clip whose copy takes 0.12 s
		// (benchcluster -parts media). Its own run seeks the input to the
		// frame instead (-ss before -i: from the keyframe before it), 0.28 s.
		// A status without a thumbnail still plays, so its failure is not
		// the video's (readThumb then finds none).
		_ = w.p.run(ctx, w.p.ffmpeg, append(w.input("-ss", at), thumbArgs...), nil)
	}
	res, err := w.p.probeFile(ctx, "mov", out)
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed, "the converted video could not be read: "+w.reason(err), err)
	}
	ov := res.stream("video")
	if ov == nil {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the converted video has no video stream")
	}
	width, height := ov.displaySize()
	pm := &Prepared{Mimetype: MimeMP4, Path: out, Width: uint32(width), Height: uint32(height),
		Seconds: min(roundSeconds(res.duration()), MaxVideoSeconds)}
	pm.Thumbnail = readThumb(thumb)
	return pm, nil
}

// image delivers a JPEG: EXIF orientation applied (FFmpeg's own handling is
// switched off with -noautorotate so it cannot apply it twice), transparency
// flattened onto white, at most 2560 px on the long side, metadata dropped
// (no GPS position leaks), plus the thumbnail, all in one FFmpeg run.
func (w *work) image(ctx context.Context) (*Prepared, error) {
	wd, ht, ok := w.imageSize()
	if !ok {
		// Without trustworthy dimensions nothing bounds what FFmpeg would
		// allocate: refused rather than decoded.
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the image's dimensions could not be read from its header")
	}
	if wd > maxImageInputSide || ht > maxImageInputSide || wd*ht > maxImagePixels {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the image is %dx%d pixels, more than the limit of %d pixels a side and %d megapixels",
			wd, ht, maxImageInputSide, maxImagePixels/1_000_000)
	}
	out, thumb := w.path("out.jpg"), w.path("thumb.jpg")
	chain := "[0:v]"
	if w.format.mime == "image/jpeg" {
		if f := orientationFilter(w.jpegOrientation()); f != "" {
			chain += f + ","
		}
	}
	chain += "scale=w=min(iw\\," + maxImageSide + "):h=min(ih\\," + maxImageSide + "):force_original_aspect_ratio=decrease"
	graph := chain + "[img]"
	if w.format.mime != "image/jpeg" {
		// Formats with alpha: draw over an opaque white canvas of the same size.
		graph += ";color=c=white[bg];[bg][img]scale2ref[bg2][img2];[bg2][img2]overlay=shortest=1:format=auto[flat]"
		graph += ";[flat]split=2[o][t]"
	} else {
		graph += ";[img]split=2[o][t]"
	}
	graph += ";[t]scale=w=" + thumbSide + ":h=" + thumbSide + ":force_original_aspect_ratio=decrease[th]"
	args := w.input("-noautorotate")
	args = append(args, "-xerror", "-filter_complex", graph,
		"-map", "[o]", "-frames:v", "1", "-map_metadata", "-1", "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "image2", "file:"+out,
		"-map", "[th]", "-frames:v", "1", "-map_metadata", "-1", "-c:v", "mjpeg", "-q:v", "6", "-pix_fmt", "yuvj420p", "-f", "image2", "file:"+thumb)
	if err := w.p.run(ctx, w.p.ffmpeg, args, nil); err != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed, "the image could not be decoded: "+w.reason(err), err)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, errcode.Errorf(errcode.CodeMediaValidationFailed, "the image could not be decoded: no picture was produced")
	}
	cfg, _, err := image.DecodeConfig(f)
	f.Close()
	if err != nil {
		return nil, errcode.Wrap(errcode.CodeMediaValidationFailed, "the image could not be decoded: the converted JPEG is unreadable", err)
	}
	return &Prepared{Mimetype: MimeJPEG, Path: out, Width: uint32(cfg.Width), Height: uint32(cfg.Height),
		Thumbnail: readThumb(thumb)}, nil
}

// imageSize reads the pixel size from the image header (never decoding the
// pixels), so a small file that would decode to gigabytes (a decompression
// bomb) is refused before FFmpeg allocates it.
func (w *work) imageSize() (width, height int, ok bool) {
	switch w.format.mime {
	case "image/webp":
		return webpSize(w.header)
	case "image/png":
		// FFmpeg decodes a PNG whatever its chunk checksums say, and Go's
		// DecodeConfig refuses one with a bad IHDR CRC: the size is read
		// from IHDR as FFmpeg reads it, checksum ignored.
		return pngSize(w.header)
	}
	f, err := os.Open(w.in)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, false // FFmpeg will say what is wrong with it
	}
	return cfg.Width, cfg.Height, true
}

// jpegOrientation reads the EXIF orientation from the first 64 KiB of the
// input (an APP1 segment is at most that long).
func (w *work) jpegOrientation() int {
	f, err := os.Open(w.in)
	if err != nil {
		return 1
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, _ := f.ReadAt(buf, 0)
	return jpegOrientation(buf[:n])
}

// readThumb returns the thumbnail's bytes, or nil when FFmpeg produced none
// or an implausibly large one (a status without a thumbnail still plays).
func readThumb(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 || len(b) > maxThumbBytes || !bytes.HasPrefix(b, []byte{0xFF, 0xD8}) {
		return nil
	}
	return b
}

// pngSize reads width and height from a PNG's IHDR chunk, which must come
// first (as FFmpeg's decoder requires), without checking its CRC.
func pngSize(b []byte) (width, height int, ok bool) {
	if len(b) < 24 || string(b[:8]) != "\x89PNG\r\n\x1a\n" || string(b[12:16]) != "IHDR" {
		return 0, 0, false
	}
	w, h := binary.BigEndian.Uint32(b[16:20]), binary.BigEndian.Uint32(b[20:24])
	if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
		return 0, 0, false
	}
	return int(w), int(h), true
}
