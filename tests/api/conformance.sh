#!/usr/bin/env bash
# docs/api.yaml against the real service: schemathesis generates requests for every documented
# operation (examples, boundary/coverage cases, a bounded fuzzing phase) and checks that no
# answer is a 5xx, and that every status code, content type and JSON body is the documented one.
# A real `railscope serve` on 127.0.0.1 with its own storage and a copy of calibration/ (the run
# applies thresholds); it is stopped however the run ends. Usage: tests/api/conformance.sh [PY]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-.venv/bin/python}
BIN=target/release/railscope
# The service sees only what this script sets, not the caller's RAILSCOPE__* variables.
for v in $(compgen -e); do case $v in RAILSCOPE__*) unset "$v" ;; esac; done
work=$(mktemp -d)
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp -r calibration "$work/calibration"
RAILSCOPE__ENGINE__PROVIDERS=cpu RAILSCOPE__SERVER__BIND=127.0.0.1:$port \
RAILSCOPE__STORAGE__PATH="$work/store" RAILSCOPE__ENGINE__CALIBRATION_DIR="$work/calibration" \
    "$BIN" serve > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.5
done
# Some stored inspections, so that ids, images and stats exist.
"$BIN" simulate --url "http://127.0.0.1:$port" --cameras 2 --fps 10 --duration 2 --synthetic > /dev/null
# /v1/events streams until the client leaves, and frames need a camera key: both are covered
# by tests/service_api.rs instead.
cd "$work"
"$OLDPWD/$(dirname "$PY")/schemathesis" run "$OLDPWD/docs/api.yaml" \
    --url "http://127.0.0.1:$port" -H "Authorization: Bearer demo-admin-token" \
    --exclude-path /v1/events --exclude-path '/v1/cameras/{camera_id}/frames' \
    --phases examples,coverage,fuzzing --max-examples 10 --seed 1 --no-color \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
if grep -q panicked "$work/serve.log"; then echo "the service panicked:"; grep -A5 panicked "$work/serve.log"; exit 1; fi
