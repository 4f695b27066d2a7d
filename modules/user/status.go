package user

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/predicate"
	entuser "github.com/wxlogin/wxlogin/ent/user"
)

// Statuses a user has, as [StatusOf] tells them.
const (
	StatusActive  = "active"
	StatusBanned  = "banned"
	StatusDeleted = "deleted"
	StatusMerged  = "merged"
)

// ErrBanned is what a *[BannedError] is (errors.Is).
var ErrBanned = errors.New("user: banned")

// BannedError refuses a banned user's login. Until is when the ban lapses by
// itself, nil for a ban without end. The ban's reason is for operators and
// is never part of it.
type BannedError struct {
	Until *time.Time
}

func (e *BannedError) Error() string {
	if e.Until != nil {
		return "user: banned until " + e.Until.UTC().Format(time.RFC3339)
	}
	return "user: banned"
}

// Is makes errors.Is(err, ErrBanned) hold.
func (e *BannedError) Is(target error) bool { return target == ErrBanned }

// MaxBanReasonRunes bounds a ban's reason.
const MaxBanReasonRunes = 512

// Ban is an operator's ban: why (kept for operators, never shown to the
// user) and, optionally, when it ends by itself.
type Ban struct {
	Reason string
	Until  *time.Time
}

// StatusOf is u's status at now: a ban whose end has passed reads as
// "active" even before the row is updated (see [EntStore.LapseBans]).
func StatusOf(u *ent.User, now time.Time) string {
	if u.Status == entuser.StatusBanned && !banned(u, now) {
		return StatusActive
	}
	return string(u.Status)
}

// banned reports whether u is banned at now.
func banned(u *ent.User, now time.Time) bool {
	return u.Status == entuser.StatusBanned && (u.BannedUntil == nil || now.Before(*u.BannedUntil))
}

// refuseBanned is the error a login of u at now gets: a *BannedError, or nil.
func refuseBanned(u *ent.User, now time.Time) error {
	if !banned(u, now) {
		return nil
	}
	e := &BannedError{}
	if u.BannedUntil != nil {
		t := u.BannedUntil.UTC()
		e.Until = &t
	}
	return e
}

// usable matches the users who may log in at now: active ones and those
// whose ban has lapsed.
func usable(now time.Time) predicate.User {
	return entuser.Or(
		entuser.StatusEQ(entuser.StatusActive),
		entuser.And(entuser.StatusEQ(entuser.StatusBanned), entuser.BannedUntilNotNil(), entuser.BannedUntilLTE(now)),
	)
}

// inheritBan reports whether the survivor of a merge must take the absorbed
// user's ban: from is banned and into is not, or less strictly (an earlier
// end).
func inheritBan(from, into *ent.User, now time.Time) bool {
	switch {
	case !banned(from, now):
		return false
	case !banned(into, now):
		return true
	case into.BannedUntil == nil:
		return false
	}
	return from.BannedUntil == nil || from.BannedUntil.After(*into.BannedUntil)
}

