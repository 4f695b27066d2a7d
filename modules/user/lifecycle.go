package user

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	entunionlink "github.com/wxlogin/wxlogin/ent/unionlink"
	entuser "github.com/wxlogin/wxlogin/ent/user"
)

// MergeHook moves a business module's own rows from user from to user
// into. It runs inside the merge's transaction (use tx for every statement,
// e.g. tx.ExecContext for tables ent does not know); returning an error
// aborts the whole merge and nothing of it is kept.
type MergeHook func(ctx context.Context, tx *ent.Tx, from, into int) error

// DeleteHook erases a business module's own rows of a user being deleted.
// It runs inside the deletion's transaction, before wxlogin erases its own
// rows (so the user's identities and profile can still be read through tx);
// returning an error aborts the whole deletion ([ErrDeleteAborted]) and
// nothing of it is kept.
type DeleteHook func(ctx context.Context, tx *ent.Tx, userID int) error

// Group names of the value groups this package collects.
const (
	MergeHooksGroup  = "user.merge_hooks"
	DeleteHooksGroup = "user.delete_hooks"
	ListenersGroup   = "user.listeners"
)

// AsMergeHook joins a merge hook to the "user.merge_hooks" value group:
// pass the hook itself,
//
//	fx.Provide(user.AsMergeHook(func(ctx context.Context, tx *ent.Tx, from, into int) error { … }))
//
// or a constructor returning one, whose parameters fx fills:
//
//	fx.Provide(user.AsMergeHook(func(s *OrderStore) user.MergeHook { return s.MoveOrders }))
func AsMergeHook(hookOrConstructor any) any {
	return asGroupMember(hookOrConstructor, reflect.TypeOf(MergeHook(nil)), MergeHooksGroup)
}

// AsDeleteHook joins a delete hook to the "user.delete_hooks" value group:
// pass the hook itself or a constructor returning one (see [AsMergeHook]).
//
//	fx.Provide(user.AsDeleteHook(func(ctx context.Context, tx *ent.Tx, userID int) error { … }))
func AsDeleteHook(hookOrConstructor any) any {
	return asGroupMember(hookOrConstructor, reflect.TypeOf(DeleteHook(nil)), DeleteHooksGroup)
}

// Event is something that happened to a user, told to listeners after it
// was committed: [Registered], [LoggedIn], [Merged], [Banned], [Unbanned],
// [Deleted], [ProfileCleared], [IdentityRemoved].
type Event interface{ event() }

// Registered: a first login created the user.
type Registered struct {
	UserID   int
	Identity IdentityKey
}

// LoggedIn: the user logged in (first logins included).
type LoggedIn struct {
	UserID   int
	Identity IdentityKey
}

// Merged: user From was found to be the same person as user Into and was
// absorbed by it; From's identities are Into's now and From no longer
// exists (its row is a tombstone with status "merged").
type Merged struct {
	From, Into int
}

// Banned: an operator banned the user, until Until when it is set (the
// ban then lapses by itself). Sent again when a ban is changed.
type Banned struct {
	UserID int
	Until  *time.Time
}

// Unbanned: the user's ban ended, lifted by an operator or (Lapsed) because
// its end passed.
type Unbanned struct {
	UserID int
	Lapsed bool
}

// Deleted: the user was deleted and their personal data erased; the row
// left is a tombstone (id and status "deleted"). Cause says who asked:
// [CauseUser], [CauseOperator] or [CausePlatform].
type Deleted struct {
	UserID int
	Cause  string
}

// ProfileCleared: fields of the user's profile were erased because the
// person withdrew them on the platform or the platform cleaned a risky
// profile up. Fields may be empty: the person withdrew something wxlogin
// does not keep (an address, the location, …), which RevokeInfo names with
// the platform's codes (WeChat's RevokeInfo) — erase yours.
type ProfileCleared struct {
	UserID     int
	Fields     []Field
	Cause      string
	RevokeInfo []int
}

// IdentityRemoved: one identity of a user who keeps others was erased (the
// person cancelled that platform account). Its sessions end.
type IdentityRemoved struct {
	UserID   int
	Identity IdentityKey
	Cause    string
}

func (Registered) event()      {}
func (LoggedIn) event()        {}
func (Merged) event()          {}
func (Banned) event()          {}
func (Unbanned) event()        {}
func (Deleted) event()         {}
func (ProfileCleared) event()  {}
func (IdentityRemoved) event() {}

// Listener hears about users after each commit. It cannot fail the
// operation that caused the event: a panic is recovered and logged. Keep it
// fast (it runs before the request is answered) and hand slow work off.
type Listener func(ctx context.Context, e Event)

// AsListener joins a listener to the "user.listeners" value group: pass the
// listener itself or a constructor returning one (see [AsMergeHook]).
func AsListener(listenerOrConstructor any) any {
	return asGroupMember(listenerOrConstructor, reflect.TypeOf(Listener(nil)), ListenersGroup)
}

