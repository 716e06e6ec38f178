//go:build !unix

package metrics

func cpuTime() (int64, bool) { return 0, false }
