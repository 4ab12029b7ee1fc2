// Package peercache is the node's persistent cache of peers it has dialled:
// per (peer, address) success and failure counts, a smoothed RTT and when
// the peer was last reached. At start-up the node asks it for the best few
// peers to connect to; Select is epsilon-greedy, so most picks are the best
// by Quality and a fraction epsilon explore other entries, which keeps the
// scores of the rest fresh.
//
// The cache is bounded (DefaultMaxEntries entries, MaxAddrsPerPeer per
// peer; the worst entry is evicted), safe for concurrent use, and saved
// with Save as a CBOR file (core/wire) written atomically with mode 0600.
package peercache

import (
	"bytes"
	"cmp"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/saorsa-labs/x0x-go/core/clock"
	"github.com/saorsa-labs/x0x-go/core/identity"
)

// Defaults and limits.
const (
	// DefaultEpsilon is the share of Select picks that explore.
	DefaultEpsilon = 0.1
	// DefaultMaxEntries bounds the number of (peer, address) entries.
	DefaultMaxEntries = 1024
	// MaxAddrsPerPeer bounds the addresses kept for one peer.
	MaxAddrsPerPeer = 8
	// MaxAddrLen is the longest address accepted, in bytes.
	MaxAddrLen = 256
	// MaxRTT caps a recorded RTT sample; larger samples count as MaxRTT.
	MaxRTT = time.Minute

	// RTTRef is the RTT at which the RTT factor of Quality is 1/2.
	RTTRef = 100 * time.Millisecond
	// AgeRef is the age at which the age factor of Quality is 1/2.
	AgeRef = 24 * time.Hour
	// NeverSeenAge is the age Quality assumes for an entry that never had
	// a successful contact.
	NeverSeenAge = 7 * 24 * time.Hour
)

// rttWeight is the EWMA weight of a new RTT sample (as in TCP's SRTT).
const rttWeight = 1.0 / 8

// ErrInvalidParams reports bad arguments to Open or SetEpsilon.
var ErrInvalidParams = errors.New("peercache: invalid parameters")

// Entry is what the cache knows about one peer at one address. Entries
// returned by the cache are copies the caller owns.
type Entry struct {
	// Peer is the peer's ID.
	Peer identity.PeerID
	// Addr is the address it was dialled at (as given to Record).
	Addr string
	// Successes and Failures count dial outcomes (saturating).
	Successes uint64
	Failures  uint64
	// RTT is the exponentially weighted moving average (weight 1/8) of the
	// RTT samples of successful contacts; 0 if none was measured.
	RTT time.Duration
	// LastSeen is the time of the last successful contact; the zero Time if
	// there was none.
	LastSeen time.Time
	// Services are the roles the peer offered at its last contact
	// (transport.Services bits: coordinator, relay).
	Services uint8
}

// Quality scores an entry at time now, in (0, 1]; higher is better. It is
// the product of three factors:
//
//	success  s = (Successes + 1) / (Successes + Failures + 2)   (Laplace rule)
//	RTT      r = RTTRef / (RTTRef + RTT), with an unmeasured RTT taken as RTTRef
//	age      a = AgeRef / (AgeRef + now - LastSeen), with never-seen entries
//	             taken as NeverSeenAge old and a LastSeen after now as age 0
//
// So a fresh entry with 3 successes, 1 failure and a 100 ms RTT last seen a
// day ago scores (4/6)(1/2)(1/2) = 1/6.
func Quality(e Entry, now time.Time) float64 {
	s := (float64(e.Successes) + 1) / (float64(e.Successes) + float64(e.Failures) + 2)
	rtt := e.RTT
	if rtt <= 0 {
		rtt = RTTRef
	}
	r := float64(RTTRef) / float64(RTTRef+rtt)
	age := NeverSeenAge
	if !e.LastSeen.IsZero() {
		age = max(now.Sub(e.LastSeen), 0)
	}
	a := float64(AgeRef) / (float64(AgeRef) + float64(age))
	return s * r * a
}

// Options configure OpenWith. The zero value takes the defaults.
type Options struct {
	// Rand seeds the cache's exploration PRNG (32 bytes are read once, at
	// open; default crypto/rand). Inject a deterministic reader in tests.
	Rand io.Reader
	// Clock timestamps contacts and ages entries (default the real clock).
	Clock clock.Clock
	// MaxEntries bounds the cache (default DefaultMaxEntries).
	MaxEntries int
}

