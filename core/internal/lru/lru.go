// Package lru is a least-recently-used map bounded by the bytes its
// entries cost (each entry's cost is stated by the caller), for caches and
// per-peer state that a hostile network could otherwise grow without
// bound. It is not safe for concurrent use.
package lru

import "container/list"

// Cache maps K to V within a byte budget.
type Cache[K comparable, V any] struct {
	budget, used int
	m            map[K]*list.Element
	order        list.List // front: most recently used
}

type entry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// New returns a cache that keeps its entries' costs within budget bytes
// (the most recent entry stays even if it alone exceeds the budget).
func New[K comparable, V any](budget int) *Cache[K, V] {
	return &Cache[K, V]{budget: budget, m: make(map[K]*list.Element)}
}

// Get returns the value for k and marks it most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	e := c.m[k]
	if e == nil {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry[K, V]).val, true
}

// Peek returns the value for k without changing its recency.
func (c *Cache[K, V]) Peek(k K) (V, bool) {
	e := c.m[k]
	if e == nil {
		var zero V
		return zero, false
	}
	return e.Value.(*entry[K, V]).val, true
}

// Put sets k to v costing cost bytes, marks it most recently used and
// evicts least recently used entries beyond the budget. It returns how
// many entries it evicted.
func (c *Cache[K, V]) Put(k K, v V, cost int) int {
	if e := c.m[k]; e != nil {
		en := e.Value.(*entry[K, V])
		c.used += cost - en.cost
		en.val, en.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.m[k] = c.order.PushFront(&entry[K, V]{key: k, val: v, cost: cost})
		c.used += cost
	}
	evicted := 0
	for c.used > c.budget && c.order.Len() > 1 {
		c.removeElement(c.order.Back())
		evicted++
	}
	return evicted
}

// Remove deletes k.
func (c *Cache[K, V]) Remove(k K) {
	if e := c.m[k]; e != nil {
		c.removeElement(e)
	}
}

func (c *Cache[K, V]) removeElement(e *list.Element) {
	en := e.Value.(*entry[K, V])
	c.used -= en.cost
	delete(c.m, en.key)
	c.order.Remove(e)
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int { return len(c.m) }

// Bytes returns the entries' total cost.
func (c *Cache[K, V]) Bytes() int { return c.used }

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	clear(c.m)
	c.order.Init()
	c.used = 0
}
