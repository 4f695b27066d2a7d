package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/revocation"
	"github.com/wxlogin/wxlogin/internal/periodic"
)

// Revoked names the sessions that a revocation ended.
type Revoked struct {
	UserID     int      `json:"u"`
	SessionIDs []string `json:"s,omitempty"`
	// AllSessions means every session of UserID ended (logout everywhere),
	// including any not listed.
	AllSessions bool `json:"all,omitempty"`
	// Reason is why (told to clients whose tokens are refused).
	Reason Reason `json:"r,omitempty"`
	// Until is when the last access token of those sessions expires: how
	// long the jwt strategy must remember the revocation. Zero means one
	// access-token lifetime from now.
	Until time.Time `json:"x,omitzero"`
	// At is when the revocation was made or published (the feed's lag is
	// measured from it); zero when unknown.
	At time.Time `json:"t,omitzero"`
}

// Feed carries revocations to the verification caches of every instance.
type Feed interface {
	// Publish tells the caches of this instance at once and those of the
	// other instances soon after. Call it once the revocation is stored.
	Publish(ctx context.Context, r Revoked) error
	// Subscribe registers a cache until the returned function is called.
	Subscribe(s Subscriber) (unsubscribe func())
}

// Subscriber is what a Feed feeds: a cache of verified tokens.
type Subscriber interface {
	// Evict drops the entries of the sessions r names.
	Evict(r Revoked)
	// Reset drops every entry. live reports whether revocations made by
	// other instances are being received; while it is false a revocation
	// may go unseen, so the cache must not serve or keep entries.
	Reset(live bool)
}

// hub fans revocations out to this instance's subscribers.
type hub struct {
	mu   sync.Mutex
	subs map[*Subscriber]struct{}
	live bool
	// name is the feed's kind ("redis", "poll", "local") for the observer.
	name string
	obs  Observer
}

// SetObserver makes o hear the feed's state and the revocations it
// receives from other instances (metrics). Call it before Start.
func (h *hub) SetObserver(o Observer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.obs = o
	if o != nil {
		o.FeedLive(h.name, h.live)
	}
}

// received tells the observer about a revocation made at at.
func (h *hub) received(at time.Time) {
	h.mu.Lock()
	obs := h.obs
	h.mu.Unlock()
	if obs != nil && !at.IsZero() {
		obs.RevocationReceived(h.name, max(time.Since(at), 0))
	}
}

// Subscribe registers s and tells it at once whether the feed is live.
func (h *hub) Subscribe(s Subscriber) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*Subscriber]struct{}{}
	}
	key := &s
	h.subs[key] = struct{}{}
	s.Reset(h.live)
	return func() {
		h.mu.Lock()
		delete(h.subs, key)
		h.mu.Unlock()
	}
}

func (h *hub) dispatch(r Revoked) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		(*s).Evict(r)
	}
}

// setLive records whether remote revocations are received and purges every
// subscriber: what they hold may have been revoked unseen.
func (h *hub) setLive(live bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = live
	for s := range h.subs {
		(*s).Reset(live)
	}
	if h.obs != nil {
		h.obs.FeedLive(h.name, live)
	}
}

func (h *hub) isLive() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live
}

// LocalFeed reaches the caches of this instance only: for a single instance,
// and for tests.
type LocalFeed struct{ hub }

var _ Feed = (*LocalFeed)(nil)

// NewLocalFeed returns a feed that reaches this instance only.
func NewLocalFeed() *LocalFeed {
	f := &LocalFeed{}
	f.live, f.name = true, "local"
	return f
}

// Publish evicts r from this instance's caches.
func (f *LocalFeed) Publish(_ context.Context, r Revoked) error {
	f.dispatch(r)
	return nil
}

// RedisFeed carries revocations through Redis pub/sub. It pings the
// subscription regularly; while the subscription is down (and after every
// reconnection) it tells the caches to purge and stop caching, because
// messages published meanwhile are lost.
type RedisFeed struct {
	hub
	periodic.Loop
	rdb       redis.UniversalClient
	channel   string
	log       *zap.Logger
	heartbeat time.Duration

	psMu sync.Mutex
	ps   *redis.PubSub
}

