package avatar

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/avatarupload"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/internal/periodic"
)

// SweepGrace is how old an upload must be before the sweeper may delete
// it: an upload in flight (stored, its user not yet pointed at it) is never
// taken for a leftover.
const SweepGrace = 15 * time.Minute

// sweepBatch is how many uploads one sweep looks at; the next sweep goes on
// where it stopped, so a sweep costs two small queries however many
// avatars there are.
const sweepBatch = 500

// Sweeper deletes uploads older than the grace period whose owner does not
// point at them: what a crash, a failed request or a change made outside a
// transaction left behind. Every instance may run one; deleting twice is
// harmless.
type Sweeper struct {
	client  *ent.Client
	storage Storage
	log     *zap.Logger
	grace   time.Duration
	now     func() time.Time

	mu     sync.Mutex
	cursor int // the last upload id looked at; 0 starts over
}

// SweeperOption adjusts NewSweeper.
type SweeperOption func(*Sweeper)

// WithSweepGrace replaces SweepGrace (tests).
func WithSweepGrace(d time.Duration) SweeperOption { return func(s *Sweeper) { s.grace = d } }

// WithSweepClock sets the clock (tests).
func WithSweepClock(now func() time.Time) SweeperOption { return func(s *Sweeper) { s.now = now } }

// NewSweeper returns a sweeper of the uploads recorded in client and
// stored in storage.
func NewSweeper(client *ent.Client, storage Storage, logger *zap.Logger, opts ...SweeperOption) *Sweeper {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Sweeper{client: client, storage: storage, log: logger.Named("avatar"), grace: SweepGrace, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NewSweeperFx is NewSweeper for fx: it sweeps every
// config.Avatar.SweepInterval while the application runs.
func NewSweeperFx(lc fx.Lifecycle, cfg config.Avatar, client *ent.Client, storage Storage, logger *zap.Logger) *Sweeper {
	s := NewSweeper(client, storage, logger)
	interval := cfg.SweepInterval
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	periodic.OnLifecycle(lc, interval, func(ctx context.Context) {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("avatar sweep failed; trying again next time", zap.Error(err))
		}
	})
	return s
}

// Sweep looks at the next batch of uploads past the grace period and
// deletes those their owner does not point at; it returns how many.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.client.AvatarUpload.Query().
		Where(avatarupload.IDGT(s.cursor), avatarupload.CreatedAtLT(s.now().UTC().Add(-s.grace))).
		Order(ent.Asc(avatarupload.FieldID)).
		Limit(sweepBatch).
		All(ctx)
	if err != nil {
		return 0, err
	}
	if len(rows) < sweepBatch {
		s.cursor = 0
	} else {
		s.cursor = rows[len(rows)-1].ID
	}
	if len(rows) == 0 {
		return 0, nil
	}
	owners := make([]int, 0, len(rows))
	for _, r := range rows {
		owners = append(owners, r.UserID)
	}
	users, err := s.client.User.Query().Where(entuser.IDIn(owners...)).
		Select(entuser.FieldID, entuser.FieldAvatarURL).All(ctx)
	if err != nil {
		return 0, err
	}
	current := make(map[int]string, len(users))
	for _, u := range users {
		current[u.ID] = u.AvatarURL
	}
	deleted := 0
	for _, r := range rows {
		if strings.HasSuffix(current[r.UserID], "/avatars/"+r.Name) {
			continue
		}
		if err := s.storage.Delete(ctx, r.Name); err != nil {
			return deleted, err
		}
		if _, err := s.client.AvatarUpload.Delete().Where(avatarupload.ID(r.ID)).Exec(ctx); err != nil {
			return deleted, err
		}
		deleted++
	}
	if deleted > 0 {
		s.log.Info("avatar files nobody points at deleted", zap.Int("files", deleted))
	}
	return deleted, nil
}
