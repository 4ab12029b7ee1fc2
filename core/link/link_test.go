package link

import "testing"

// Every protocol runs on a real data class (never the relay class, which
// the transport handles itself) and has a distinct name; values outside
// the table are invalid and have no class.
func TestProtocolTable(t *testing.T) {
	names := map[string]Protocol{}
	for p := Protocol(0); p < 255; p++ {
		c := p.Class()
		if !p.Valid() {
			if c != 0 {
				t.Fatalf("invalid %v has class %v", p, c)
			}
			continue
		}
		if !c.Valid() || c == ClassRelay || c == ClassDirect {
			t.Fatalf("%v runs on class %v", p, c)
		}
		if q, dup := names[p.String()]; dup {
			t.Fatalf("%v and %v share the name %q", p, q, p.String())
		}
		names[p.String()] = p
	}
	if len(names) != int(MaxProtocol) {
		t.Fatalf("%d valid protocols, MaxProtocol %d", len(names), MaxProtocol)
	}
	for c := Class(0); c < 255; c++ {
		if c.Valid() != (c.Index() >= 0 && c.Index() < NumClasses) {
			t.Fatalf("class %d: Valid %v, Index %d", c, c.Valid(), c.Index())
		}
	}
	for p := Priority(0); p < 255; p++ {
		if p.Valid() != (int(p) < NumPriorities) {
			t.Fatalf("priority %d: Valid %v", p, p.Valid())
		}
	}
}