var _ Feed = (*RedisFeed)(nil)

// NewRedisFeed returns a feed on the channel prefix+"token:revoked" (on a
// Redis Cluster, messages published on any node reach subscribers on every
// node). Call Start before relying on it and Stop at the end; until Start,
// caches fed by it do not cache.
func NewRedisFeed(rdb redis.UniversalClient, prefix string, log *zap.Logger) *RedisFeed {
	if log == nil {
		log = zap.NewNop()
	}
	return &RedisFeed{hub: hub{name: "redis"}, rdb: rdb, channel: prefix + "token:revoked", log: log, heartbeat: 300 * time.Millisecond}
}

// Publish evicts r from this instance's caches at once and publishes it to
// the others.
func (f *RedisFeed) Publish(ctx context.Context, r Revoked) error {
	f.dispatch(r)
	if r.At.IsZero() {
		r.At = time.Now()
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("token: encode revocation: %w", err)
	}
	if err := f.rdb.Publish(ctx, f.channel, payload).Err(); err != nil {
		return unavailable("revocation stored but not announced to other instances", err)
	}
	return nil
}

// Start subscribes, waits for Redis to confirm, and then receives in the
// background until Stop.
func (f *RedisFeed) Start(ctx context.Context) error {
	ps := f.rdb.Subscribe(ctx, f.channel)
	msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = fmt.Errorf("unexpected %T", msg)
		}
	}
	if err != nil {
		_ = ps.Close()
		return fmt.Errorf("token: subscribe to revocations on Redis: %w", err)
	}
	f.setLive(true)
	f.psMu.Lock()
	f.ps = ps
	f.psMu.Unlock()
	f.Loop.Start(func(ctx context.Context) {
		defer ps.Close()
		f.receive(ctx, ps)
	})
	return nil
}

// Stop ends the subscription and waits for the receiving goroutine.
func (f *RedisFeed) Stop(ctx context.Context) error {
	f.psMu.Lock()
	ps := f.ps
	f.ps = nil
	f.psMu.Unlock()
	f.Loop.Cancel() // first, so the loop takes the closing for a stop
	if ps != nil {
		_ = ps.Close() // interrupts a receive in progress
	}
	err := f.Loop.Stop(ctx)
	f.setLive(false)
	return err
}

func (f *RedisFeed) receive(ctx context.Context, ps *redis.PubSub) {
	var pingSent time.Time // zero while no ping is unanswered
	down := func(reason string, err error) {
		if f.isLive() {
			f.log.Warn("token: revocation feed down; verification cache off until it is back",
				zap.String("reason", reason), zap.Error(err))
			f.setLive(false)
		}
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, f.heartbeat)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !pingSent.IsZero() && time.Since(pingSent) > f.heartbeat {
					down("no answer to ping", nil)
				}
				if pingSent.IsZero() {
					if err := ps.Ping(ctx); err != nil {
						down("ping failed", err)
					} else {
						pingSent = time.Now()
					}
				}
				continue
			}
			// The connection broke; the next receive reconnects and
			// resubscribes. Messages published meanwhile are lost.
			down("receive failed", err)
			pingSent = time.Time{}
			select {
			case <-ctx.Done():
				return
			case <-time.After(f.heartbeat):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// A (re)subscription: start afresh.
			if m.Kind == "subscribe" {
				pingSent = time.Time{}
				f.setLive(true)
				f.log.Info("token: revocation feed subscribed")
			}
		case *redis.Pong:
			pingSent = time.Time{}
			if !f.isLive() {
				f.setLive(true)
			}
		case *redis.Message:
			var r Revoked
			if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
				// Unknown content: forget everything rather than miss a revocation.
				f.log.Warn("token: unreadable revocation message; cache purged", zap.Error(err))
				f.setLive(true)
				continue
			}
			f.dispatch(r)
			f.received(r.At)
		}
	}
}

