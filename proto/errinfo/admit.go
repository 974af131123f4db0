package errinfo

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// AdmitError carries st, the status a unary Admit returns, in an AdmitResult
// of the session: its code, message, refusal reason and retry delay.
func AdmitError(st *status.Status) *controlplanev1.AdmitError {
	e := &controlplanev1.AdmitError{Code: int32(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == Domain {
				e.Reason = controlplanev1.Reason(controlplanev1.Reason_value[d.GetReason()])
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryAfter = d.GetRetryDelay()
			}
		}
	}
	return e
}

// AdmitStatus is the inverse of AdmitError: the status a unary Admit would
// have returned, with the same details.
func AdmitStatus(e *controlplanev1.AdmitError) *status.Status {
	st := status.New(codes.Code(e.GetCode()), e.GetMessage())
	var details []protoadapt.MessageV1
	if e.GetReason() != controlplanev1.Reason_REASON_UNSPECIFIED {
		details = append(details, &errdetails.ErrorInfo{Reason: e.GetReason().String(), Domain: Domain})
	}
	if e.GetRetryAfter() != nil {
		details = append(details, &errdetails.RetryInfo{RetryDelay: e.GetRetryAfter()})
	}
	if len(details) == 0 {
		return st
	}
	if d, err := st.WithDetails(details...); err == nil {
		return d
	}
	return st
}
