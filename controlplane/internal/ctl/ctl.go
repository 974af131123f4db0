package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/mindrouter/mindrouter/tlsfiles"
)

// Settings say how to reach the control plane.
type Settings struct {
	Address string `json:"address"`
	APIKey  string `json:"api_key"`
	// TLS dials with TLS; CAFile (PEM) replaces the system roots, ServerName
	// the name checked.
	TLS        bool   `json:"tls"`
	CAFile     string `json:"ca_file"`
	ServerName string `json:"server_name"`
	// CertFile and KeyFile are the client certificate a control plane that
	// demands mutual TLS checks.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	Output   string `json:"output"`
	// Timeout bounds each call (flag only).
	Timeout time.Duration `json:"-"`
}

// defaultConfigPath is $XDG_CONFIG_HOME/mindrouter/ctl.yaml (or ~/.config/...).
func defaultConfigPath(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		if home := getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".config")
		}
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "mindrouter", "ctl.yaml")
}

// NewRoot returns the mindrouterctl command tree. getenv reads the environment.
func NewRoot(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var s Settings
	var configPath string
	root := &cobra.Command{
		Use:   "mindrouterctl",
		Short: "Administer a MindRouter control plane over gRPC",
		Long: `mindrouterctl administers a MindRouter control plane over gRPC.

The address, API key and TLS settings come from flags, else the environment
(MINDROUTER_ADDR, MINDROUTER_API_KEY, MINDROUTER_TLS, MINDROUTER_CA_FILE,
MINDROUTER_SERVER_NAME, MINDROUTER_CERT_FILE, MINDROUTER_KEY_FILE), else the
config file (--config, MINDROUTER_CTL_CONFIG, default
$XDG_CONFIG_HOME/mindrouter/ctl.yaml) with the keys address, api_key, tls,
ca_file, server_name, cert_file, key_file and output.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&configPath, "config", "", "config file (YAML or JSON)")
	pf.StringVar(&s.Address, "addr", "", "control plane gRPC address (default 127.0.0.1:9090)")
	pf.StringVar(&s.APIKey, "key", "", "admin API key (mr2_...); prefer MINDROUTER_API_KEY, flags show in ps")
	pf.BoolVar(&s.TLS, "tls", false, "dial with TLS")
	pf.StringVar(&s.CAFile, "ca-file", "", "PEM file of the CA that signed the control plane's certificate")
	pf.StringVar(&s.ServerName, "server-name", "", "name to verify the certificate against")
	pf.StringVar(&s.CertFile, "cert-file", "", "PEM client certificate, for a control plane that requires mutual TLS")
	pf.StringVar(&s.KeyFile, "key-file", "", "PEM private key of --cert-file")
	pf.StringVarP(&s.Output, "output", "o", "", "table, json or yaml (default table)")
	pf.DurationVar(&s.Timeout, "timeout", 30*time.Second, "deadline of each call")

	resolve := func(cmd *cobra.Command) (Settings, error) {
		return resolveSettings(cmd, s, configPath, getenv)
	}
	for _, r := range resources {
		root.AddCommand(resourceCommand(r, resolve))
	}
	for _, o := range topLevel {
		root.AddCommand(opCommand(o, resolve))
	}
	return root
}

// resolveSettings fills what the flags left unset from the environment, then
// the config file, then the defaults.
func resolveSettings(cmd *cobra.Command, s Settings, configPath string, getenv func(string) string) (Settings, error) {
	pf := cmd.Flags()
	explicit := configPath != "" || getenv("MINDROUTER_CTL_CONFIG") != ""
	if configPath == "" {
		configPath = getenv("MINDROUTER_CTL_CONFIG")
	}
	if configPath == "" {
		configPath = defaultConfigPath(getenv)
	}
	var file Settings
	if configPath != "" {
		raw, err := os.ReadFile(configPath)
		switch {
		case err == nil:
			if err := yaml.UnmarshalStrict(raw, &file); err != nil {
				return Settings{}, fmt.Errorf("config file %s: %w", configPath, err)
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return Settings{}, fmt.Errorf("config file: %w", err)
		}
	}
	pick := func(flag, flagVal, env, fileVal, def string) string {
		switch {
		case pf.Changed(flag):
			return flagVal
		case getenv(env) != "":
			return getenv(env)
		case fileVal != "":
			return fileVal
		}
		return def
	}
	out := s
	out.Address = pick("addr", s.Address, "MINDROUTER_ADDR", file.Address, "127.0.0.1:9090")
	out.APIKey = pick("key", s.APIKey, "MINDROUTER_API_KEY", file.APIKey, "")
	out.CAFile = pick("ca-file", s.CAFile, "MINDROUTER_CA_FILE", file.CAFile, "")
	out.ServerName = pick("server-name", s.ServerName, "MINDROUTER_SERVER_NAME", file.ServerName, "")
	out.CertFile = pick("cert-file", s.CertFile, "MINDROUTER_CERT_FILE", file.CertFile, "")
	out.KeyFile = pick("key-file", s.KeyFile, "MINDROUTER_KEY_FILE", file.KeyFile, "")
	out.Output = pick("output", s.Output, "MINDROUTER_OUTPUT", file.Output, "table")
	if !pf.Changed("tls") {
		out.TLS = file.TLS || getenv("MINDROUTER_TLS") == "1" || getenv("MINDROUTER_TLS") == "true"
	}
	if out.CAFile != "" || out.ServerName != "" || out.CertFile != "" {
		out.TLS = true
	}
	switch out.Output {
	case "table", "json", "yaml":
	default:
		return Settings{}, fmt.Errorf("--output %q: use table, json or yaml", out.Output)
	}
	if out.APIKey == "" {
		return Settings{}, errors.New("no API key: set MINDROUTER_API_KEY, --key or api_key in the config file")
	}
	return out, nil
}

// dial connects to the control plane.
func dial(s Settings) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if s.TLS {
		src, err := tlsfiles.Load(tlsfiles.Files{CertFile: s.CertFile, KeyFile: s.KeyFile, CAFile: s.CAFile})
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(src.ClientConfig(s.ServerName))
	}
	conn, err := grpc.NewClient(s.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("control plane address %q: %w", s.Address, err)
	}
	return conn, nil
}

// opCommand builds the cobra command of one op; its flags are the request's
// fields.
// resourceCommand is a noun with its verbs and its sub-nouns.
func resourceCommand(r resource, resolve func(*cobra.Command) (Settings, error)) *cobra.Command {
	rc := &cobra.Command{Use: r.name, Short: r.short, Aliases: r.aliases}
	for _, o := range r.ops {
		rc.AddCommand(opCommand(o, resolve))
	}
	for _, sub := range r.subs {
		rc.AddCommand(resourceCommand(sub, resolve))
	}
	return rc
}

// bodyOf is the message an op's flags and argument set: the request, or its
// field named o.body.
func bodyOf(o op, req proto.Message) proto.Message {
	if o.body == "" {
		return req
	}
	m := req.ProtoReflect()
	return m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(o.body))).Message().Interface()
}

func opCommand(o op, resolve func(*cobra.Command) (Settings, error)) *cobra.Command {
	cmd := &cobra.Command{Use: o.verb, Short: o.short, Args: cobra.NoArgs}
	if o.arg != "" {
		cmd.Use += " " + strings.ToUpper(o.arg)
		cmd.Args = cobra.ExactArgs(1)
	}
	fields := addRequestFlags(cmd, bodyOf(o, o.req()), o.arg)
	if o.follow {
		addDetach(cmd)
	}
	for name := range o.fixed {
		flag := strings.ReplaceAll(name, "_", "-")
		if cmd.Flags().Lookup(flag) != nil {
			_ = cmd.Flags().MarkHidden(flag)
		}
		delete(fields, flag)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := resolve(cmd)
		if err != nil {
			return err
		}
		req := o.req()
		if err := fillRequest(cmd, bodyOf(o, req), fields, o.arg, args); err != nil {
			return err
		}
		if err := fillFixed(req, o.fixed); err != nil {
			return err
		}
		conn, err := dial(s)
		if err != nil {
			return err
		}
		defer conn.Close()
		if o.watch {
			// A job takes as long as it takes; the watch ends with it.
			return watchJob(cmd.Context(), conn, s, req.ProtoReflect().Get(req.ProtoReflect().Descriptor().Fields().ByName("id")).Int(), cmd.OutOrStdout())
		}
		if o.rawStream {
			// An export takes as long as it takes; the call ends with the command.
			ctx := metadata.AppendToOutgoingContext(cmd.Context(), "authorization", "Bearer "+s.APIKey)
			return streamBody(ctx, conn, o.method, req, cmd.OutOrStdout())
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), s.Timeout)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.APIKey)
		resp := o.resp()
		if err := conn.Invoke(ctx, o.method, req, resp); err != nil {
			return callError(err)
		}
		if detach, _ := cmd.Flags().GetBool("detach"); o.follow && !detach {
			return followJob(cmd.Context(), conn, s, resp, cmd.OutOrStdout())
		}
		return render(cmd.OutOrStdout(), s.Output, o, resp)
	}
	return cmd
}

// streamBody calls a server-streaming method of google.api.HttpBody messages
// and writes their bytes to w as they arrive.
func streamBody(ctx context.Context, conn *grpc.ClientConn, method string, req proto.Message, w io.Writer) error {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return callError(err)
	}
	if err := st.SendMsg(req); err != nil {
		return callError(err)
	}
	if err := st.CloseSend(); err != nil {
		return callError(err)
	}
	for {
		var chunk httpbody.HttpBody
		err := st.RecvMsg(&chunk)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return callError(err)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// callError says what the control plane refused and why: the status code,
// its message and the reason of its ErrorInfo, if any.
func callError(err error) error {
	st := status.Convert(err)
	msg := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			msg += " (reason " + d.GetReason() + ")"
		case *errdetails.RetryInfo:
			msg += fmt.Sprintf(" (retry after %s)", d.GetRetryDelay().AsDuration())
		}
	}
	return errors.New(msg)
}

// Main runs mindrouterctl with args and returns the process exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	root := NewRoot(getenv, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}
