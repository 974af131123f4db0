package enginesim

import (
	"encoding/binary"
	"math"
)

// SpeechSampleRate is the sample rate of the simulator's speech: 24 kHz
// mono 16-bit little-endian PCM, what OpenAI's API and Kokoro produce for
// "pcm" and inside "wav".
const SpeechSampleRate = 24000

// CharsPerSecond is the speaking rate of the simulated voice at speed 1:
// 15 characters a second (about 150 words a minute).
const CharsPerSecond = 15

// SpeechDuration is how long the simulator speaks input at speed: one
// second per CharsPerSecond characters divided by speed, at least 100 ms.
func SpeechDuration(input string, speed float64) float64 {
	if speed <= 0 {
		speed = 1
	}
	d := float64(len([]rune(input))) / CharsPerSecond / speed
	return max(d, 0.1)
}

// tonePCM renders seconds of a tone whose pitch follows input's characters
// (one character every 1/CharsPerSecond s, so the pattern is deterministic
// and audible) as 16-bit little-endian mono PCM at SpeechSampleRate.
func tonePCM(input string, seconds float64) []byte {
	n := int(seconds * SpeechSampleRate)
	runes := []rune(input)
	if len(runes) == 0 {
		runes = []rune{' '}
	}
	out := make([]byte, 2*n)
	phase := 0.0
	for i := range n {
		t := float64(i) / SpeechSampleRate
		r := runes[int(t*float64(len(runes))/seconds)%len(runes)]
		freq := 220 + float64(r%64)*10
		phase += 2 * math.Pi * freq / SpeechSampleRate
		v := int16(0.3 * math.MaxInt16 * math.Sin(phase))
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}