// PollFeed reads the revocations other instances stored in the database's
// revocation table (written by the db strategy, and by the jwt strategy
// without Redis) every interval. It relies on those rows: pair it only with
// strategies that write them.
type PollFeed struct {
	hub
	periodic.Loop
	client *ent.Client
	every  time.Duration
	log    *zap.Logger

	// Only the polling goroutine touches these.
	last int64
	// gaps are ids skipped over: a transaction may commit a lower id after a
	// higher one was read. They are asked for again until gapWindow passes.
	gaps map[int64]time.Time
}

var _ Feed = (*PollFeed)(nil)

const (
	pollBatch = 500
	gapWindow = time.Minute
	maxGaps   = 1000
	// startWindow is how many ids below the end Start checks for gaps.
	startWindow = 64
)

// NewPollFeed returns a feed that polls every interval. Call Start before
// relying on it and Stop at the end.
func NewPollFeed(client *ent.Client, every time.Duration, log *zap.Logger) *PollFeed {
	if log == nil {
		log = zap.NewNop()
	}
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	return &PollFeed{hub: hub{name: "poll"}, client: client, every: every, log: log, gaps: map[int64]time.Time{}}
}

// Publish evicts r from this instance's caches; the others read the row the
// strategy stored.
func (f *PollFeed) Publish(_ context.Context, r Revoked) error {
	f.dispatch(r)
	return nil
}

// Start reads where the table ends and polls from there until Stop.
func (f *PollFeed) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	last, err := f.client.Revocation.Query().Order(ent.Desc(revocation.FieldID)).FirstID(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return fmt.Errorf("token: read the revocation table: %w", err)
	}
	f.last = last
	// Rows just below the end may belong to transactions still committing:
	// ask for the missing ones again for a while, as for any other gap.
	recent, err := f.client.Revocation.Query().Where(revocation.IDGT(last - startWindow)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("token: read the revocation table: %w", err)
	}
	seen := make(map[int64]bool, len(recent))
	for _, id := range recent {
		seen[id] = true
	}
	now := time.Now()
	for id := max(1, last-startWindow+1); id <= last; id++ {
		if !seen[id] {
			f.gaps[id] = now
		}
	}
	f.setLive(true)
	f.Loop.Every(f.every, f.poll)
	return nil
}

// Stop ends polling and waits for it.
func (f *PollFeed) Stop(ctx context.Context) error {
	err := f.Loop.Stop(ctx)
	f.setLive(false)
	return err
}

func (f *PollFeed) poll(ctx context.Context) {
	for {
		n, err := f.pollOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if f.isLive() {
				f.log.Warn("token: cannot read revocations; verification cache off until it can", zap.Error(err))
				f.setLive(false)
			}
			return
		}
		if !f.isLive() {
			f.setLive(true)
		}
		if n < pollBatch {
			return
		}
	}
}

func (f *PollFeed) pollOnce(ctx context.Context) (int, error) {
	// A poll slower than a second would break the promise to the caches.
	ctx, cancel := context.WithTimeout(ctx, max(time.Second, f.every))
	defer cancel()
	now := time.Now()
	pred := revocation.IDGT(f.last)
	if len(f.gaps) > 0 {
		ids := make([]int64, 0, len(f.gaps))
		for id, since := range f.gaps {
			if now.Sub(since) > gapWindow {
				delete(f.gaps, id)
				continue
			}
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			pred = revocation.Or(pred, revocation.IDIn(ids...))
		}
	}
	rows, err := f.client.Revocation.Query().Where(pred).
		Order(ent.Asc(revocation.FieldID)).Limit(pollBatch).All(ctx)
	if err != nil {
		return 0, err
	}
	for _, row := range rows {
		if _, ok := f.gaps[row.ID]; ok {
			delete(f.gaps, row.ID)
		} else if row.ID > f.last {
			for id := f.last + 1; id < row.ID && len(f.gaps) < maxGaps; id++ {
				f.gaps[id] = now
			}
			f.last = row.ID
		}
		f.dispatch(Revoked{UserID: row.UserID, SessionIDs: []string{row.SessionID}, Reason: storedReason(row.Reason),
			Until: row.ExpiresAt.UTC(), At: row.CreatedAt})
		f.received(row.CreatedAt)
	}
	return len(rows), nil
}
