package notifications

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Kinds of parse failure; a *ParseError unwraps to exactly one of them.
var (
	ErrMalformed    = errors.New("malformed notification")
	ErrUnknownType  = errors.New("unknown notification type")
	ErrMissingField = errors.New("missing field")
	ErrBadTime      = errors.New("bad time")
)

// Details. Their texts are constants on purpose: a new-secret body carries a plaintext secret,
// so nothing derived from the input (not even encoding/json's error text, which quotes
// characters) may reach an error string.
var (
	errNotJSON       = errors.New("not valid JSON")
	errNotUTF8       = errors.New("not valid UTF-8")
	errNotObject     = errors.New("not a JSON object")
	errNotString     = errors.New("not a JSON string")
	errDuplicateKey  = errors.New("duplicate key")
	errAbsent        = errors.New("absent or null")
	errEmpty         = errors.New("empty string")
	errNotRFC3339    = errors.New("not an RFC 3339 time")
	errWantKnownType = errors.New("want " + TypeExpiry + " or " + TypeNewSecret)
	errSNSNotMessage = errors.New("an SNS message that is not a Notification")
)

// ParseError says which field of a notification was wrong and how. Field is a dotted JSON path
// ("payload.applicationOAuthClientNewSecret.clientId"), empty for the body as a whole. Neither
// Field nor Err ever quotes the input.
type ParseError struct {
	Kind  error
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	msg := "parsing notification: " + e.Kind.Error()
	if e.Field != "" {
		msg += " at " + e.Field
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the kind, so callers branch with errors.Is(err, ErrMissingField).
func (e *ParseError) Unwrap() error { return e.Kind }

const (
	keyExpiry    = "applicationOAuthClientSecretExpiry"
	keyNewSecret = "applicationOAuthClientNewSecret"
)

// Parse validates an SQS message body and returns *ExpiryNotice or *NewSecret. The body is the
// notification itself (SQS, or SNS with raw message delivery) or an SNS envelope whose Message
// holds it. Unknown keys are allowed (Amazon may add fields without a version bump), and so are
// other versions, recorded in the Envelope; duplicate keys, case-variant keys standing in for
// required ones, wrong JSON types, missing or empty required values and non-RFC 3339 times are
// refused. Any error is a *ParseError.
func Parse(body []byte) (Notification, error) {
	p := &parser{}
	top := p.root(body)
	viaSNS := false
	if inner, ok := p.snsMessage(top); ok {
		top, viaSNS = p.root([]byte(inner)), true
		top.path = "Message"
	}
	env := Envelope{ViaSNS: viaSNS,
		NotificationVersion: p.str(top, "notificationVersion", false),
		PayloadVersion:      p.str(top, "payloadVersion", false)}
	typ := p.str(top, "notificationType", true)
	if p.err == nil && typ != TypeExpiry && typ != TypeNewSecret {
		p.fail(ErrUnknownType, top.at("notificationType"), errWantKnownType)
	}
	env.Type, env.EventTime = typ, p.time(top, "eventTime")
	meta := p.object(top, "notificationMetadata")
	env.Metadata = Metadata{
		ApplicationID:  p.str(meta, "applicationId", true),
		SubscriptionID: p.str(meta, "subscriptionId", true),
		NotificationID: p.str(meta, "notificationId", true),
		PublishTime:    p.time(meta, "publishTime"),
	}
	payload := p.object(top, "payload")
	var n Notification
	if typ == TypeExpiry {
		body := p.object(payload, keyExpiry)
		n = &ExpiryNotice{
			Envelope:  env,
			ClientID:  p.str(body, "clientId", true),
			ExpiresAt: p.time(body, "clientSecretExpiryTime"),
			Reason:    p.str(body, "clientSecretExpiryReason", false),
		}
	} else {
		body := p.object(payload, keyNewSecret)
		n = &NewSecret{
			Envelope:     env,
			ClientID:     p.str(body, "clientId", true),
			Secret:       secret.New(p.str(body, "newClientSecret", true)),
			ExpiresAt:    p.time(body, "newClientSecretExpiryTime"),
			OldExpiresAt: p.time(body, "oldClientSecretExpiryTime"),
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return n, nil
}

// ClientIDOf digs the clientId out of a body that may not parse, so an unparseable message can
// still be routed or logged against its application. It returns "" when there is none.
func ClientIDOf(body []byte) string {
	top, err := decodeObject(body)
	if err != nil {
		return ""
	}
	var inner string
	if _, sns := top["Type"]; sns && json.Unmarshal(top["Message"], &inner) == nil {
		if top, err = decodeObject([]byte(inner)); err != nil {
			return ""
		}
	}
	payload, err := decodeObject(top["payload"])
	if err != nil {
		return ""
	}
	for _, key := range []string{keyExpiry, keyNewSecret} {
		inner, err := decodeObject(payload[key])
		if err != nil {
			continue
		}
		var id string
		if json.Unmarshal(inner["clientId"], &id) == nil && id != "" {
			return id
		}
	}
	return ""
}

// parser keeps the first failure and turns every later step into a no-op, so Parse reads as a
// straight list of fields.
type parser struct{ err *ParseError }

type object struct {
	path string
	m    map[string]json.RawMessage
}

func (o object) at(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (p *parser) fail(kind error, field string, detail error) {
	if p.err == nil {
		p.err = &ParseError{Kind: kind, Field: field, Err: detail}
	}
}

func (p *parser) root(body []byte) object {
	if !utf8.Valid(body) {
		// encoding/json would silently turn bad bytes into U+FFFD, storing a secret that differs
		// from the one Amazon sent.
		p.fail(ErrMalformed, "", errNotUTF8)
		return object{}
	}
	m, err := decodeObject(body)
	if err != nil {
		p.fail(ErrMalformed, "", err)
	}
	return object{m: m}
}

func (p *parser) object(parent object, key string) object {
	raw := p.raw(parent, key)
	if p.err != nil {
		return object{}
	}
	m, err := decodeObject(raw)
	if err != nil {
		p.fail(ErrMalformed, parent.at(key), err)
	}
	return object{path: parent.at(key), m: m}
}

// raw returns the value of key, failing with ErrMissingField when it is absent or null.
func (p *parser) raw(o object, key string) json.RawMessage {
	if p.err != nil {
		return nil
	}
	raw, ok := o.m[key]
	if !ok || bytes.Equal(raw, []byte("null")) {
		p.fail(ErrMissingField, o.at(key), errAbsent)
		return nil
	}
	return raw
}

func (p *parser) str(o object, key string, required bool) string {
	if p.err != nil {
		return ""
	}
	if _, ok := o.m[key]; !ok && !required {
		return ""
	}
	raw := p.raw(o, key)
	if p.err != nil {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.fail(ErrMalformed, o.at(key), errNotString)
		return ""
	}
	if s == "" && required {
		p.fail(ErrMissingField, o.at(key), errEmpty)
	}
	return s
}

// snsMessage recognises an SNS envelope (its "Type" and "Message" keys; a notification has
// neither) and returns the Message it carries. Only a Notification carries one: a subscription
// confirmation, say, is refused.
func (p *parser) snsMessage(top object) (string, bool) {
	if p.err != nil {
		return "", false
	}
	if _, ok := top.m["Type"]; !ok {
		return "", false
	}
	if _, ok := top.m["Message"]; !ok {
		return "", false
	}
	if t := p.str(top, "Type", true); p.err == nil && t != "Notification" {
		p.fail(ErrMalformed, top.at("Type"), errSNSNotMessage)
	}
	msg := p.str(top, "Message", true)
	if p.err == nil && strings.ContainsRune(msg, utf8.RuneError) {
		// An escape that is no character (a lone surrogate) decodes to U+FFFD: the secret inside
		// would differ from the one Amazon sent.
		p.fail(ErrMalformed, top.at("Message"), errNotUTF8)
	}
	return msg, p.err == nil
}

func (p *parser) time(o object, key string) time.Time {
	s := p.str(o, key, true)
	if p.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		// time's error quotes the input; the constant detail does not.
		p.fail(ErrBadTime, o.at(key), errNotRFC3339)
	}
	return t
}

// decodeObject reads exactly one JSON object and refuses duplicate keys: with two
// "newClientSecret" keys, which one counts would depend on the parser, and this message can
// plant a secret.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, errNotJSON
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errNotJSON
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errNotJSON
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errNotJSON
		}
		if _, dup := m[key]; dup {
			return nil, errDuplicateKey
		}
		m[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotJSON
	}
	return m, nil
}
