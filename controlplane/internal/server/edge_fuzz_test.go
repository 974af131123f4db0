package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

// FuzzBearer checks the credential extraction from call metadata: it never panics,
// returns a trimmed key, and takes the key only from "Bearer <key>" or, without an
// authorization header, from x-api-key.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer mr2_abc", "")
	f.Add("bearer   mr2_abc  ", "")
	f.Add("Basic YWRtaW46eA==", "mr2_abc")
	f.Add("", " mr2_abc ")
	f.Add("Bearer", "")
	f.Add("BEARER \t", "x")
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		md := metadata.MD{}
		if authorization != "" {
			md.Set("authorization", authorization)
		}
		if apiKey != "" {
			md.Set("x-api-key", apiKey)
		}
		got := bearer(metadata.NewIncomingContext(context.Background(), md))
		if got != strings.TrimSpace(got) {
			t.Fatalf("key %q is not trimmed", got)
		}
		switch {
		case authorization != "":
			want := ""
			if len(authorization) > 7 && strings.EqualFold(authorization[:7], "bearer ") {
				want = strings.TrimSpace(authorization[7:])
			}
			if got != want {
				t.Fatalf("authorization %q gave %q, want %q", authorization, got, want)
			}
		case got != strings.TrimSpace(apiKey):
			t.Fatalf("x-api-key %q gave %q", apiKey, got)
		}
	})
}

// FuzzAccessFor checks that method classification never panics, refuses whatever is
// outside the known packages, and never makes a non-admin method an admin one.
func FuzzAccessFor(f *testing.F) {
	f.Add("/mindrouter.admin.v1.RegistryService/ListBackends")
	f.Add("/mindrouter.admin.v1.RegistryService/RemoveBackend")
	f.Add("/mindrouter.controlplane.v1.AdmissionService/Admit")
	f.Add("/grpc.health.v1.Health/Check")
	f.Add("/mindrouter.admin.v1.")
	f.Add("/")
	f.Fuzz(func(t *testing.T, method string) {
		level, ok := accessFor(method)
		known := false
		for _, p := range []string{"/grpc.health.v1.", "/grpc.reflection.", "/mindrouter.controlplane.v1.", "/mindrouter.nodeagent.v1.", "/mindrouter.admin.v1."} {
			known = known || strings.HasPrefix(method, p)
		}
		if ok != known {
			t.Fatalf("accessFor(%q) known=%v, want %v", method, ok, known)
		}
		if !ok {
			if level != 0 {
				t.Fatalf("unknown method %q has level %d", method, level)
			}
			return
		}
		if level < accessPublic || level > accessWrite {
			t.Fatalf("accessFor(%q) = %d, out of range", method, level)
		}
		admin := strings.HasPrefix(method, "/mindrouter.admin.v1.")
		if admin != (level == accessRead || level == accessWrite) {
			t.Fatalf("accessFor(%q) = %d: admin methods and only they need an API key", method, level)
		}
	})
}
