package collab

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/durableobjects/durable/internal/jsontext"
)

// clientMsg is a message from a client, checked.
type clientMsg struct {
	Type        string // "edit" or "ping"
	Content     string
	BaseVersion *int64
}

// parseMessage checks a client message strictly: one JSON object, field
// names exactly as api.md spells them (no unknown ones), each of its type;
// type "edit" needs content (at most MaxContent bytes) and may have
// base_version (an integer; null is the same as absent); type "ping" has
// no other field. The error says what is wrong, for the error message.
func parseMessage(data []byte) (clientMsg, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return clientMsg{}, errors.New("a message must be a JSON object")
		}
		return clientMsg{}, fmt.Errorf("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	// What encoding/json would have decoded as U+FFFD is malformed here.
	if err := jsontext.Check(data); err != nil {
		return clientMsg{}, fmt.Errorf("malformed JSON: %w", err)
	}
	if fields == nil {
		return clientMsg{}, errors.New("a message must be a JSON object")
	}
	var m clientMsg
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		switch name {
		case "type", "content", "base_version":
		default:
			return clientMsg{}, fmt.Errorf("unknown field %q", name)
		}
	}
	typ, ok := fields["type"]
	if !ok {
		return clientMsg{}, errors.New("field type is required")
	}
	if err := decodeString("type", typ, &m.Type); err != nil {
		return clientMsg{}, err
	}
	switch m.Type {
	case "edit":
	case "ping":
		if len(fields) > 1 {
			return clientMsg{}, errors.New("a ping has no other field than type")
		}
		return m, nil
	default:
		return clientMsg{}, fmt.Errorf("unknown message type %q (want \"edit\")", m.Type)
	}
	content, ok := fields["content"]
	if !ok {
		return clientMsg{}, errors.New("field content is required")
	}
	if err := decodeString("content", content, &m.Content); err != nil {
		return clientMsg{}, err
	}
	if len(m.Content) > MaxContent {
		return clientMsg{}, tooLarge(len(m.Content))
	}
	if raw, ok := fields["base_version"]; ok && string(raw) != "null" {
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil {
			return clientMsg{}, fmt.Errorf("field base_version must be an integer, got %s", describe(raw))
		}
		m.BaseVersion = &v
	}
	return m, nil
}

func decodeString(name string, raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("field %s must be a string, got %s", name, describe(raw))
	}
	return json.Unmarshal(raw, dst)
}

// describe names the JSON type of a value for an error message.
func describe(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	if len(raw) > 32 {
		return "the number " + string(raw[:32]) + "…"
	}
	return "the number " + string(raw)
}
