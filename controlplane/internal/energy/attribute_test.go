package energy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// TestAttributeHandComputed checks one trace against figures worked by hand
// (docs/energy.md shows the working).
func TestAttributeHandComputed(t *testing.T) {
	t.Parallel()
	trace := []energy.PowerSample{{at(0), 100}, {at(10), 300}, {at(20), 300}, {at(30), 100}}
	reqs := []energy.Request{
		// A: 50 prompt tokens at 0, 100 generated over [0, 10].
		{ID: 1, Start: at(0), FirstToken: at(0), End: at(10), PromptTokens: 50, Completion: 100},
		// B: 100 prompt tokens at 5, 150 generated over [5, 20].
		{ID: 2, Start: at(5), FirstToken: at(5), End: at(20), PromptTokens: 100, Completion: 150},
		// C processed nothing.
		{ID: 3, Start: at(0), FirstToken: at(0), End: at(30)},
	}
	res := energy.Attribute(trace, reqs, energy.DefaultWeights())
	// [0,10]: 2000 J; weights A 0.2·50 + 100 = 110, B 0.2·100 + 150·5/15 = 70.
	// [10,20]: 3000 J, all B's. [20,30]: 2000 J, idle.
	assert.InDelta(t, 2000*110.0/180, res.Joules[1], 1e-9)
	assert.InDelta(t, 2000*70.0/180+3000, res.Joules[2], 1e-9)
	assert.NotContains(t, res.Joules, int64(3))
	assert.InDelta(t, 2000, res.Idle, 1e-9)
	assert.InDelta(t, 7000, res.Total, 1e-9)
	assert.InDelta(t, energy.Integrate(trace), res.Total, 1e-9)
}

func TestAttributeEdgeCases(t *testing.T) {
	t.Parallel()
	w := energy.Weights{Prompt: 1, Completion: 1}
	trace := []energy.PowerSample{{at(0), 60}, {at(1), 60}}
	tests := []struct {
		name  string
		trace []energy.PowerSample
		reqs  []energy.Request
		want  map[int64]float64
		idle  float64
	}{
		{"no samples", nil, []energy.Request{{ID: 1, Start: at(0), End: at(1), Completion: 5}}, map[int64]float64{}, 0},
		{"one sample", trace[:1], []energy.Request{{ID: 1, Start: at(0), End: at(1), Completion: 5}}, map[int64]float64{}, 0},
		{"instant request at the trace's end", trace, []energy.Request{{ID: 1, Start: at(1), FirstToken: at(1), End: at(1), Completion: 5}}, map[int64]float64{1: 60}, 0},
		{"request outside the trace", trace, []energy.Request{{ID: 1, Start: at(5), FirstToken: at(5), End: at(9), Completion: 5}}, map[int64]float64{}, 60},
		{"unsorted trace", []energy.PowerSample{{at(1), 60}, {at(0), 60}}, []energy.Request{{ID: 1, Start: at(0), FirstToken: at(0), End: at(1), Completion: 1}}, map[int64]float64{1: 60}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := energy.Attribute(tc.trace, tc.reqs, w)
			require.Len(t, res.Joules, len(tc.want))
			for id, j := range tc.want {
				assert.InDelta(t, j, res.Joules[id], 1e-9)
			}
			assert.InDelta(t, tc.idle, res.Idle, 1e-9)
		})
	}
}

func FuzzAttributeConservesEnergy(f *testing.F) {
	f.Add(int64(3), int64(100), uint8(5), uint8(10), uint8(40))
	f.Add(int64(0), int64(0), uint8(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, prompt, completion int64, s, ft, e uint8) {
		prompt, completion = max(prompt%10000, 0), max(completion%10000, 0)
		start, first, end := float64(s%60), float64(s%60)+float64(ft%30), float64(s%60)+float64(ft%30)+float64(e%30)
		trace := []energy.PowerSample{{at(0), 100}, {at(20), 400}, {at(45), 50}, {at(60), 250}}
		res := energy.Attribute(trace, []energy.Request{
			{ID: 1, Start: at(start), FirstToken: at(first), End: at(end), PromptTokens: prompt, Completion: completion},
			{ID: 2, Start: at(10), FirstToken: at(12), End: at(50), PromptTokens: 7, Completion: 70},
		}, energy.DefaultWeights())
		var sum float64
		for _, j := range res.Joules {
			require.GreaterOrEqual(t, j, 0.0)
			sum += j
		}
		require.InDelta(t, res.Total, sum+res.Idle, 1e-6*res.Total)
		require.InDelta(t, energy.Integrate(trace), res.Total, 1e-9)
	})
}
