package daemon

// uniq lists the configured queue URLs once each (both notification types may share one queue).
func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
