package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

const modelJobSvc = "/mindrouter.admin.v1.ModelJobService/"

var jobCols = []string{"id", "kind", "backend_name", "model", "state", "status", "completed_bytes", "total_bytes", "attempts", "error"}

// modelJobOps are the pull, delete and job verbs of `mindrouterctl models`.
var modelJobOps = []op{
	{verb: "pull", short: "Pull a model onto an Ollama backend (--backend id or name; --insecure for an http registry); follows the progress unless --detach",
		method: modelJobSvc + "PullModel", arg: "model", req: msg[adminv1.PullModelRequest](), resp: msg[adminv1.PullModelResponse](), one: "job", cols: jobCols, follow: true},
	{verb: "delete", short: "Delete a model from an Ollama backend (--backend id or name); follows the job unless --detach",
		method: modelJobSvc + "DeleteModel", arg: "model", req: msg[adminv1.DeleteModelRequest](), resp: msg[adminv1.DeleteModelResponse](), one: "job", cols: jobCols, follow: true},
	{verb: "jobs", short: "List pull and delete jobs, newest first (--state queued|running|succeeded|failed|cancelled|active, --backend, --limit)",
		method: modelJobSvc + "ListModelJobs", req: msg[adminv1.ListModelJobsRequest](), resp: msg[adminv1.ListModelJobsResponse](), list: "jobs", cols: jobCols},
	{verb: "job", short: "Show a pull or delete job", method: modelJobSvc + "GetModelJob", arg: "id",
		req: msg[adminv1.GetModelJobRequest](), resp: msg[adminv1.GetModelJobResponse](), one: "job", cols: jobCols},
	{verb: "watch", short: "Follow a job's progress until it ends", method: modelJobSvc + "WatchModelJob", arg: "id",
		req: msg[adminv1.WatchModelJobRequest](), watch: true},
	{verb: "cancel", short: "Cancel a queued or running job", method: modelJobSvc + "CancelModelJob", arg: "id",
		req: msg[adminv1.CancelModelJobRequest](), resp: msg[adminv1.CancelModelJobResponse](), one: "job", cols: jobCols},
}

// followJob watches the job in resp's "job" field until it ends.
func followJob(ctx context.Context, conn *grpc.ClientConn, s Settings, resp proto.Message, w io.Writer) error {
	m := resp.ProtoReflect()
	job := m.Get(m.Descriptor().Fields().ByName(protoreflect.Name("job"))).Message().Interface().(*adminv1.ModelJob)
	fmt.Fprintf(w, "job %d: %s %s on %s queued\n", job.GetId(), job.GetKind(), job.GetModel(), job.GetBackendName())
	return watchJob(ctx, conn, s, job.GetId(), w)
}

// watchJob prints each state of a job as a line until it ends; a failed or
// cancelled job is an error (exit status 1).
func watchJob(ctx context.Context, conn *grpc.ClientConn, s Settings, id int64, w io.Writer) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.APIKey)
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, modelJobSvc+"WatchModelJob")
	if err != nil {
		return callError(err)
	}
	if err := st.SendMsg(&adminv1.WatchModelJobRequest{Id: id}); err != nil {
		return callError(err)
	}
	if err := st.CloseSend(); err != nil {
		return callError(err)
	}
	var last adminv1.ModelJob
	for {
		var r adminv1.WatchModelJobResponse
		err := st.RecvMsg(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return callError(err)
		}
		j := r.GetJob()
		if s.Output == "json" {
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(j)
			if err != nil {
				return fmt.Errorf("encode answer: %w", err)
			}
			fmt.Fprintln(w, string(b))
		} else {
			fmt.Fprintln(w, jobLine(j))
		}
		proto.Reset(&last)
		proto.Merge(&last, j)
	}
	switch last.GetState() {
	case "succeeded":
		return nil
	case "":
		return fmt.Errorf("job %d: the stream ended without a state", id)
	}
	if last.GetError() != "" {
		return fmt.Errorf("job %d %s: %s", id, last.GetState(), last.GetError())
	}
	return fmt.Errorf("job %d %s", id, last.GetState())
}

// jobLine is one progress line: state, status, bytes and attempt.
func jobLine(j *adminv1.ModelJob) string {
	line := fmt.Sprintf("%-9s %s", j.GetState(), j.GetStatus())
	if t := j.GetTotalBytes(); t > 0 && j.GetState() == "running" {
		line += fmt.Sprintf("  %5.1f%% (%s of %s)", 100*float64(j.GetCompletedBytes())/float64(t), bytesText(j.GetCompletedBytes()), bytesText(t))
	}
	if j.GetAttempts() > 0 {
		line += fmt.Sprintf("  attempt %d/%d", j.GetAttempts(), j.GetMaxAttempts())
	}
	if e := j.GetError(); e != "" {
		line += "  error: " + e
	}
	return line
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// addDetach adds --detach to a following op.
func addDetach(cmd *cobra.Command) {
	cmd.Flags().Bool("detach", false, "return once the job is queued instead of following it")
}