// Stats are counters since the cache was opened.
type Stats struct {
	// Rejected counts Record calls ignored for invalid input (zero peer
	// ID, empty or over-long address).
	Rejected uint64
	// Evicted counts entries dropped to stay within bounds (including a new
	// entry that was worse than every existing one).
	Evicted uint64
	// Explored and Exploited count Select picks made at random and by
	// quality.
	Explored, Exploited uint64
}

type entryKey struct {
	peer identity.PeerID
	addr string
}

// Cache is a bounded, persistent peer cache. All methods are safe for
// concurrent use.
type Cache struct {
	path string
	clk  clock.Clock
	max  int

	saveMu sync.Mutex // serialises Save so the newest snapshot is written last

	mu      sync.Mutex // guards everything below
	rng     *mrand.Rand
	eps     float64
	list    []*Entry                // dense, unordered
	index   map[entryKey]int        // position in list
	perPeer map[identity.PeerID]int // number of entries per peer
	stats   Stats
}

// Open loads the cache saved at path, or returns an empty cache if path
// does not exist. rand (default crypto/rand) seeds exploration; clk
// (default the real clock) timestamps contacts. A file that cannot be
// decoded is a *FileError naming path that wraps ErrCorrupt or
// ErrUnsupportedVersion; the file is not modified (see OpenOrReset).
func Open(path string, rand io.Reader, clk clock.Clock) (*Cache, error) {
	return OpenWith(path, Options{Rand: rand, Clock: clk})
}

// OpenWith is Open with options.
func OpenWith(path string, opts Options) (*Cache, error) {
	c, err := newCache(path, opts)
	if err != nil {
		return nil, err
	}
	entries, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c.load(entries)
	return c, nil
}

// OpenOrReset is Open, except that a corrupt or unsupported file is moved
// aside (to path+".corrupt", or path+".corrupt.1" ... ".corrupt.9" if that
// exists; never overwriting one) and an empty cache is returned together
// with the name it was moved to. movedTo is "" when nothing was moved. I/O
// errors (other than decoding) are returned as by Open.
func OpenOrReset(path string, rand io.Reader, clk clock.Clock) (c *Cache, movedTo string, err error) {
	c, err = newCache(path, Options{Rand: rand, Clock: clk})
	if err != nil {
		return nil, "", err
	}
	entries, err := readFile(path)
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedVersion) {
		dst, merr := moveAside(path)
		if merr != nil {
			return nil, "", fmt.Errorf("%w (and moving it aside failed: %v)", err, merr)
		}
		return c, dst, nil
	}
	if err != nil {
		return nil, "", err
	}
	c.load(entries)
	return c, "", nil
}

func newCache(path string, opts Options) (*Cache, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidParams)
	}
	if opts.MaxEntries < 0 {
		return nil, fmt.Errorf("%w: MaxEntries %d", ErrInvalidParams, opts.MaxEntries)
	}
	r := opts.Rand
	if r == nil {
		r = crand.Reader
	}
	var seed [32]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, fmt.Errorf("peercache: reading seed: %w", err)
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real()
	}
	maxEntries := opts.MaxEntries
	if maxEntries == 0 {
		maxEntries = DefaultMaxEntries
	}
	return &Cache{
		path:    path,
		clk:     clk,
		max:     maxEntries,
		rng:     mrand.New(mrand.NewChaCha8(seed)),
		eps:     DefaultEpsilon,
		index:   make(map[entryKey]int),
		perPeer: make(map[identity.PeerID]int),
	}, nil
}

// load inserts decoded entries, applying the bounds (a file written with a
// larger MaxEntries keeps its best entries).
func (c *Cache) load(entries []Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clk.Now()
	list := make([]scored, len(entries))
	for i := range entries {
		list[i] = scored{&entries[i], Quality(entries[i], now)}
	}
	sortScored(list)
	// Best first, so once the cache is full every later entry is worse.
	for _, s := range list {
		if len(c.list) >= c.max {
			c.stats.Evicted++
			continue
		}
		c.insertLocked(s.e, now)
	}
}

// Path returns the file the cache is saved to.
func (c *Cache) Path() string { return c.path }

