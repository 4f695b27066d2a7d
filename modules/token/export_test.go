package token

// CacheMarks is the number of revocation marks c keeps (tests only).
func CacheMarks(c *Cached) int {
	c.marksMu.RLock()
	defer c.marksMu.RUnlock()
	return len(c.sessions) + len(c.users)
}

// JWTVouched reports whether j's in-memory deny list vouches for misses (tests only).
func JWTVouched(j *JWT) bool {
	_, _, vouched := j.revoked.lookup("", j.opt.Now())
	return vouched
}
