package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/novashop/edge/proxy/auth"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// The edge reads the token from the request, verifies it, and maps the
// errors to answers in one place.
func Example() {
	secret := []byte("an-example-secret-of-32-bytes-or-more")
	v, err := auth.NewVerifier(auth.Config{Secret: secret}, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	now := time.Now()
	access, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "42", "role": "staff", "iss": "novashop", "aud": "novashop-api",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}).SignedString(secret)

	var req fasthttp.Request
	req.Header.Set("Authorization", "Bearer "+access)
	id, err := v.Verify(auth.TokenFromRequest(&req, "novashop_access"), now)
	switch {
	case errors.Is(err, auth.ErrNoToken), errors.Is(err, auth.ErrInvalidToken):
		fmt.Println("401")
	case err != nil:
		fmt.Println("503")
	default:
		fmt.Println(id.UserID, id.Role, id.IsStaff())
	}

	req.Header.Del("Authorization")
	_, err = v.Verify(auth.TokenFromRequest(&req, "novashop_access"), now)
	fmt.Println(err)
	// Output:
	// 42 staff true
	// auth: no bearer token
}
