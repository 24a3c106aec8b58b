package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Stream entry field names. The outbox id travels with every entry so a
// duplicate (the relay re-sending a row whose XADD result it did not
// record) is recognised by the consumer.
const (
	FieldOutboxID = "outbox_id"
	FieldTopic    = "topic"
	FieldPayload  = "payload"
)

// TopicOrderCreated is the outbox topic checkout writes in the order's
// transaction; its payload carries the order id.
const TopicOrderCreated = "order.created"

// maxTopicLen bounds the topic so a corrupt entry cannot flood logs and the
// dead-letter table.
const maxTopicLen = 200

// Message is one stream entry: an outbox row as the relay sent it.
type Message struct {
	// StreamID is the Redis Stream entry id ("1700000000000-0").
	StreamID string
	// OutboxID is outbox.id, the idempotency key.
	OutboxID int64
	// Topic is outbox.topic.
	Topic string
	// Payload is outbox.payload, JSON.
	Payload []byte
}

// Fields returns the entry's fields as XADD takes them.
func (m Message) Fields() []string {
	return []string{
		FieldOutboxID, strconv.FormatInt(m.OutboxID, 10),
		FieldTopic, m.Topic,
		FieldPayload, string(m.Payload),
	}
}

// ParseEntry turns a stream entry into a Message. Every problem is an
// ErrBadMessage: such an entry can never be processed, whoever reads it.
func ParseEntry(id string, fields map[string]string) (Message, error) {
	m := Message{StreamID: id}
	raw, ok := fields[FieldOutboxID]
	if !ok {
		return m, fmt.Errorf("%w: entry %s has no %s field", ErrBadMessage, id, FieldOutboxID)
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n <= 0 {
		return m, fmt.Errorf("%w: entry %s: %s %q is not a positive integer", ErrBadMessage, id, FieldOutboxID, clip(raw))
	}
	m.OutboxID = n
	topic, ok := fields[FieldTopic]
	if !ok || topic == "" {
		return m, fmt.Errorf("%w: entry %s has no %s", ErrBadMessage, id, FieldTopic)
	}
	if len(topic) > maxTopicLen || !utf8.ValidString(topic) {
		return m, fmt.Errorf("%w: entry %s: topic %q is not a short UTF-8 name", ErrBadMessage, id, clip(topic))
	}
	m.Topic = topic
	payload, ok := fields[FieldPayload]
	if !ok {
		return m, fmt.Errorf("%w: entry %s has no %s field", ErrBadMessage, id, FieldPayload)
	}
	if !json.Valid([]byte(payload)) {
		return m, fmt.Errorf("%w: entry %s: payload is not JSON", ErrBadMessage, id)
	}
	m.Payload = []byte(payload)
	return m, nil
}

// OrderCreated is the payload of TopicOrderCreated. Only the order id is
// needed: the worker reads everything else from the database, which is
// authoritative, rather than trusting a copy in the message.
type OrderCreated struct {
	OrderID int64 `json:"order_id"`
}

// ParseOrderCreated decodes and checks an order.created payload.
func ParseOrderCreated(payload []byte) (OrderCreated, error) {
	var raw struct {
		OrderID json.RawMessage `json:"order_id"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return OrderCreated{}, fmt.Errorf("%w: order.created: %v", ErrBadPayload, err)
	}
	if len(raw.OrderID) == 0 {
		return OrderCreated{}, fmt.Errorf("%w: order.created: no order_id", ErrBadPayload)
	}
	var id int64
	if err := json.Unmarshal(raw.OrderID, &id); err != nil {
		// Some writers encode 64-bit ids as strings to survive JavaScript.
		var s string
		if json.Unmarshal(raw.OrderID, &s) != nil {
			return OrderCreated{}, fmt.Errorf("%w: order.created: order_id %s is not an integer", ErrBadPayload, clip(string(raw.OrderID)))
		}
		if id, err = strconv.ParseInt(s, 10, 64); err != nil {
			return OrderCreated{}, fmt.Errorf("%w: order.created: order_id %q is not an integer", ErrBadPayload, clip(s))
		}
	}
	if id <= 0 {
		return OrderCreated{}, fmt.Errorf("%w: order.created: order_id %d is not positive", ErrBadPayload, id)
	}
	return OrderCreated{OrderID: id}, nil
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
