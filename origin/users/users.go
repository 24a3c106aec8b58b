package users

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/loginguard"
	"github.com/novashop/edge/origin/tokens"
)

// Sentinel errors of the accounts.
var (
	// ErrBadCredentials: unknown user or wrong password (deliberately one error).
	ErrBadCredentials = api.Errorf(api.ErrUnauthenticated, "invalid username or password")
	// ErrUsernameTaken: registration with an existing username.
	ErrUsernameTaken = api.Errorf(api.ErrConflict, "username: already taken")
	// ErrRefreshInvalid: the refresh token is bad, expired or revoked.
	ErrRefreshInvalid = api.Errorf(api.ErrUnauthenticated, "invalid or expired refresh token; log in again")
	// ErrRefreshReused: a rotated-out refresh token came back, so it was
	// stolen or replayed; every token of its family is now revoked.
	ErrRefreshReused = api.Errorf(api.ErrUnauthenticated, "refresh token reuse detected; all sessions of this login are revoked, log in again")
	// ErrUserNotFound: the token's user no longer exists.
	ErrUserNotFound = api.NotFound("user")
)

// User is an account's JSON (never with its password hash).
type User struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	City      string `json:"city"`
	Address   string `json:"address"`
	IsStaff   bool   `json:"is_staff"`
}

// Role is the token role of the user.
func (u User) Role() string {
	if u.IsStaff {
		return tokens.RoleStaff
	}
	return tokens.RoleShopper
}

// Me is the answer of GET /api/me/: the personal bits catalog pages fetch.
type Me struct {
	User      User `json:"user"`
	CartCount int  `json:"cart_count"`
}

// TokenPair is the answer of login and refresh.
type TokenPair struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// RegisterInput is the body of POST /api/register/.
type RegisterInput struct {
	Username  string `json:"username"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	City      string `json:"city"`
	Address   string `json:"address"`
}

// Service runs the accounts. It is safe for concurrent use.
type Service struct {
	Pool *pgxpool.Pool
	Keys *tokens.Keys
	// Logins throttles failed logins per username; nil means none. Set it
	// before the Service is shared.
	Logins *loginguard.Guard
	cost   int
	// dummy is compared against when the username is unknown.
	dummy []byte
}

// NewService makes a Service; cost is the bcrypt cost (0: bcrypt.DefaultCost).
func NewService(pool *pgxpool.Pool, keys *tokens.Keys, cost int) (*Service, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("novashop-dummy-password"), cost)
	if err != nil {
		return nil, fmt.Errorf("users: bcrypt cost %d: %w", cost, err)
	}
	return &Service{Pool: pool, Keys: keys, cost: cost, dummy: dummy}, nil
}

// ForEnv makes the Service every route of one server shares the settings
// of: the API and the storefront both build theirs here, so accounts get
// the same bcrypt cost and failed logins count against one throttle.
func ForEnv(env *api.Env) (*Service, error) {
	s, err := NewService(env.Pool, env.Keys, env.BcryptCost)
	if err != nil {
		return nil, err
	}
	s.Logins = env.Logins
	return s, nil
}

// Cost is the bcrypt cost new passwords are hashed with.
func (s *Service) Cost() int { return s.cost }

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 150 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@.+-_", c) >= 0) {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>\"(),;:\\[]") || !utf8.ValidString(s) {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

func checkField(field, v string, max int) error {
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return api.Invalid(field, "must be valid UTF-8 text")
	}
	if utf8.RuneCountInString(v) > max {
		return api.Invalid(field, fmt.Sprintf("must be at most %d characters", max))
	}
	return nil
}

// Validate reports the first invalid field.
func (in *RegisterInput) Validate() error {
	if !validUsername(in.Username) {
		return api.Invalid("username", "3 to 150 characters: letters, digits and @.+-_")
	}
	if !validEmail(in.Email) {
		return api.Invalid("email", "must be an email address")
	}
	if len(in.Password) < 8 {
		return api.Invalid("password", "must be at least 8 characters")
	}
	if len(in.Password) > 72 {
		// bcrypt reads at most 72 bytes; longer would silently be truncated.
		return api.Invalid("password", "must be at most 72 bytes")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"first_name", in.FirstName, 150}, {"last_name", in.LastName, 150}, {"city", in.City, 150}, {"address", in.Address, 500}} {
		if err := checkField(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	return nil
}

// Register creates a shopper account.
func (s *Service) Register(ctx context.Context, in RegisterInput) (User, error) {
	if err := in.Validate(); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cost)
	if err != nil {
		return User{}, fmt.Errorf("users: hash: %w", err)
	}
	u := User{Username: in.Username, Email: in.Email, FirstName: in.FirstName, LastName: in.LastName, City: in.City, Address: in.Address}
	err = s.Pool.QueryRow(ctx, `INSERT INTO users (username, email, password_hash, first_name, last_name, city, address)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		u.Username, u.Email, string(hash), u.FirstName, u.LastName, u.City, u.Address).Scan(&u.ID)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return User{}, ErrUsernameTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("users: register: %w", err)
	}
	return u, nil
}

