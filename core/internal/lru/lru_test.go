package lru

import "testing"

func TestBudgetAndRecency(t *testing.T) {
	c := New[string, int](100)
	c.Put("a", 1, 40)
	c.Put("b", 2, 40)
	if _, ok := c.Get("a"); !ok { // a is now more recent than b
		t.Fatal("a missing")
	}
	if n := c.Put("c", 3, 40); n != 1 {
		t.Fatalf("evicted %d, want 1", n)
	}
	if _, ok := c.Peek("b"); ok {
		t.Fatal("the least recently used entry survived")
	}
	if _, ok := c.Peek("a"); !ok || c.Bytes() != 80 || c.Len() != 2 {
		t.Fatalf("a present %v, %d bytes, %d entries", ok, c.Bytes(), c.Len())
	}
	c.Put("a", 9, 70) // resized: c goes
	if v, _ := c.Get("a"); v != 9 || c.Len() != 1 || c.Bytes() != 70 {
		t.Fatalf("after resize: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	c.Put("huge", 0, 500) // alone over budget: kept, everything else goes
	if c.Len() != 1 || c.Bytes() != 500 {
		t.Fatalf("oversized entry: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	c.Remove("huge")
	c.Put("x", 1, 1)
	c.Clear()
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Fatal("Clear left entries")
	}
}
