package ratelimit

// MemoryKeys is how many keys m holds.
func MemoryKeys(m *Memory) int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += m.shards[i].keys.Len()
		m.shards[i].mu.Unlock()
	}
	return n
}