// Login checks the password and issues a token pair. A username with too
// many recent failures is refused (429) before any password is compared,
// so a guesser learns nothing while it is throttled, and spends no bcrypt
// time of ours either.
func (s *Service) Login(ctx context.Context, username, password string) (TokenPair, error) {
	if wait, ok := s.Logins.Allow(username); !ok {
		return TokenPair{}, api.TooMany(wait, "too many failed logins for this username; try again later")
	}
	pair, err := s.login(ctx, username, password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		s.Logins.Fail(username)
	case err == nil:
		s.Logins.Succeed(username)
	}
	return pair, err
}

func (s *Service) login(ctx context.Context, username, password string) (TokenPair, error) {
	var id int64
	var hash string
	var staff bool
	err := s.Pool.QueryRow(ctx, `SELECT id, password_hash, is_staff FROM users WHERE username = $1`, username).
		Scan(&id, &hash, &staff)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return TokenPair{}, ErrBadCredentials
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: login: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return TokenPair{}, ErrBadCredentials
	}
	role := tokens.RoleShopper
	if staff {
		role = tokens.RoleStaff
	}
	return s.issue(ctx, s.Pool, id, role, newID())
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Service) issue(ctx context.Context, db execer, userID int64, role, family string) (TokenPair, error) {
	access, err := s.Keys.IssueAccess(userID, role)
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: sign: %w", err)
	}
	jti := newID()
	refresh, exp, err := s.Keys.IssueRefresh(userID, jti)
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: sign: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES ($1, $2, $3, $4)`,
		jti, family, userID, exp); err != nil {
		return TokenPair{}, fmt.Errorf("users: store refresh token: %w", err)
	}
	return TokenPair{Access: access, Refresh: refresh}, nil
}

// Refresh rotates a refresh token: the old one is revoked and a new pair
// issued. A revoked token presented again revokes its whole family.
func (s *Service) Refresh(ctx context.Context, refresh string) (TokenPair, error) {
	rc, err := s.Keys.VerifyRefresh(refresh)
	if err != nil {
		return TokenPair{}, ErrRefreshInvalid
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var family string
	var revoked bool
	err = tx.QueryRow(ctx, `SELECT family, revoked_at IS NOT NULL OR expires_at <= now()
		FROM refresh_tokens WHERE jti = $1 AND user_id = $2 FOR UPDATE`, rc.JTI, rc.UserID).Scan(&family, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return TokenPair{}, ErrRefreshInvalid
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
	}
	if revoked {
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL`, family); err != nil {
			return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
		}
		return TokenPair{}, ErrRefreshReused
	}
	var staff bool
	err = tx.QueryRow(ctx, `SELECT is_staff FROM users WHERE id = $1`, rc.UserID).Scan(&staff)
	if errors.Is(err, pgx.ErrNoRows) {
		return TokenPair{}, ErrRefreshInvalid
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
	}
	role := tokens.RoleShopper
	if staff {
		role = tokens.RoleStaff
	}
	pair, err := s.issue(ctx, tx, rc.UserID, role, family)
	if err != nil {
		return TokenPair{}, err
	}
	newRC, _ := s.Keys.VerifyRefresh(pair.Refresh)
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE jti = $1`,
		rc.JTI, newRC.JTI); err != nil {
		return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return TokenPair{}, fmt.Errorf("users: refresh: %w", err)
	}
	return pair, nil
}

// Get reads a user.
func (s *Service) Get(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.Pool.QueryRow(ctx, `SELECT id, username, email, first_name, last_name, city, address, is_staff
		FROM users WHERE id = $1`, id).Scan(&u.ID, &u.Username, &u.Email, &u.FirstName, &u.LastName, &u.City, &u.Address, &u.IsStaff)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrUserNotFound
	}
	if err != nil {
		return u, fmt.Errorf("users: get: %w", err)
	}
	return u, nil
}

// Me reads the user and the number of items in their cart.
func (s *Service) Me(ctx context.Context, id int64) (Me, error) {
	u, err := s.Get(ctx, id)
	if err != nil {
		return Me{}, err
	}
	m := Me{User: u}
	err = s.Pool.QueryRow(ctx, `SELECT coalesce(sum(ci.quantity), 0)::int FROM carts c
		JOIN cart_items ci ON ci.cart_id = c.id WHERE c.user_id = $1`, id).Scan(&m.CartCount)
	if err != nil {
		return Me{}, fmt.Errorf("users: me: %w", err)
	}
	return m, nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
