package cpclient

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// The relay's enumerations are numbered like the protocol's (relay's
// controlplane.go); convert_test.go checks that they agree by name.

func admitRequestProto(r relay.AdmitRequest, replicaID string) *controlplanev1.AdmitRequest {
	var needs []controlplanev1.Capability
	if len(r.Needs) > 0 {
		needs = make([]controlplanev1.Capability, len(r.Needs))
		for i, c := range r.Needs {
			needs[i] = controlplanev1.Capability(c)
		}
	}
	return &controlplanev1.AdmitRequest{
		RequestId:            r.RequestID,
		Credential:           r.Credential,
		Model:                r.Model,
		Operation:            controlplanev1.Operation(r.Operation),
		Needs:                needs,
		PromptTokensEstimate: r.PromptTokensEstimate,
		MaxOutputTokens:      r.MaxOutputTokens,
		Attempt:              r.Attempt,
		ExcludedBackendIds:   r.ExcludedBackendIDs,
		ReplicaId:            replicaID,
		Endpoint:             r.Endpoint,
		Stream:               r.Stream,
	}
}

func grantOf(resp *controlplanev1.AdmitResponse) relay.Grant {
	l := resp.GetLease()
	return relay.Grant{
		Lease: relay.Lease{
			ID: l.GetLeaseId(), RequestID: l.GetRequestId(), BackendID: l.GetBackendId(),
			BackendName: l.GetBackendName(), BackendURL: l.GetBackendUrl(), Engine: relay.Engine(l.GetEngine()),
			Model: l.GetModel(), ContextLength: l.GetContextLength(), MaxOutputTokens: l.GetMaxOutputTokens(),
			UserID: l.GetPrincipal().GetUserId(), Username: l.GetPrincipal().GetUsername(),
			APIKeyID: l.GetPrincipal().GetApiKeyId(), Group: l.GetPrincipal().GetGroup(), Simulated: l.GetSimulated(),
		},
		QueuePosition: resp.GetQueuePosition(),
		Queued:        resp.GetQueued().AsDuration(),
	}
}

func releaseProto(r relay.Release) *controlplanev1.ReleaseRequest {
	return &controlplanev1.ReleaseRequest{
		LeaseId: r.LeaseID,
		Outcome: controlplanev1.Outcome(r.Outcome),
		Usage: &controlplanev1.Usage{
			PromptTokens: r.Usage.Prompt, CompletionTokens: r.Usage.Completion, Estimated: r.Usage.Estimated,
		},
		Ttft:      durationpb.New(r.TTFT),
		Duration:  durationpb.New(r.Duration),
		Error:     r.Error,
		RequestId: r.RequestID,
		BackendId: r.BackendID,
		UserId:    r.UserID,
		Model:     r.Model,
	}
}

func modelsOf(in []*controlplanev1.CatalogModel) []relay.ModelInfo {
	out := make([]relay.ModelInfo, len(in))
	for i, m := range in {
		caps := make([]relay.Capability, len(m.GetCapabilities()))
		for j, c := range m.GetCapabilities() {
			caps[j] = relay.Capability(c)
		}
		engines := make([]relay.Engine, len(m.GetEngines()))
		for j, e := range m.GetEngines() {
			engines[j] = relay.Engine(e)
		}
		out[i] = relay.ModelInfo{
			Name: m.GetName(), Family: m.GetFamily(), ContextLength: m.GetContextLength(),
			Capabilities: caps, Engines: engines, HealthyBackends: m.GetHealthyBackends(),
			Loaded: m.GetLoaded(), Simulated: m.GetSimulated(), Created: m.GetCreated(),
			ParameterSize: m.GetParameterSize(), Quantization: m.GetQuantization(),
			EmbeddingLength: m.GetEmbeddingLength(),
			DisplayName:     m.GetDisplayName(), Description: m.GetDescription(),
			IsAlias: m.GetIsAlias(), AliasTargets: m.GetAliasTargets(),
		}
	}
	return out
}

func queueUpdateOf(q *controlplanev1.QueueUpdate) relay.QueueUpdate {
	return relay.QueueUpdate{Position: q.GetPosition(), EstimatedWait: q.GetEstimatedWait().AsDuration()}
}
