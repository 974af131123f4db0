package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI v2 document generated from the admin protos (make generate).
//
//go:embed openapi/mindrouter.swagger.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
