// Package docs holds the project's reference documentation (Markdown) and,
// in docs_test.go, the tests that keep it in step with the code.
package docs
