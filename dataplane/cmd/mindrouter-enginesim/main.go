// Command mindrouter-enginesim serves a simulated inference engine (Ollama's
// native API or vLLM's OpenAI-compatible server) for tests, benchmarks and
// the demo. Its answers are deterministic filler text, not model output.
//
// Every flag falls back to an environment variable:
//
//	-listen  MINDROUTER_SIM_LISTEN  address to listen on (127.0.0.1:11435)
//	-engine  MINDROUTER_SIM_ENGINE  ollama or vllm (ollama)
//	-models  MINDROUTER_SIM_MODELS  comma-separated models, name[=context]
//	-ttft    MINDROUTER_SIM_TTFT    delay before the first token (0)
//	-itl     MINDROUTER_SIM_ITL     delay between tokens (0)
//	-tokens  MINDROUTER_SIM_TOKENS  tokens per unscripted reply (16)
//
// It prints the base URL it serves on and stops gracefully on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-enginesim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mindrouter-enginesim", flag.ContinueOnError)
	listen := fs.String("listen", env("MINDROUTER_SIM_LISTEN", "127.0.0.1:11435"), "address to listen on")
	engine := fs.String("engine", env("MINDROUTER_SIM_ENGINE", "ollama"), "engine to simulate: ollama, vllm, tts or stt")
	models := fs.String("models", env("MINDROUTER_SIM_MODELS", "sim-llama"), "comma-separated models, name[=context length]")
	ttft := fs.Duration("ttft", envDuration("MINDROUTER_SIM_TTFT"), "delay before the first token")
	itl := fs.Duration("itl", envDuration("MINDROUTER_SIM_ITL"), "delay between tokens")
	tokens := fs.Int("tokens", envInt("MINDROUTER_SIM_TOKENS", 16), "tokens per unscripted reply")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch enginesim.Engine(*engine) {
	case enginesim.EngineOllama, enginesim.EngineVLLM, enginesim.EngineTTS, enginesim.EngineSTT:
	default:
		return fmt.Errorf("unknown engine %q (want ollama, vllm, tts or stt)", *engine)
	}
	specs, err := enginesim.ParseModels(*models)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, url, err := enginesim.Listen(ctx, *listen, enginesim.Config{
		Engine:           enginesim.Engine(*engine),
		Models:           specs,
		TTFT:             *ttft,
		InterTokenDelay:  *itl,
		CompletionTokens: *tokens,
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	fmt.Println(url)
	logger.Info("simulated engine serving", "engine", *engine, "url", url, "models", *models)
	<-srv.Done()
	logger.Info("simulated engine stopped")
	return nil
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func envDuration(key string) time.Duration {
	d, err := time.ParseDuration(env(key, "0s"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "mindrouter-enginesim: ignoring %s: %v\n", key, err)
		return 0
	}
	return d
}

func envInt(key string, def int) int {
	n, err := strconv.Atoi(env(key, strconv.Itoa(def)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "mindrouter-enginesim: ignoring %s: %v\n", key, err)
		return def
	}
	return n
}