// validBan checks an operator's ban.
func (s *EntStore) validBan(b Ban) (Ban, error) {
	b.Reason = strings.TrimSpace(b.Reason)
	switch {
	case b.Reason == "" || !utf8.ValidString(b.Reason) || utf8.RuneCountInString(b.Reason) > MaxBanReasonRunes:
		return b, &ValidationError{Field: "reason", Reason: fmt.Sprintf("must be 1 to %d characters of text", MaxBanReasonRunes)}
	case strings.ContainsFunc(b.Reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return b, &ValidationError{Field: "reason", Reason: "must not contain control characters"}
	case b.Until != nil && !b.Until.After(s.now()):
		return b, &ValidationError{Field: "until", Reason: "must be in the future (leave it out for a ban without end)"}
	}
	if b.Until != nil {
		t := b.Until.UTC()
		b.Until = &t
	}
	return b, nil
}

// Ban bans the user (again, replacing a ban it has): its logins are refused
// until b.Until, or for good without it. Listeners hear [Banned], which is
// what ends the user's sessions (modules/auth). ErrNotFound for an unknown,
// deleted or merged user.
func (s *EntStore) Ban(ctx context.Context, id int, b Ban) (*ent.User, error) {
	b, err := s.validBan(b)
	if err != nil {
		return nil, err
	}
	upd := s.client.User.UpdateOneID(id).
		Where(entuser.StatusIn(entuser.StatusActive, entuser.StatusBanned)).
		SetStatus(entuser.StatusBanned).SetBanReason(b.Reason).SetUpdatedAt(s.now())
	if b.Until != nil {
		upd.SetBannedUntil(*b.Until)
	} else {
		upd.ClearBannedUntil()
	}
	u, err := s.save(ctx, upd)
	if err != nil {
		return nil, err
	}
	s.log.Info("user banned", zap.Int("user_id", id), zap.Timep("until", b.Until))
	s.emit(context.WithoutCancel(ctx), Banned{UserID: id, Until: b.Until})
	return u, nil
}

// Unban lifts the user's ban; a user who is not banned is returned as is.
// Listeners hear [Unbanned] when there was a ban (a lapsed one included).
func (s *EntStore) Unban(ctx context.Context, id int) (*ent.User, error) {
	n, err := s.client.User.Update().
		Where(entuser.ID(id), entuser.StatusEQ(entuser.StatusBanned)).
		SetStatus(entuser.StatusActive).ClearBannedUntil().ClearBanReason().SetUpdatedAt(s.now()).
		Save(ctx)
	if err != nil {
		return nil, unavailable("unban", err)
	}
	u, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.log.Info("user unbanned", zap.Int("user_id", id))
		s.emit(context.WithoutCancel(ctx), Unbanned{UserID: id})
	}
	return u, nil
}

// lapseBatch bounds the bans LapseBans ends in one call.
const lapseBatch = 500

// LapseBans ends the bans whose end has passed and tells the listeners
// ([Unbanned] with Lapsed). Logins do not wait for it (a lapsed ban no
// longer refuses anything); it keeps the rows and the listeners in step.
// Several instances may run it at once: each ban is ended, and told, once.
// It returns how many it ended.
func (s *EntStore) LapseBans(ctx context.Context) (int, error) {
	now := s.now()
	due := entuser.And(entuser.StatusEQ(entuser.StatusBanned), entuser.BannedUntilNotNil(), entuser.BannedUntilLTE(now))
	ids, err := s.client.User.Query().Where(due).Limit(lapseBatch).IDs(ctx)
	if err != nil {
		return 0, unavailable("find lapsed bans", err)
	}
	ended := 0
	for _, id := range ids {
		n, err := s.client.User.Update().Where(entuser.ID(id), due).
			SetStatus(entuser.StatusActive).ClearBannedUntil().ClearBanReason().SetUpdatedAt(now).
			Save(ctx)
		if err != nil {
			return ended, unavailable("end a lapsed ban", err)
		}
		if n == 1 {
			ended++
			s.emit(context.WithoutCancel(ctx), Unbanned{UserID: id, Lapsed: true})
		}
	}
	if ended > 0 {
		s.log.Info("lapsed bans ended", zap.Int("users", ended))
	}
	return ended, nil
}

// CheckActive tells whether the user may hold sessions now: nil, a
// *BannedError, or ErrNotFound (unknown, deleted, merged). The login calls
// it after issuing tokens, so that a ban or deletion committed while the
// login ran does not leave a session behind.
func (s *EntStore) CheckActive(ctx context.Context, id int) error {
	u, err := s.client.User.Query().Where(entuser.ID(id)).
		Select(entuser.FieldStatus, entuser.FieldBannedUntil).Only(ctx)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("read status", err)
	}
	if u.Status == entuser.StatusDeleted || u.Status == entuser.StatusMerged {
		return ErrNotFound
	}
	return refuseBanned(u, s.now())
}
