// Package media prepares the media of image, video and audio statuses so that
// WhatsApp clients play them on the first try.
//
// [Pipeline.Prepare] does, for one request, in a private temporary directory
// that is always removed on failure (and by PreparedMedia.Cleanup on
// success):
//
//  1. Fetch. The URL must be http or https ([CheckURL]). The download goes
//     through [NewGuardedClient], which refuses loopback, private, link-local
//     (cloud metadata), CGNAT, multicast and reserved addresses at dial time,
//     after DNS and on every redirect, unless AllowPrivate is set. The body is
//     streamed to disk with the byte cap enforced while reading, under
//     connect, header and total timeouts.
//  2. Sniff and validate. The type comes from the bytes, never from the URL,
//     the Content-Type header or the file name. A declared mimeType of
//     another kind, a file of the wrong kind for the status type, an empty,
//     oversize or undecodable file are refused with the documented codes.
//  3. Convert with FFmpeg. Audio becomes Ogg Opus (mono, 48 kHz) with the
//     voice-note waveform computed from PCM piped out of the same FFmpeg run;
//     video becomes MP4 H.264/AAC with faststart, at most 30 s, re-encoded
//     only when needed; images become JPEG with EXIF orientation applied.
//     Thumbnails come from the same run as the conversion, except for a
//     video whose stream is copied: its own run seeks to the one frame.
//
// FFmpeg hardening: at most MaxProcesses processes run at once, each with a
// timeout and an empty environment; arguments are built from constants and
// the pipeline's own temp paths (named in, out.*, thumb.jpg), never from
// request text; inputs are opened as file: with only the file protocol
// allowed and the demuxer forced from the sniffed type, so a downloaded
// playlist cannot make FFmpeg read anything else.
//
// Downloads go through internal/ssrf's guarded client, which webhook
// delivery uses too.
package media