// SetEpsilon sets the exploration probability of Select, in [0, 1]
// (0: always the best; 1: always random). Other values are ErrInvalidParams.
func (c *Cache) SetEpsilon(eps float64) error {
	if !(eps >= 0 && eps <= 1) { // also rejects NaN
		return fmt.Errorf("%w: epsilon %v not in [0, 1]", ErrInvalidParams, eps)
	}
	c.mu.Lock()
	c.eps = eps
	c.mu.Unlock()
	return nil
}

// Record notes the outcome of a contact with peer at addr: ok reports
// success, rtt is the measured round-trip time of a successful contact (0
// if unknown; ignored on failure). A new (peer, addr) pair is added,
// evicting the worst entry if the cache or the peer's address list is full
// (or dropping the new one if it is the worst). Invalid input (zero peer
// ID, empty address, address longer than MaxAddrLen) is ignored and
// counted in Stats.Rejected.
func (c *Cache) Record(peer identity.PeerID, addr string, ok bool, rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if peer.IsZero() || addr == "" || len(addr) > MaxAddrLen {
		c.stats.Rejected++
		return
	}
	now := c.clk.Now()
	var e *Entry
	if i, ok := c.index[entryKey{peer, addr}]; ok {
		e = c.list[i]
	}
	if e == nil {
		e = &Entry{Peer: peer, Addr: addr}
		update(e, ok, rtt, now)
		c.insertLocked(e, now)
		return
	}
	update(e, ok, rtt, now)
}

// RecordServices notes the roles (transport.Services bits) the peer at
// addr offered on a successful contact. Unknown peers are ignored: Record
// adds entries.
func (c *Cache) RecordServices(peer identity.PeerID, addr string, services uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[entryKey{peer, addr}]; ok {
		c.list[i].Services = services
	}
}

// WithServices returns up to n entries whose peers offered every role in
// mask, best quality first.
func (c *Cache) WithServices(mask uint8, n int) []Entry {
	all := c.Entries()
	now := c.clk.Now()
	var out []Entry
	for _, e := range all {
		if e.Services&mask == mask && mask != 0 {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(Quality(b, now), Quality(a, now)) })
	return out[:min(n, len(out))]
}

func update(e *Entry, ok bool, rtt time.Duration, now time.Time) {
	if !ok {
		if e.Failures < ^uint64(0) {
			e.Failures++
		}
		return
	}
	if e.Successes < ^uint64(0) {
		e.Successes++
	}
	e.LastSeen = now
	if rtt <= 0 {
		return
	}
	rtt = min(rtt, MaxRTT)
	if e.RTT <= 0 {
		e.RTT = rtt
	} else {
		e.RTT += time.Duration(rttWeight * float64(rtt-e.RTT))
	}
}

// insertLocked adds a new entry within the bounds.
func (c *Cache) insertLocked(e *Entry, now time.Time) {
	if c.perPeer[e.Peer] >= MaxAddrsPerPeer {
		if !c.makeRoom(e, now, func(x *Entry) bool { return x.Peer == e.Peer }) {
			return
		}
	}
	if len(c.list) >= c.max {
		if !c.makeRoom(e, now, nil) {
			return
		}
	}
	c.index[entryKey{e.Peer, e.Addr}] = len(c.list)
	c.list = append(c.list, e)
	c.perPeer[e.Peer]++
}

// makeRoom evicts the worst entry among those matching filter (all if
// nil), unless the newcomer is worse than all of them; it reports whether
// the newcomer may be inserted.
func (c *Cache) makeRoom(newcomer *Entry, now time.Time, filter func(*Entry) bool) bool {
	worst, wq, wi := newcomer, Quality(*newcomer, now), -1
	for i, x := range c.list {
		if filter != nil && !filter(x) {
			continue
		}
		if q := Quality(*x, now); better(wq, worst, q, x) {
			worst, wq, wi = x, q, i
		}
	}
	c.stats.Evicted++
	if wi < 0 {
		return false
	}
	c.removeAt(wi)
	return true
}

// removeAt deletes list[i] by moving the last entry into its place.
func (c *Cache) removeAt(i int) {
	e := c.list[i]
	last := len(c.list) - 1
	if i != last {
		moved := c.list[last]
		c.list[i] = moved
		c.index[entryKey{moved.Peer, moved.Addr}] = i
	}
	c.list[last] = nil
	c.list = c.list[:last]
	delete(c.index, entryKey{e.Peer, e.Addr})
	if c.perPeer[e.Peer]--; c.perPeer[e.Peer] <= 0 {
		delete(c.perPeer, e.Peer)
	}
}

