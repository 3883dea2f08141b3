package msg

import "testing"

func TestFWAtLeast(t *testing.T) {
	for _, tc := range []struct {
		fw, min string
		want    bool
	}{
		{"0.2.0", "0.2.0", true}, {"0.10.0", "0.2.0", true}, {"1.0.0", "0.2.0", true},
		{"0.2.1+git.abc123", "0.2.0", true}, {"0.1.9", "0.2.0", false}, {"0.1.0", "0.2.0", false},
		{"", "0.2.0", false}, {"0.2", "0.2.0", false}, {"0.2.x", "0.2.0", false}, {"0.02.0", "0.2.0", false},
		{"0.2.0-rc1", "0.2.0", true},
	} {
		if got := FWAtLeast(tc.fw, tc.min); got != tc.want {
			t.Errorf("FWAtLeast(%q, %q) = %v", tc.fw, tc.min, got)
		}
	}
}
