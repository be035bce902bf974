package media

import "encoding/binary"

// WaveformLen is the number of values in a voice note's waveform.
const WaveformLen = 64

// waveformRate is the sample rate of the PCM FFmpeg pipes to us while it
// converts: the Opus rate itself, so FFmpeg resamples once for both outputs
// (96 KB per second of audio cross the pipe; none is held, only 10 ms peaks
// are kept).
const waveformRate = 48000

// waveformWriter receives mono signed 16-bit little-endian PCM and keeps one
// peak per 10 ms block, so a long file costs 200 bytes per second of audio.
// It also counts samples, which gives the exact decoded duration.
type waveformWriter struct {
	block   int // samples per block
	peaks   []uint16
	cur     uint16
	inBlock int
	samples int64
	half    []byte // a sample split across two writes
}

func newWaveformWriter(rate int) *waveformWriter {
	return &waveformWriter{block: max(rate/100, 1)}
}

func (w *waveformWriter) Write(b []byte) (int, error) {
	n := len(b)
	if len(w.half) == 1 && len(b) > 0 {
		w.sample(int16(binary.LittleEndian.Uint16([]byte{w.half[0], b[0]})))
		w.half = w.half[:0]
		b = b[1:]
	}
	for len(b) >= 2 {
		w.sample(int16(binary.LittleEndian.Uint16(b)))
		b = b[2:]
	}
	if len(b) == 1 {
		w.half = append(w.half[:0], b[0])
	}
	return n, nil
}

func (w *waveformWriter) sample(s int16) {
	a := uint16(s)
	if s < 0 {
		a = uint16(-int32(s))
	}
	if a > w.cur {
		w.cur = a
	}
	w.samples++
	w.inBlock++
	if w.inBlock == w.block {
		w.flush()
	}
}

func (w *waveformWriter) flush() {
	if w.inBlock > 0 {
		w.peaks = append(w.peaks, w.cur)
	}
	w.cur, w.inBlock = 0, 0
}

// seconds is the duration of the audio received so far.
func (w *waveformWriter) seconds(rate int) float64 {
	return float64(w.samples) / float64(rate)
}

// waveform reduces the peaks to [WaveformLen] values scaled so the loudest is
// 100 (all zero for silence), the form WhatsApp draws under a voice note.
func (w *waveformWriter) waveform() []byte {
	w.flush()
	return reducePeaks(w.peaks)
}

func reducePeaks(peaks []uint16) []byte {
	out := make([]byte, WaveformLen)
	if len(peaks) == 0 {
		return out
	}
	vals := make([]uint16, WaveformLen)
	var top uint16
	for i := range vals {
		lo := i * len(peaks) / WaveformLen
		hi := max((i+1)*len(peaks)/WaveformLen, lo+1)
		for _, p := range peaks[lo:min(hi, len(peaks))] {
			vals[i] = max(vals[i], p)
		}
		top = max(top, vals[i])
	}
	if top == 0 {
		return out
	}
	for i, v := range vals {
		out[i] = byte((uint32(v)*100 + uint32(top)/2) / uint32(top))
	}
	return out
}