// better reports whether (qa, a) ranks above (qb, b): higher quality, then
// more recently seen, then lower peer ID, then lower address. The order is
// total, so selection and eviction are deterministic.
func better(qa float64, a *Entry, qb float64, b *Entry) bool {
	if qa != qb {
		return qa > qb
	}
	if !a.LastSeen.Equal(b.LastSeen) {
		return a.LastSeen.After(b.LastSeen)
	}
	if c := bytes.Compare(a.Peer[:], b.Peer[:]); c != 0 {
		return c < 0
	}
	return a.Addr < b.Addr
}

// Remove forgets every address of peer.
func (c *Cache) Remove(peer identity.PeerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.list) - 1; i >= 0 && c.perPeer[peer] > 0; i-- {
		if c.list[i].Peer == peer {
			c.removeAt(i)
		}
	}
}

// Len returns the number of (peer, address) entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Entries returns a copy of every entry, best first.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rankedLocked(c.clk.Now())
}

// Get returns the entry for peer at addr, if present.
func (c *Cache) Get(peer identity.PeerID, addr string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[entryKey{peer, addr}]
	if !ok {
		return Entry{}, false
	}
	return *c.list[i], true
}

type scored struct {
	e *Entry // owned by the cache: copy before returning to a caller
	q float64
}

// scoredLocked returns the entries with their quality, in no
// particular order; with onePerPeer only each peer's best address.
func (c *Cache) scoredLocked(now time.Time, onePerPeer bool) []scored {
	list := make([]scored, 0, len(c.list))
	var pos map[identity.PeerID]int
	if onePerPeer && len(c.perPeer) != len(c.list) {
		pos = make(map[identity.PeerID]int, len(c.perPeer))
	}
	for _, x := range c.list {
		s := scored{x, Quality(*x, now)}
		if pos != nil {
			if i, seen := pos[x.Peer]; seen {
				if better(s.q, s.e, list[i].q, list[i].e) {
					list[i] = s
				}
				continue
			}
			pos[x.Peer] = len(list)
		}
		list = append(list, s)
	}
	return list
}

// sortScored sorts best first.
func sortScored(list []scored) {
	slices.SortFunc(list, func(a, b scored) int {
		if better(a.q, a.e, b.q, b.e) {
			return -1
		}
		if better(b.q, b.e, a.q, a.e) {
			return 1
		}
		return 0
	})
}

// rankedLocked returns copies of all entries, best first.
func (c *Cache) rankedLocked(now time.Time) []Entry {
	list := c.scoredLocked(now, false)
	sortScored(list)
	out := make([]Entry, len(list))
	for i := range list {
		out[i] = *list[i].e
	}
	return out
}

// Select returns up to n entries for distinct peers (each peer's best
// address), to dial. Each pick is epsilon-greedy: with probability epsilon
// (SetEpsilon, default 0.1) a uniformly random remaining peer, otherwise the
// best remaining by Quality. The caller owns the returned slice; n <= 0
// returns nil. It costs O(n * entries) and allocates O(entries).
func (c *Cache) Select(n int) []Entry {
	if n <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := c.scoredLocked(c.clk.Now(), true)
	out := make([]Entry, 0, min(n, len(rest)))
	for len(out) < n && len(rest) > 0 {
		var i int
		if c.eps > 0 && c.rng.Float64() < c.eps {
			i = c.rng.IntN(len(rest))
			c.stats.Explored++
		} else {
			for j := 1; j < len(rest); j++ {
				if better(rest[j].q, rest[j].e, rest[i].q, rest[i].e) {
					i = j
				}
			}
			c.stats.Exploited++
		}
		out = append(out, *rest[i].e)
		rest[i] = rest[len(rest)-1]
		rest = rest[:len(rest)-1]
	}
	return out
}

// Save writes the cache to its path atomically (temporary file, fsync,
// rename, fsync of the directory) with mode 0600, creating the directory
// (0700) if needed. Concurrent Saves write in order, the last one wins.
func (c *Cache) Save() error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	entries := c.rankedLocked(c.clk.Now())
	c.mu.Unlock()
	data, err := encodeFile(entries)
	if err != nil {
		return &FileError{Path: c.path, Err: err}
	}
	if err := writeAtomic(c.path, data); err != nil {
		return &FileError{Path: c.path, Err: err}
	}
	return nil
}
