package spapisim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Deliverer puts a notification body on an SQS queue.
type Deliverer interface {
	Deliver(ctx context.Context, queueURL, body string) error
}

// SQSSender is the one SQS method SQSDeliverer calls.
type SQSSender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SQSDeliverer delivers into real (or moto) SQS queues, as Amazon does.
type SQSDeliverer struct{ SQS SQSSender }

// Deliver sends body to queueURL.
func (d SQSDeliverer) Deliver(ctx context.Context, queueURL, body string) error {
	if _, err := d.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("sending notification to %s: %w", queueURL, err)
	}
	return nil
}

type noDeliverer struct{}

func (noDeliverer) Deliver(context.Context, string, string) error {
	return errors.New("simulator has no Deliverer")
}

// Notification states.
const (
	StateDelivered = "delivered"
	StateDropped   = "dropped"
	StateHeld      = "held"
	StateFailed    = "failed"
)

// Notification records one notification the simulator produced. It never holds the body,
// which for a new secret carries the secret.
type Notification struct {
	Time           time.Time `json:"time"`
	Type           string    `json:"type"`
	ClientID       string    `json:"clientId"`
	NotificationID string    `json:"notificationId"`
	QueueURL       string    `json:"queueUrl"`
	State          string    `json:"state"`
	Sent           int       `json:"sent"` // copies delivered (2 for a duplicate)
	Error          string    `json:"error,omitempty"`
}

// Notifications lists every notification produced, including dropped ones, oldest first.
func (s *Sim) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Notification, len(s.notes))
	for i, n := range s.notes {
		out[i] = *n
	}
	return out
}

type pending struct {
	note    *Notification
	body    string
	hide    string // plaintext to scrub from delivery errors
	copies  int
	reorder bool
	flushed chan struct{} // closed when Flush takes a delayed notification
}

// newPending records notice and wraps it for delivery; the caller holds s.mu. hide is the
// plaintext to scrub from delivery errors.
func (s *Sim) newPending(notice amazon.Notice, hide string) *pending {
	n := &Notification{Time: notice.Time, Type: notice.Type, ClientID: notice.ClientID,
		NotificationID: notice.NotificationID, QueueURL: notice.QueueURL}
	s.notes = append(s.notes, n)
	return &pending{note: n, body: string(notice.Body), hide: hide, copies: 1}
}

// SendExpiryNotice sends APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY for clientID to its expiry
// queue (or its new-secret queue when it has none). A zero expiresAt announces the newest
// secret's expiry. Delivery faults apply.
func (s *Sim) SendExpiryNotice(ctx context.Context, clientID string, expiresAt time.Time) (string, error) {
	s.mu.Lock()
	notice, err := s.model.ExpiryNotice(s.clk.Now(), clientID, expiresAt)
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("sending expiry notice: %w", err)
	}
	n := s.newPending(notice, "")
	s.mu.Unlock()
	return n.note.NotificationID, s.dispatch(ctx, n)
}

// dispatch applies the next delivery fault, then sends or holds n.
func (s *Sim) dispatch(ctx context.Context, n *pending) error {
	f := s.takeFault(TargetDelivery)
	if f != nil && f.Duplicate {
		n.copies = 2
	}
	switch {
	case f != nil && f.Drop:
		s.setState(n, StateDropped, "")
		s.logNote(n, "simulator dropped notification (fault)")
		return nil
	case f != nil && f.Reorder:
		n.reorder = true
		s.hold(n)
		return nil
	case f != nil && f.Delay > 0:
		s.hold(n)
		// Armed before dispatch returns, so a test that then advances the clock fires it.
		go s.deliverLater(n, s.clk.NewTimer(f.Delay))
		return nil
	}
	err := s.send(ctx, n)
	return errors.Join(err, s.releaseReordered(ctx))
}

func (s *Sim) hold(n *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.flushed = make(chan struct{})
	n.note.State = StateHeld
	s.held = append(s.held, n)
}

// unhold takes n out of the held list; false means Flush or the timer already took it.
func (s *Sim) unhold(n *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.held {
		if h == n {
			s.held = append(s.held[:i], s.held[i+1:]...)
			return true
		}
	}
	return false
}

func (s *Sim) deliverLater(n *pending, t clock.Timer) {
	defer t.Stop()
	select {
	case <-t.C():
		if s.unhold(n) {
			_ = s.send(s.ctx, n) // recorded on the notification
			_ = s.releaseReordered(s.ctx)
		}
	case <-n.flushed:
	case <-s.ctx.Done():
	}
}

func (s *Sim) releaseReordered(ctx context.Context) error {
	s.mu.Lock()
	var out, kept []*pending
	for _, h := range s.held {
		if h.reorder {
			out = append(out, h)
		} else {
			kept = append(kept, h)
		}
	}
	s.held = kept
	s.mu.Unlock()
	var errs []error
	for _, h := range out {
		errs = append(errs, s.send(ctx, h))
	}
	return errors.Join(errs...)
}

// Flush delivers every held notification (reordered or delayed) now, oldest first.
func (s *Sim) Flush(ctx context.Context) error {
	s.mu.Lock()
	out := s.held
	s.held = nil
	s.mu.Unlock()
	var errs []error
	for _, h := range out {
		close(h.flushed)
		errs = append(errs, s.send(ctx, h))
	}
	return errors.Join(errs...)
}

func (s *Sim) send(ctx context.Context, n *pending) error {
	for range n.copies {
		if err := s.deliver.Deliver(ctx, n.note.QueueURL, n.body); err != nil {
			msg := err.Error()
			if n.hide != "" {
				msg = strings.ReplaceAll(msg, n.hide, secret.Redacted)
			}
			s.setState(n, StateFailed, msg)
			s.log.Warn("simulator could not deliver notification", zap.String("notification_id", n.note.NotificationID),
				zap.String("type", n.note.Type), zap.String("queue_url", n.note.QueueURL), zap.String("error", msg))
			return fmt.Errorf("delivering notification %s: %s", n.note.NotificationID, msg)
		}
		s.mu.Lock()
		n.note.Sent++
		n.note.State = StateDelivered
		s.mu.Unlock()
	}
	s.logNote(n, "simulator delivered notification")
	return nil
}

func (s *Sim) setState(n *pending, state, errMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.note.State, n.note.Error = state, errMsg
}

func (s *Sim) logNote(n *pending, msg string) {
	s.log.Info(msg, zap.String("notification_id", n.note.NotificationID), zap.String("type", n.note.Type),
		zap.String("client_id", n.note.ClientID), zap.String("queue_url", n.note.QueueURL), zap.Int("copies", n.copies))
}
