package config

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// ListenAddress is the listen address the daemon would bind with this file and environment
// (LWA_ROTATOR_LISTEN over the file's listen over DefaultListen). It reads nothing else from the
// file and validates nothing else: the health check needs only the address, and must neither fail
// on nor repeat anything else a user wrote there. The file is not read when the variable is set.
func ListenAddress(path string, getenv func(string) string) (string, error) {
	if getenv != nil {
		if v := getenv("LWA_ROTATOR_LISTEN"); v != "" {
			return v, nil
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading config %s: %w", path, err)
	}
	var c struct {
		Listen string `yaml:"listen"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		// yaml's type errors can quote the offending scalar; name the field only.
		return "", fmt.Errorf("parsing config %s: listen is not a HOST:PORT string, or the file is not YAML", path)
	}
	if c.Listen == "" {
		return DefaultListen, nil
	}
	return c.Listen, nil
}
