package h2srv

import "time"

// workerMaxIdle is how long a handler worker may wait unused before it is
// let go (proxy/internal/workpool).
const workerMaxIdle = 10 * time.Second

// runStream is the worker pool's Do: a stream's handler, then its answer.
func runStream(st *stream) any {
	st.run()
	return nil
}
