package main

import (
	"net"
	"strings"
	"testing"
)

// FuzzCheckAddr feeds arbitrary caller-supplied addresses (from C, Node or
// Python) to the validation used by "bootstrap" and x0x_connect: it must
// never panic, and whatever it accepts must split into host and port.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:12000", "[::1]:0", strings.Repeat("ab", 32) + "@127.0.0.1:1", "@:", "a@b@c:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkAddr(s) != nil {
			return
		}
		if _, hp, ok := strings.Cut(s, "@"); ok {
			s = hp
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			t.Fatalf("accepted %q that does not split: %v", s, err)
		}
	})
}
