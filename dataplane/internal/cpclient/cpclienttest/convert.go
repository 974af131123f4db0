package cpclienttest

import (
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// The fake speaks the protocol; tests of the relay and the surfaces read and
// set what it sees in the relay's own types. These conversions are the
// inverse of cpclient's.

func admitRequest(a *controlplanev1.AdmitRequest) relay.AdmitRequest {
	var needs []relay.Capability
	for _, c := range a.GetNeeds() {
		needs = append(needs, relay.Capability(c))
	}
	return relay.AdmitRequest{
		RequestID: a.GetRequestId(), Credential: a.GetCredential(), Model: a.GetModel(),
		Operation: relay.Operation(a.GetOperation()), Needs: needs,
		PromptTokensEstimate: a.GetPromptTokensEstimate(), MaxOutputTokens: a.GetMaxOutputTokens(),
		Attempt: a.GetAttempt(), ExcludedBackendIDs: a.GetExcludedBackendIds(),
		Endpoint: a.GetEndpoint(), Stream: a.GetStream(),
	}
}

func release(r *controlplanev1.ReleaseRequest) relay.Release {
	return relay.Release{
		LeaseID: r.GetLeaseId(), Outcome: relay.Outcome(r.GetOutcome()),
		Usage: canonical.Usage{Prompt: r.GetUsage().GetPromptTokens(), Completion: r.GetUsage().GetCompletionTokens(),
			Estimated: r.GetUsage().GetEstimated()},
		TTFT: r.GetTtft().AsDuration(), Duration: r.GetDuration().AsDuration(), Error: r.GetError(),
		RequestID: r.GetRequestId(), BackendID: r.GetBackendId(), UserID: r.GetUserId(), Model: r.GetModel(),
	}
}

func catalogModel(m relay.ModelInfo) *controlplanev1.CatalogModel {
	out := &controlplanev1.CatalogModel{
		Name: m.Name, Family: m.Family, ContextLength: m.ContextLength, HealthyBackends: m.HealthyBackends,
		Loaded: m.Loaded, Simulated: m.Simulated, Created: m.Created, ParameterSize: m.ParameterSize,
		Quantization: m.Quantization, EmbeddingLength: m.EmbeddingLength,
	}
	for _, c := range m.Capabilities {
		out.Capabilities = append(out.Capabilities, controlplanev1.Capability(c))
	}
	for _, e := range m.Engines {
		out.Engines = append(out.Engines, controlplanev1.Engine(e))
	}
	return out
}
