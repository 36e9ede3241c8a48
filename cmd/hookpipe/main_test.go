package main

import "testing"

func TestGCPercent(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, ok := gcPercent(getenv); !ok || p != defaultGCPercent {
		t.Errorf("GOGC unset: got %d, %v; want %d, true", p, ok, defaultGCPercent)
	}
	for _, v := range []string{"100", "off", "50"} {
		env["GOGC"] = v
		if _, ok := gcPercent(getenv); ok {
			t.Errorf("GOGC=%s: the binary overrode the user's setting", v)
		}
	}
}
