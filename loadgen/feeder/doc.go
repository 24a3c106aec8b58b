// Package feeder supplies the values a campaign's requests are filled with:
// integer ranges for the seeded catalog's ids, lists (orderings, search
// words), the seeded users user1..userN, and pools that requests fill from
// their answers (catalog cursors).
//
// Every Feeder is safe for concurrent use, as vegeta calls its targeter from
// many workers. Randomness comes from a seeded source so a campaign draws the
// same sequence on every run. A feeder must never block or do I/O.
package feeder
