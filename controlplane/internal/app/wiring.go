package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/quota"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// QueueConfig is what the scheduler queue is built from.
type QueueConfig struct {
	// Policy orders waiters: "fifo", or anything else for fair share.
	Policy    string
	FairShare fairshare.Params
	Queue     scheduler.Options
}

// NewQueue builds the scheduler queue that admission takes its slots from and
// whose in-flight counts the registry reports.
func NewQueue(c QueueConfig, reg prometheus.Registerer, log *slog.Logger) (*scheduler.Queue, error) {
	qo := c.Queue
	qo.Registerer, qo.Logger = reg, log
	if c.Policy == "fifo" {
		return scheduler.New(scheduler.NewFIFO(), qo)
	}
	return scheduler.NewFairShareQueue(c.FairShare, qo)
}

// Accountant adapts the quota manager to admission's Accountant port.
func Accountant(m *quota.Manager) admission.Accountant { return accountant{m} }

type accountant struct{ m *quota.Manager }

func (a accountant) Reserve(ctx context.Context, p admission.Principal, r admission.Reservation) error {
	return a.m.Reserve(ctx, quotaAccount(p), quota.Reservation{RequestID: r.RequestID, Tokens: r.Tokens})
}

func (a accountant) Settle(p admission.Principal, s admission.Settlement) {
	a.m.Settle(quotaAccount(p), quota.Settlement{
		Reservation: quota.Reservation{RequestID: s.RequestID, Tokens: s.Tokens},
		Granted:     s.Granted, Succeeded: s.Outcome == controlplanev1.Outcome_OUTCOME_SUCCESS,
		PromptTokens: s.PromptTokens, CompletionTokens: s.CompletionTokens,
		Lost: s.Lost, Adopted: s.Adopted,
	})
}

func quotaAccount(p admission.Principal) quota.Account {
	return quota.Account{UserID: p.UserID, APIKeyID: p.APIKeyID, RPMLimit: p.RPMLimit,
		KeyRPMLimit: p.KeyRPMLimit, TokenBudget: p.TokenBudget}
}
