// Package money converts shop prices between their decimal text ("129.99",
// as in the JSON API and numeric(10,2) columns) and integer cents, so no
// price ever passes through a float. It must never round: input with more
// than two decimals is rejected.
package money
