package pipeline

import "errors"

// ErrRedis wraps every failed Redis command, so callers can tell a broker
// outage (retried later; outbox rows stay unsent) from a bad message.
var ErrRedis = errors.New("pipeline: redis")

// ErrBadMessage means a stream entry lacks a field or holds a malformed one;
// it is dead-lettered at once, since redelivering it cannot help.
var ErrBadMessage = errors.New("pipeline: malformed message")

// ErrBadPayload means an outbox payload is not the JSON its topic expects.
var ErrBadPayload = errors.New("pipeline: malformed payload")

// ErrUnknownTopic means no handler is registered for a message's topic;
// register one in Handlers or stop writing that topic to the outbox.
var ErrUnknownTopic = errors.New("pipeline: unknown topic")

// ErrOrderNotFound means a message names an order that does not exist.
var ErrOrderNotFound = errors.New("pipeline: order not found")

// ErrBadConfig means a Config field is out of range; the message lists every
// problem.
var ErrBadConfig = errors.New("pipeline: bad configuration")

// ErrNotFound means a dead letter with the given id does not exist.
var ErrNotFound = errors.New("pipeline: dead letter not found")

// permanent marks errors that no retry can fix, so the message is
// dead-lettered on its first failure instead of after MaxDeliveries.
func permanent(err error) bool {
	return errors.Is(err, ErrBadMessage) || errors.Is(err, ErrBadPayload) ||
		errors.Is(err, ErrUnknownTopic) || errors.Is(err, ErrOrderNotFound)
}
