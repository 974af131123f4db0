package enginesim

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendPyKeepsOrderAndMatchesEncodingJSON(t *testing.T) {
	v := obj{{"z", 1}, {"a", "<b> & \"q\"\n\u2028"}, {"n", nil}, {"f", 0.5}, {"t", true},
		{"list", []obj{{{"x", int64(-3)}}, {}}}, {"any", []any{1, "s", nil, obj{{"k", false}}}},
		{"floats", []float32{0.25, 1e-7}}, {"ints", []int{1, 2}}}
	got, err := marshalPy(v)
	require.NoError(t, err)
	assert.Equal(t, `{"z":1,"a":"<b> & \"q\"\n\u2028","n":null,"f":0.5,"t":true,`+
		`"list":[{"x":-3},{}],"any":[1,"s",null,{"k":false}],"floats":[0.25,1e-7],"ints":[1,2]}`, string(got))

	// Values without ordered objects come out as encoding/json writes them.
	for _, x := range []any{"é\xff", 1e21, math.Copysign(0, -1), []any{1.5, "x"}, map[string]int{"b": 2, "a": 1}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(x))
		got, err := marshalPy(x)
		require.NoError(t, err)
		assert.Equal(t, string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))), string(got))
	}
}
