package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseEntry(t *testing.T) {
	good := map[string]string{FieldOutboxID: "42", FieldTopic: TopicOrderCreated, FieldPayload: `{"order_id": 7}`}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		fields  map[string]string
		wantErr string
	}{
		{"valid", good, ""},
		{"no outbox id", with(FieldOutboxID, "\x00delete"), "no outbox_id field"},
		{"outbox id not a number", with(FieldOutboxID, "abc"), "not a positive integer"},
		{"outbox id zero", with(FieldOutboxID, "0"), "not a positive integer"},
		{"outbox id negative", with(FieldOutboxID, "-3"), "not a positive integer"},
		{"outbox id overflow", with(FieldOutboxID, "99999999999999999999"), "not a positive integer"},
		{"no topic", with(FieldTopic, "\x00delete"), "no topic"},
		{"empty topic", with(FieldTopic, ""), "no topic"},
		{"long topic", with(FieldTopic, strings.Repeat("t", 201)), "short UTF-8"},
		{"bad utf-8 topic", with(FieldTopic, "\xff"), "short UTF-8"},
		{"no payload", with(FieldPayload, "\x00delete"), "no payload field"},
		{"payload not JSON", with(FieldPayload, "{"), "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseEntry("1-0", tt.fields)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if m.OutboxID != 42 || m.Topic != TopicOrderCreated || string(m.Payload) != `{"order_id": 7}` || m.StreamID != "1-0" {
					t.Fatalf("parsed %+v", m)
				}
				return
			}
			if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrBadMessage containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestFieldsRoundTrip: what the relay writes, the consumer reads back.
func TestFieldsRoundTrip(t *testing.T) {
	in := Message{StreamID: "5-1", OutboxID: 9, Topic: TopicOrderCreated, Payload: []byte(`{"order_id":3}`)}
	f := in.Fields()
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	out, err := ParseEntry(in.StreamID, m)
	if err != nil {
		t.Fatal(err)
	}
	if out.OutboxID != in.OutboxID || out.Topic != in.Topic || string(out.Payload) != string(in.Payload) {
		t.Fatalf("round trip: %+v -> %+v", in, out)
	}
}

func TestParseOrderCreated(t *testing.T) {
	tests := []struct {
		payload string
		want    int64
		wantErr string
	}{
		{`{"order_id": 12}`, 12, ""},
		{`{"order_id": 12, "user_id": 3, "total": "9.99"}`, 12, ""},
		{`{"order_id": "12"}`, 12, ""},
		{`{"order_id": 9223372036854775807}`, 9223372036854775807, ""},
		{`{}`, 0, "no order_id"},
		{`{"order_id": null}`, 0, "not positive"},
		{`{"order_id": 0}`, 0, "not positive"},
		{`{"order_id": -1}`, 0, "not positive"},
		{`{"order_id": 1.5}`, 0, "not an integer"},
		{`{"order_id": "x"}`, 0, "not an integer"},
		{`{"order_id": true}`, 0, "not an integer"},
		{`{"order_id": 99999999999999999999}`, 0, "not an integer"},
		{`[]`, 0, "order.created"},
		{`"12"`, 0, "order.created"},
		{``, 0, "order.created"},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			got, err := ParseOrderCreated([]byte(tt.payload))
			if tt.wantErr == "" {
				if err != nil || got.OrderID != tt.want {
					t.Fatalf("= %+v, %v; want %d", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrBadPayload containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add("42", TopicOrderCreated, `{"order_id": 7}`)
	f.Add("0", "", "")
	f.Add("-1", "x", "{")
	f.Add("9223372036854775808", "\xff", "null")
	f.Fuzz(func(t *testing.T, id, topic, payload string) {
		m, err := ParseEntry("1-0", map[string]string{FieldOutboxID: id, FieldTopic: topic, FieldPayload: payload})
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		if m.OutboxID <= 0 || m.Topic == "" || len(m.Topic) > maxTopicLen {
			t.Fatalf("accepted %+v", m)
		}
		// What parses must survive the relay's encoding unchanged.
		f := m.Fields()
		back, err := ParseEntry("1-0", map[string]string{f[0]: f[1], f[2]: f[3], f[4]: f[5]})
		if err != nil || back.OutboxID != m.OutboxID || back.Topic != m.Topic || string(back.Payload) != string(m.Payload) {
			t.Fatalf("round trip %+v -> %+v, %v", m, back, err)
		}
	})
}

func FuzzParseOrderCreated(f *testing.F) {
	for _, s := range []string{`{"order_id": 12}`, `{"order_id": "12"}`, `{}`, `{"order_id": -1}`, `[`, `{"order_id": 1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := ParseOrderCreated(payload)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error %v is not ErrBadPayload", err)
			}
			return
		}
		if got.OrderID <= 0 {
			t.Fatalf("accepted order id %d", got.OrderID)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{"zero value uses defaults", Config{}, nil},
		{"same streams", Config{Stream: "s", DeadLetterStream: "s"}, []string{"must differ"}},
		{"every problem at once", Config{BatchSize: -1, MaxDeliveries: 5000, ClaimTimeout: time.Nanosecond, Consumer: "a b"},
			[]string{"batch size -1", "max deliveries 5000", "claim timeout 1ns", "must not contain spaces"}},
		{"block too long", Config{Block: time.Hour}, []string{"block 1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error %v, want ErrBadConfig", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	c := Config{}.withDefaults()
	if c.Stream != DefaultStream || c.MaxDeliveries != DefaultMaxDeliveries || c.Consumer == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func BenchmarkParseEntry(b *testing.B) {
	fields := map[string]string{FieldOutboxID: "123456", FieldTopic: TopicOrderCreated,
		FieldPayload: `{"order_id": 98765, "user_id": 12, "total": "129.99", "items": [{"product_id": 1, "quantity": 2, "price": "64.99"}]}`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEntry("1700000000000-0", fields); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOrderCreated(b *testing.B) {
	payload := []byte(`{"order_id": 98765, "user_id": 12, "total": "129.99", "items": [{"product_id": 1, "quantity": 2, "price": "64.99"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseOrderCreated(payload); err != nil {
			b.Fatal(err)
		}
	}
}
