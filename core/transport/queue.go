package transport

import (
	"sync"

	"github.com/saorsa-labs/x0x-go/core/link"
)

// maxItemHead is the largest fixed prefix of a queued frame: a frame header
// plus the service byte and the two agent IDs of a direct message.
const maxItemHead = frameHeaderSize + 1 + directIDsSize

// sendItem is one queued frame: a small prefix (frame header and fixed
// fields) and a body owned by the caller, which promised not to modify it.
type sendItem struct {
	head    [maxItemHead]byte
	headLen uint8
	prio    link.Priority
	body    []byte
}

// size is the number of bytes the frame occupies on the wire.
func (it *sendItem) size() int { return int(it.headLen) + len(it.body) }

// fifo is a bounded ring buffer of items that grows on demand (so idle
// connections hold no queue memory).
type fifo struct {
	buf  []sendItem
	head int
	n    int
}

func (f *fifo) push(it sendItem, limit int) bool {
	if f.n >= limit {
		return false
	}
	if f.n == len(f.buf) {
		size := max(8, 2*len(f.buf))
		size = min(size, limit)
		nb := make([]sendItem, size)
		for i := 0; i < f.n; i++ {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.n)%len(f.buf)] = it
	f.n++
	return true
}

func (f *fifo) peek() *sendItem { return &f.buf[f.head] }

func (f *fifo) pop() sendItem {
	it := f.buf[f.head]
	f.buf[f.head] = sendItem{} // release the body
	f.head = (f.head + 1) % len(f.buf)
	f.n--
	if f.n == 0 {
		f.head = 0
	}
	return it
}

// classQueue is one connection's send queue for one stream class: three
// bounded FIFOs, drained highest priority first by the class writer.
type classQueue struct {
	mu    sync.Mutex
	prio  [link.NumPriorities]fifo
	ready chan struct{} // capacity 1: wakes the writer
	space chan struct{} // capacity 1: wakes a sender waiting for room
}

func newClassQueue() classQueue {
	return classQueue{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// push queues it at its priority unless that FIFO already holds depth items.
func (q *classQueue) push(it sendItem, depth int) bool {
	q.mu.Lock()
	ok := q.prio[it.prio].push(it, depth)
	q.mu.Unlock()
	if ok {
		signal(q.ready)
	}
	return ok
}

// popBatch appends to dst queued items in priority order until their wire
// size reaches maxBytes (at least one item is returned if any is queued).
func (q *classQueue) popBatch(dst []sendItem, maxBytes int) []sendItem {
	q.mu.Lock()
	total := 0
	for p := range q.prio {
		f := &q.prio[p]
		for f.n > 0 {
			sz := f.peek().size()
			if len(dst) > 0 && total+sz > maxBytes {
				q.mu.Unlock()
				return dst
			}
			dst = append(dst, f.pop())
			total += sz
		}
	}
	q.mu.Unlock()
	return dst
}

// drain removes and returns every queued item in priority order.
func (q *classQueue) drain() []sendItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []sendItem
	for p := range q.prio {
		for q.prio[p].n > 0 {
			out = append(out, q.prio[p].pop())
		}
	}
	return out
}

// signal does a non-blocking send on a capacity-1 channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
