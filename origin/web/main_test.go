package web_test

import (
	"os"
	"testing"

	"github.com/novashop/edge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
