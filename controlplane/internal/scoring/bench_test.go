package scoring

import (
	"testing"
	"time"
)

// BenchmarkScore scores 20 candidates and picks the best, as every Admit does.
func BenchmarkScore(b *testing.B) {
	in := make([]Input, 20)
	for i := range in {
		in[i] = Input{
			BackendID: int64(i + 1), Name: "backend", Loaded: i%3 == 0, GPUUtilization: float64(i%10) / 10,
			LatencyEMA: time.Duration(i+1) * 100 * time.Millisecond, InFlight: i % 5, MaxConcurrent: 4,
			Throughput: float64(20 + i), Priority: i % 2,
		}
	}
	w := Defaults()
	b.ReportAllocs()
	for b.Loop() {
		s := Score(in, w)
		if _, ok := Best(s); !ok {
			b.Fatal("no best")
		}
	}
}
