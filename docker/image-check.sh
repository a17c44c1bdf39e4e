#!/usr/bin/env bash
# Builds the CPU image from docker/Dockerfile, starts it on a free loopback port, waits for
# /readyz, posts one frame as the demo camera and checks the answer has a verdict, runs the image's
# HEALTHCHECK once, then stops and removes the container. Exits non-zero on any failure; prints timings.
#   bash docker/image-check.sh            (make image)
# Environment:
#   ENGINE      podman (default) or docker
#   IMAGE       tag to build (default localhost/railscope:cpu)
#   BASE        runtime base (default localhost/debian:bookworm: made by
#               ../shared/container/make-base-image.sh where no container registry is reachable;
#               BASE=debian:bookworm-slim BUILD_BASE=rust:1-bookworm for the public images)
#   BUILD_BASE  build-stage base (default: BASE)
#   READY_S     seconds to wait for /readyz (default 180)
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-podman}
IMAGE=${IMAGE:-localhost/railscope:cpu}
BASE=${BASE:-localhost/debian:bookworm}
BUILD_BASE=${BUILD_BASE:-$BASE}
READY_S=${READY_S:-180}
FRAME=tests/fixtures/fasteners/test/good/000000.png
KEY=demo-key-cam-01          # config/railscope.toml, camera cam-01
MAKE_BASE=../shared/container/make-base-image.sh
t0=$(date +%s)
# podman without systemd logs that it cannot schedule health-check timers: harmless here, filtered.
nosd() { "$@" 2> >(grep -v 'systemd connection' >&2); }
say() { printf '[image-check %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

command -v "$ENGINE" >/dev/null || { echo "image-check: $ENGINE not found (apt-get install podman, or ENGINE=docker)" >&2; exit 1; }
command -v curl >/dev/null || { echo "image-check: curl not found" >&2; exit 1; }

# 1. The base image: a local Debian bookworm image where no registry is reachable.
for b in "$BASE" "$BUILD_BASE"; do
  case $b in localhost/*)
    if ! "$ENGINE" image inspect "$b" >/dev/null 2>&1; then
      if [ -x "$MAKE_BASE" ] || [ -f "$MAKE_BASE" ]; then
        say "base $b missing: running $MAKE_BASE"
        bash "$MAKE_BASE"
      else
        cat >&2 <<MSG
image-check: base image $b does not exist and $MAKE_BASE is not here.
  With a registry: BASE=debian:bookworm-slim BUILD_BASE=rust:1-bookworm bash docker/image-check.sh
  Without one: make a Debian bookworm image with debootstrap and import it as $b
  (docker/README.md, "Building without a registry").
MSG
        exit 1
      fi
    fi;;
  esac
done
t_base=$(date +%s)

# 2. Build. --format docker keeps the HEALTHCHECK (podman's default OCI format drops it).
say "building $IMAGE (BUILD_BASE=$BUILD_BASE BASE=$BASE)"
fmt=(); [ "$ENGINE" = podman ] && fmt=(--format docker)
"$ENGINE" build "${fmt[@]}" -f docker/Dockerfile -t "$IMAGE" \
  --build-arg BUILD_BASE="$BUILD_BASE" --build-arg BASE="$BASE" .
t_build=$(date +%s)
size=$("$ENGINE" image inspect "$IMAGE" --format '{{.Size}}')
say "built in $(( t_build - t_base )) s, image size $(( size / 1000000 )) MB"

# 3. Run on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=railscope-image-check-$$
url=http://127.0.0.1:$port
cleanup() {
  if "$ENGINE" inspect "$name" >/dev/null 2>&1; then
    [ "${ok:-0}" = 1 ] || { echo "--- container log ---" >&2; "$ENGINE" logs "$name" 2>&1 | tail -40 >&2 || true; }
    "$ENGINE" rm -f -v -t 10 "$name" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
# Published on loopback only; inside, the service keeps 0.0.0.0:8080, where the image's HEALTHCHECK
# looks. No systemd here: podman cannot schedule periodic checks (interval disabled; step 5 runs one).
hc_opt=(); [ "$ENGINE" = podman ] && hc_opt=(--health-interval=disable)
nosd "$ENGINE" run -d --name "$name" -p "127.0.0.1:$port:8080" "${hc_opt[@]}" "$IMAGE" >/dev/null
t_start=$(date +%s)
say "started $name on $url"
ready=0
for _ in $(seq 1 $(( READY_S * 2 ))); do
  if curl -fs "$url/readyz" >/dev/null 2>&1; then ready=1; break; fi
  [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || { echo "image-check: container exited" >&2; exit 1; }
  sleep 0.5
done
[ "$ready" = 1 ] || { echo "image-check: /readyz not ready after ${READY_S} s" >&2; exit 1; }
t_ready=$(date +%s)
say "ready in $(( t_ready - t_start )) s: $(curl -fs "$url/readyz")"

# 4. One frame as the demo camera; the answer must be JSON with a verdict.
answer=$(curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: image/png' \
  --data-binary @"$FRAME" "$url/v1/cameras/cam-01/frames")
summary=$(echo "$answer" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a.get("verdict") in ("normal", "defect"), "no verdict"
print("verdict=%s A_norm=%s threshold=%s provider=%s" % (a["verdict"], a.get("A_norm"), a.get("threshold"), a.get("provider")))
') || { echo "image-check: the answer has no verdict: $answer" >&2; exit 1; }
say "answer: $summary"
say "answer JSON: ${answer:0:400}"

# 5. The image's HEALTHCHECK, run once (no systemd here, so podman runs no periodic checks).
if [ "$ENGINE" = podman ]; then
  "$ENGINE" healthcheck run "$name" || { echo "image-check: healthcheck failed" >&2; exit 1; }
  say "healthcheck: healthy"
else
  hc=$("$ENGINE" inspect -f '{{json .Config.Healthcheck}}' "$IMAGE")
  [ "$hc" != null ] || { echo "image-check: image has no HEALTHCHECK" >&2; exit 1; }
  say "healthcheck present: $hc"
fi

# 6. Stop (SIGTERM, clean shutdown) and remove.
nosd "$ENGINE" stop -t 30 "$name" >/dev/null
ok=1
nosd "$ENGINE" rm -v "$name" >/dev/null
t_end=$(date +%s)
say "stopped and removed"
echo "image-check OK: base $(( t_base - t0 )) s, build $(( t_build - t_base )) s, size $(( size / 1000000 )) MB, ready $(( t_ready - t_start )) s, total $(( t_end - t0 )) s"
