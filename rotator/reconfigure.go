package rotator

// Check reports whether Reconfigure would accept apps and s, and changes nothing: the daemon's
// reload asks every part that owns settings first and applies only when none refuses, so a
// refused reload leaves every part as it was. Any application list is accepted today.
func (r *Rotator) Check(apps []App, s Settings) error {
	return s.validate()
}
