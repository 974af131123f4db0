// Package wav reads and writes the RIFF/WAVE container of PCM audio: enough
// to know how long an uploaded recording is and to wrap synthesised PCM.
// It decodes no other codec and must not grow into one.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Encode wraps 16-bit little-endian mono PCM at rate in a canonical
// 44-byte RIFF/WAVE header.
func Encode(pcm []byte, rate int) []byte {
	out := make([]byte, 44, 44+len(pcm))
	copy(out[0:], "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(36+len(pcm)))
	copy(out[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(out[16:], 16)
	binary.LittleEndian.PutUint16(out[20:], 1) // PCM
	binary.LittleEndian.PutUint16(out[22:], 1) // mono
	binary.LittleEndian.PutUint32(out[24:], uint32(rate))
	binary.LittleEndian.PutUint32(out[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(out[32:], 2)
	binary.LittleEndian.PutUint16(out[34:], 16)
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], uint32(len(pcm)))
	return append(out, pcm...)
}

// Info is what a WAV header says about its audio.
type Info struct {
	SampleRate    int
	Channels      int
	BitsPerSample int
	// Seconds is the duration of the data chunk.
	Seconds float64
}

// ErrNotWAV is returned by Parse for data that is not RIFF/WAVE audio.
var ErrNotWAV = errors.New("not a RIFF/WAVE file")

// Parse reads a RIFF/WAVE header, walking the chunks up to "data". A data
// chunk whose size is the streaming placeholder (0 or 0xFFFFFFFF, as
// espeak-ng writes to a pipe) or runs past the end counts the bytes present.
func Parse(b []byte) (Info, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Info{}, ErrNotWAV
	}
	var info Info
	blockAlign := 0
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int64(binary.LittleEndian.Uint32(b[off+4:]))
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || int64(body)+16 > int64(len(b)) {
				return Info{}, fmt.Errorf("%w: short fmt chunk", ErrNotWAV)
			}
			info.Channels = int(binary.LittleEndian.Uint16(b[body+2:]))
			info.SampleRate = int(binary.LittleEndian.Uint32(b[body+4:]))
			blockAlign = int(binary.LittleEndian.Uint16(b[body+12:]))
			info.BitsPerSample = int(binary.LittleEndian.Uint16(b[body+14:]))
		case "data":
			if info.SampleRate <= 0 || blockAlign <= 0 {
				return Info{}, fmt.Errorf("%w: data before a valid fmt chunk", ErrNotWAV)
			}
			avail := int64(len(b) - body)
			if size == 0 || size == 0xFFFFFFFF || size > avail {
				size = avail
			}
			info.Seconds = float64(size/int64(blockAlign)) / float64(info.SampleRate)
			return info, nil
		}
		next := int64(body) + size + size%2
		if next > int64(len(b)) {
			break
		}
		off = int(next)
	}
	return Info{}, fmt.Errorf("%w: no data chunk", ErrNotWAV)
}
