// Package ticker calls a function now and then while long work runs: the
// "still writing", "still booting" lines people see in Packer's UI.
package ticker

import "time"

// Every calls fn with the time elapsed since the start every d, until stop
// is called; stop returns once fn is no longer running.
func Every(d time.Duration, fn func(elapsed time.Duration)) (stop func()) {
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fn(time.Since(start))
			}
		}
	}()
	return func() { close(quit); <-done }
}
