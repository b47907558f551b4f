package broker

import "testing"

func TestWatermarkCommitsBelowTheFirstUnfinishedOffset(t *testing.T) {
	w := newWatermark()
	for _, off := range []int64{10, 11, 12, 14} { // 13 compacted away
		w.add(off)
	}
	steps := []struct {
		finish int64
		moved  bool
		next   int64
	}{
		{12, false, -1},
		{11, false, -1},
		{10, true, 13},
		{14, true, 15},
	}
	for _, s := range steps {
		if moved := w.finish(s.finish); moved != s.moved || w.next != s.next {
			t.Fatalf("finish(%d): moved=%v next=%d, want moved=%v next=%d", s.finish, moved, w.next, s.moved, s.next)
		}
	}
}
