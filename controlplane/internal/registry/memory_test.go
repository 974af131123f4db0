package registry

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestCandidatesMemoryFit(t *testing.T) {
	t.Parallel()
	const gb = int64(1e9)
	model := func(name string, size int64, loaded bool) store.ModelSpec {
		return store.ModelSpec{Name: name, ContextLength: 1024, Capabilities: []string{"completion"}, SizeBytes: size, Loaded: loaded}
	}
	ids := map[string]int64{}
	f := newFixture(t, Options{}, func(st *fakeStore) {
		// 16 GB: the 20 GB model never fits.
		ids["small"] = seedOn(t, st, store.BackendSpec{Name: "small", GPUMemoryGB: 16},
			model("big", 20*gb, false), model("mid", 12*gb, false), model("only-small", 20*gb, false))
		// 24 GB with a 10 GB model loaded: "mid" fits only by unloading it.
		ids["crowded"] = seedOn(t, st, store.BackendSpec{Name: "crowded", GPUMemoryGB: 24},
			model("resident", 10*gb, true), model("big", 20*gb, false), model("mid", 16*gb, false), model("only-crowded", 16*gb, false))
		// 24 GB, nothing loaded.
		ids["roomy"] = seedOn(t, st, store.BackendSpec{Name: "roomy", GPUMemoryGB: 24},
			model("big", 20*gb, false), model("mid", 16*gb, false))
		// No GPU memory set: never filtered.
		ids["unsized"] = seedOn(t, st, store.BackendSpec{Name: "unsized"}, model("only-small", 20*gb, false))
		// A loaded model of unknown size: the room left is unknown.
		ids["unknown"] = seedOn(t, st, store.BackendSpec{Name: "unknown", GPUMemoryGB: 24},
			model("mystery", 0, true), model("big2", 20*gb, false))
		// A loaded model that is too large by its size still serves.
		ids["resident"] = seedOn(t, st, store.BackendSpec{Name: "resident", GPUMemoryGB: 8}, model("big3", 20*gb, true))
	})
	tests := []struct {
		model    string
		want     []string
		excluded map[string]string
		err      error
	}{
		{model: "big", want: []string{"roomy"}, excluded: map[string]string{
			"small":   "memory insufficient: the model needs 20.0 GB, the backend has 16.0 GB",
			"crowded": "memory insufficient beside the loaded models (14.0 GB free, 20.0 GB needed)",
		}},
		{model: "mid", want: []string{"small", "roomy"}, excluded: map[string]string{
			"crowded": "memory insufficient beside the loaded models (14.0 GB free, 16.0 GB needed)",
		}},
		{model: "only-crowded", want: []string{"crowded"}, excluded: map[string]string{}},
		{model: "only-small", want: []string{"unsized"}, excluded: map[string]string{
			"small": "memory insufficient: the model needs 20.0 GB, the backend has 16.0 GB",
		}},
		{model: "big2", want: []string{"unknown"}, excluded: map[string]string{}},
		{model: "big3", want: []string{"resident"}, excluded: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			t.Parallel()
			got, ex, err := f.r.Screen(tc.model, opChat, nil)
			require.NoError(t, err)
			var names []string
			for _, c := range got {
				names = append(names, c.Backend.Name)
			}
			require.Equal(t, tc.want, names)
			reasons := map[string]string{}
			for _, e := range ex {
				require.Equal(t, ids[e.BackendName], e.BackendID)
				reasons[e.BackendName] = e.Reason
			}
			require.Equal(t, tc.excluded, reasons)
		})
	}
}

func TestCandidatesNoBackendHasTheMemory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, func(st *fakeStore) {
		seedOn(t, st, store.BackendSpec{Name: "a", GPUMemoryGB: 8},
			store.ModelSpec{Name: "huge", ContextLength: 1024, SizeBytes: 70e9})
	})
	_, err := f.r.Candidates("huge", opChat, nil)
	require.ErrorIs(t, err, ErrInsufficientMemory)
	require.ErrorIs(t, err, ErrNoHealthyBackend, "maps like no healthy backend")
	require.EqualError(t, err, `model "huge" does not fit in the GPU memory of any backend serving it`)
}

func TestScreenExplainsEveryExclusion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, seedFleet(t))
	_, ex, err := f.r.Screen("llama3.2", opChat, nil)
	require.NoError(t, err)
	require.Len(t, ex, 1)
	require.Equal(t, "o2", ex[0].BackendName)
	require.Equal(t, "backend disabled", ex[0].Reason)

	_, ex, err = f.r.Screen("llama3.2", opChat, []controlplanev1.Capability{needVision})
	require.ErrorIs(t, err, ErrCapabilityUnsupported)
	require.Len(t, ex, 2, "exclusions come with the error")
	require.Equal(t, `model "llama3.2" does not support image input (vision)`, ex[0].Reason)
}