// asGroupMember returns an fx constructor that puts v (a value of type want,
// or a function of the same shape) or the result of v (a constructor
// returning want) into group.
func asGroupMember(v any, want reflect.Type, group string) any {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Func {
		panic(fmt.Sprintf("user: %s takes a function, not %T", group, v))
	}
	tag := fx.ResultTags(`group:"` + group + `"`)
	if t.ConvertibleTo(want) {
		value := reflect.ValueOf(v).Convert(want)
		ctor := reflect.MakeFunc(reflect.FuncOf(nil, []reflect.Type{want}, false),
			func([]reflect.Value) []reflect.Value { return []reflect.Value{value} })
		return fx.Annotate(ctor.Interface(), tag)
	}
	if !returns(t, want) {
		panic(fmt.Sprintf("user: %s takes a %s or a constructor returning one, not %s", group, want, t))
	}
	return fx.Annotate(v, tag)
}

// returns reports whether t is a constructor whose first result is want.
func returns(t, want reflect.Type) bool {
	return t.NumOut() >= 1 && t.Out(0) == want
}

// ErrMergeAborted wraps the failure of a merge hook: the merge, and the
// login or link that needed it, did not happen.
var ErrMergeAborted = errors.New("user: merge aborted")

// mergeTx absorbs user from into user into, in tx: identities and unionid
// links move, the survivor's empty profile fields take the absorbed
// user's values, the merge hooks run, and from becomes a tombstone.
func (s *EntStore) mergeTx(ctx context.Context, tx *ent.Tx, from, into *ent.User) error {
	c := tx.Client()
	now := s.now()
	if _, err := c.Identity.Update().Where(entidentity.UserID(from.ID)).SetUserID(into.ID).Save(ctx); err != nil {
		return unavailable("merge identities", err)
	}
	if _, err := c.UnionLink.Update().Where(entunionlink.UserID(from.ID)).SetUserID(into.ID).Save(ctx); err != nil {
		return unavailable("merge unionid links", err)
	}
	fill := c.User.UpdateOneID(into.ID).SetUpdatedAt(now)
	if into.Nickname == "" && from.Nickname != "" {
		fill.SetNickname(from.Nickname)
	}
	if into.AvatarURL == "" && from.AvatarURL != "" {
		fill.SetAvatarURL(from.AvatarURL)
	}
	if into.Phone == nil && from.Phone != nil {
		fill.SetPhone(*from.Phone)
		if from.PhoneCountryCode != nil {
			fill.SetPhoneCountryCode(*from.PhoneCountryCode)
		} else {
			fill.ClearPhoneCountryCode()
		}
	}
	// A ban follows the person: the survivor keeps the stricter of the two.
	if inheritBan(from, into, now) {
		fill.SetStatus(entuser.StatusBanned).SetNillableBannedUntil(from.BannedUntil).SetBanReason(from.BanReason)
		if from.BannedUntil == nil {
			fill.ClearBannedUntil()
		}
	}
	if err := fill.Exec(ctx); err != nil {
		return unavailable("merge profile", err)
	}
	// A bulk update: the tombstone's avatar may now be the survivor's, so
	// no per-row hook may treat its change as a file to delete.
	err := c.User.Update().Where(entuser.ID(from.ID)).
		SetStatus(entuser.StatusMerged).SetMergedInto(into.ID).
		SetNickname("").SetAvatarURL("").ClearPhone().ClearPhoneCountryCode().
		ClearBannedUntil().ClearBanReason().
		SetUpdatedAt(now).Exec(ctx)
	if err != nil {
		return unavailable("merge", err)
	}
	// Earlier tombstones of from now point at the survivor.
	if err := c.User.Update().Where(entuser.MergedInto(from.ID)).SetMergedInto(into.ID).Exec(ctx); err != nil {
		return unavailable("merge", err)
	}
	for _, h := range s.hooks {
		if err := h(ctx, tx, from.ID, into.ID); err != nil {
			return fmt.Errorf("%w: a merge hook failed (user %d into %d): %w", ErrMergeAborted, from.ID, into.ID, err)
		}
	}
	s.log.Info("users merged: one person, the older user survives", zap.Int("from_user_id", from.ID), zap.Int("into_user_id", into.ID))
	return nil
}

// notify tells the listeners what a committed login (or, login false, a
// unionid link) did.
func (s *EntStore) notify(ctx context.Context, res *LoginResult, login bool) {
	if len(s.listeners) == 0 || res == nil || res.User == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if res.Merged != nil {
		s.emit(ctx, *res.Merged)
	}
	if !login || res.Identity == nil {
		return
	}
	key := KeyOf(res.Identity)
	if res.Created {
		s.emit(ctx, Registered{UserID: res.User.ID, Identity: key})
	}
	s.emit(ctx, LoggedIn{UserID: res.User.ID, Identity: key})
}

func (s *EntStore) emit(ctx context.Context, e Event) {
	for _, l := range s.listeners {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("a user listener panicked; the operation stands", zap.Any("panic", r), zap.String("event", fmt.Sprintf("%T", e)))
				}
			}()
			l(ctx, e)
		}()
	}
}
