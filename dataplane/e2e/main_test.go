package e2e

import (
	"os"
	"testing"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ollamatest.StopShared()
	cluster.Cleanup()
	os.Exit(code)
}
