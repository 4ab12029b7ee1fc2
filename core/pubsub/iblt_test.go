package pubsub

import (
	"errors"
	"slices"
	"testing"

	"lukechampine.com/blake3"
	"pgregory.net/rapid"

	"github.com/saorsa-labs/x0x-go/core/identity"
)

func idOf(i int) MsgID { return MsgID(blake3.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16), 7})) }

func sortIDs(s []MsgID) []MsgID {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b MsgID) int { return slices.Compare(a[:], b[:]) })
	return s
}

func TestIBLTDecodesSymmetricDifferenceProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		common := rapid.IntRange(0, 500).Draw(t, "common")
		onlyA := rapid.IntRange(0, 30).Draw(t, "onlyA")
		onlyB := rapid.IntRange(0, 30).Draw(t, "onlyB")
		a, b := NewIBLT(sketchCells(1)), NewIBLT(sketchCells(1))
		var wantA, wantB []MsgID
		n := 0
		for i := 0; i < common; i++ {
			a.Insert(idOf(n))
			b.Insert(idOf(n))
			n++
		}
		for i := 0; i < onlyA; i++ {
			a.Insert(idOf(n))
			wantA = append(wantA, idOf(n))
			n++
		}
		for i := 0; i < onlyB; i++ {
			b.Insert(idOf(n))
			wantB = append(wantB, idOf(n))
			n++
		}
		// Round-trip through the wire form, as a peer would receive it.
		a2, err := UnmarshalIBLT(a.MarshalBinary())
		if err != nil {
			t.Fatal(err)
		}
		d, err := a2.Subtract(b)
		if err != nil {
			t.Fatal(err)
		}
		plus, minus, err := d.Decode()
		if err != nil {
			t.Fatalf("difference of %d in %d cells did not decode: %v", onlyA+onlyB, a.Len(), err)
		}
		if !slices.Equal(sortIDs(plus), sortIDs(wantA)) || !slices.Equal(sortIDs(minus), sortIDs(wantB)) {
			t.Fatalf("decoded %d/%d, want %d/%d", len(plus), len(minus), len(wantA), len(wantB))
		}
	})
}

func TestIBLTTooLargeDifferenceFails(t *testing.T) {
	a, b := NewIBLT(sketchCells(0)), NewIBLT(sketchCells(0))
	for i := 0; i < 500; i++ {
		a.Insert(idOf(i))
	}
	d, _ := a.Subtract(b)
	if _, _, err := d.Decode(); !errors.Is(err, ErrIBLTUndecodable) {
		t.Fatalf("500 differences in %d cells: %v, want ErrIBLTUndecodable", a.Len(), err)
	}
	if _, err := a.Subtract(NewIBLT(sketchCells(1))); err == nil {
		t.Fatal("subtracting tables of different sizes succeeded")
	}
}

func TestUnmarshalIBLTRejectsBadLengths(t *testing.T) {
	for _, n := range []int{0, 1, cellSize - 1, cellSize * 2, cellSize * (MaxIBLTCells + 3)} {
		if _, err := UnmarshalIBLT(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("length %d: %v, want ErrMalformed", n, err)
		}
	}
}

func FuzzUnmarshalIBLT(f *testing.F) {
	t := NewIBLT(sketchCells(0))
	t.Insert(idOf(1))
	f.Add(t.MarshalBinary())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := UnmarshalIBLT(b)
		if err != nil {
			return
		}
		// Decoding arbitrary cells must terminate without panicking.
		_, _, _ = tb.Decode()
	})
}

func FuzzDecodeFrame(f *testing.F) {
	msg := &Signed{Header: Header{Topic: TopicIDOf("x"), Seq: 1}, Payload: []byte("p"), Sig: []byte("s")}
	for _, fr := range []*Frame{
		{Kind: kindGossip, Topic: TopicIDOf("x"), Msg: msg, Hops: 2},
		{Kind: kindIHave, Short: ShortList{idOf(1).Short(), idOf(2).Short()}},
		{Kind: kindAEWant, IDs: IDList{idOf(1)}},
		{Kind: kindAESketch, Cells: NewIBLT(sketchCells(0)).MarshalBinary()},
		{Kind: kindAEPush, Msgs: []Signed{*msg}},
		{Kind: kindTopics, Topics: []TopicID{TopicIDOf("a")}},
		{Kind: kindTree, Topic: TopicIDOf("x"), Tree: &TreeState{Root: identity.PeerID(idOf(3)), Seq: 1 << 40, Dist: 2, Parent: identity.PeerID(idOf(4))}},
	} {
		b, _ := EncodeFrame(fr)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b2, err := EncodeFrame(fr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeFrame(b2); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if fr.Msg != nil {
			_, _ = fr.Msg.ID()
		}
	})
}
