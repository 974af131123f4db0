package gateway

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Marshaler is the admin gateway's marshaler on both planes: JSON with the
// original API's snake_case field names and every field present;
// google.api.HttpBody answers (audit exports, artifacts) as their bytes with
// nothing added between a stream's chunks (an export's chunks are whole CSV or
// JSON Lines rows); and any other stream (a model job's watch) as one JSON
// object a line.
func Marshaler() runtime.Marshaler {
	return bodyMarshaler{&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}}
}

type bodyMarshaler struct{ *runtime.HTTPBodyMarshaler }

// Delimiter is empty: HttpBody chunks carry their own line ends, and Marshal
// ends each other stream chunk with a newline.
func (bodyMarshaler) Delimiter() []byte { return nil }

// Marshal ends a stream's message chunks ({"result": ...} or {"error": ...},
// the only maps the gateway marshals) with a newline; unary answers are
// proto messages and are left as they are.
func (m bodyMarshaler) Marshal(v any) ([]byte, error) {
	b, err := m.HTTPBodyMarshaler.Marshal(v)
	if err != nil {
		return nil, err
	}
	switch v.(type) {
	case map[string]any, map[string]proto.Message:
		b = append(b, '\n')
	}
	return b, nil
}
