package proxy

import (
	"os"
	"testing"

	"github.com/novashop/edge/internal/testenv"
)

// TestMain stops the throwaway Redis the cache tests start.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
