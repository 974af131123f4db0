#!/usr/bin/env bash
# The embedded default: a complete local cluster with no external services.
#   control plane (SQLite in .data/)  gRPC :9090, REST admin :9091
#   data plane                        http://127.0.0.1:8000  (OpenAI /v1, REST admin /api/admin)
#   backend                           a local Ollama at 127.0.0.1:11434 when one answers,
#                                     otherwise the engine simulator on 127.0.0.1:11435 (labelled simulated)
# The admin API key is printed once, on the first start. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${MINDROUTER_CP_DATA_DIR:-.data}
mkdir -p "$data"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if curl -fsS --max-time 2 http://127.0.0.1:11434/api/version >/dev/null 2>&1; then
  seed="local-ollama=ollama:http://127.0.0.1:11434"
  echo "backend: the local Ollama at http://127.0.0.1:11434"
else
  ./bin/mindrouter-enginesim -listen 127.0.0.1:11435 -engine ollama &
  pids+=($!)
  seed="simulator=ollama:http://127.0.0.1:11435"
  echo "backend: no Ollama answers on 127.0.0.1:11434, so the engine SIMULATOR serves on 127.0.0.1:11435"
fi

MINDROUTER_CP_DATA_DIR=$data MINDROUTER_CP_SEED_BACKENDS=${MINDROUTER_CP_SEED_BACKENDS:-$seed} \
  ./bin/mindrouter-controlplane &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS --max-time 1 http://127.0.0.1:9091/readyz >/dev/null 2>&1 && break
  sleep 0.1
done

MINDROUTER_CLUSTER_TOKEN_FILE=$data/cluster-token ./bin/mindrouter-dataplane &
pids+=($!)
echo "data plane: http://127.0.0.1:8000 (OpenAI base URL http://127.0.0.1:8000/v1)"
wait -n "${pids[@]}"
