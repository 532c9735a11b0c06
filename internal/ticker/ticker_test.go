package ticker

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryUntilStopped(t *testing.T) {
	var n atomic.Int32
	var last atomic.Int64
	stop := Every(5*time.Millisecond, func(e time.Duration) {
		n.Add(1)
		if int64(e) < last.Load() {
			t.Error("elapsed went back")
		}
		last.Store(int64(e))
	})
	time.Sleep(60 * time.Millisecond)
	stop()
	got := n.Load()
	if got < 2 {
		t.Fatalf("called %d times in 60ms at 5ms", got)
	}
	time.Sleep(20 * time.Millisecond)
	if n.Load() != got {
		t.Fatal("called after stop returned")
	}
}
