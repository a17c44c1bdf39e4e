#!/usr/bin/env bash
# "Bring your own line" end to end (docs/onboarding.md), on generated frames of one camera preset:
#   frames -> camera config -> service live on the default model -> harvest (uncurated) ->
#   robust training (train.py --robust) -> calibration from normal frames only -> package ->
#   the camera's own `model` in the config + POST /admin/reload into the running service -> the
#   camera's frames judged by its own model (the service's model stays for any other camera).
# Every step is printed as the command a person would type, with its time. Run from the repo root
# (`make onboard-demo`); everything it writes goes under data/onboard/ (git-ignored).
#   FRAMES (200)  training frames; a fifth as many calibration frames, two fifths test frames
#   EPOCHS (12)   training epochs       PRESET (across-2mp)   BIND (127.0.0.1:8097)
set -euo pipefail
FRAMES=${FRAMES:-200}
EPOCHS=${EPOCHS:-12}
PRESET=${PRESET:-across-2mp}
BIND=${BIND:-127.0.0.1:8097}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
W=data/onboard
PY=$PWD/.venv/bin/python
TPY=$PWD/.venv-train/bin/python
RS=$PWD/target/release/railscope
ADMIN=onboard-admin-token
KEY=onboard-key-cam-07
t_start=$(date +%s)
declare -a TIMES=()

run() {  # echo a command, run it, record its time
    local label=$1; shift
    echo "\$ $*"
    local t0=$(date +%s%N)
    "$@"
    TIMES+=("$(printf '%-38s %6d s' "$label" $(( ($(date +%s%N) - t0) / 1000000000 )))")
}

rm -rf "$W"; mkdir -p "$W"
echo "== 1. frames from the camera (generated here: preset $PRESET; a real line starts at step 2)"
cd models/train
run "render training frames" "$PY" -m railscope_train.track --out "../../$W/frames-train" --camera "$PRESET" --seed 21 \
    --frames "$FRAMES" --defect-rate 0.03 --workers 2
run "render calibration frames" "$PY" -m railscope_train.track --out "../../$W/frames-calib" --camera "$PRESET" --seed 22 \
    --frames $((FRAMES / 5)) --defect-rate 0 --workers 2
run "render test frames" "$PY" -m railscope_train.track --out "../../$W/frames-test" --camera "$PRESET" --seed 23 \
    --frames $((FRAMES * 2 / 5)) --no-track 5 --defect-rate 0.05 --workers 2
cd ../..

echo "== 2. tell railscope how the camera sees the track ($W/railscope.toml)"
geometry=$(sed -n '/^\[geometry\]/,$p' "$W/frames-train/camera.toml" | grep -E '^(orientation|px_per_m|rails) ' \
    | sed 's/ *#.*//' | paste -sd, - | sed 's/,/, /g')
cat > "$W/railscope.toml" <<EOF
[server]
bind = "$BIND"
model = "models/nested-edgan"
[storage]
path = "$W/service"
[auth]
inspector_tokens = ["onboard-inspector-token"]
admin_tokens = ["$ADMIN"]
[[cameras]]
id = "cam-07"
name = "Onboarding demo, $PRESET"
api_key = "$KEY"
roi = "track"
geometry = { $geometry }
EOF
cat "$W/railscope.toml"

echo "== 3. the camera goes live on the default crop model"
"$RS" --config "$W/railscope.toml" serve > "$W/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 120); do curl -fs "http://$BIND/readyz" > /dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$W/serve.log"; exit 1; }; sleep 0.5; done
judge() {  # post every test frame, compare the frame verdict with the generator's ground truth
    "$PY" - "$W/frames-test/frames" "http://$BIND/v1/cameras/cam-07/frames" "$KEY" "$1" <<'EOF'
import json, sys, time, urllib.request
from pathlib import Path
frames, url, key, label = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tp = fp = fn = tn = 0
ms = []
models = set()
for png in sorted(frames.glob("*.png")):
    truth = json.loads(png.with_suffix(".json").read_text())
    bad = (not truth["track"]) or any(s["label"] != "good" and s["visible"] >= 0.9 for s in truth["slots"])
    req = urllib.request.Request(url, data=png.read_bytes(), headers={"Authorization": f"Bearer {key}", "Content-Type": "image/png"})
    t0 = time.time()
    ans = json.loads(urllib.request.urlopen(req, timeout=60).read())
    ms.append(1000 * (time.time() - t0))
    models.add(f"{ans['model']['name']} {ans['model']['version']}")
    flagged = ans["verdict"] == "defect"
    tp += bad and flagged; fn += bad and not flagged; fp += flagged and not bad; tn += not (bad or flagged)
ms.sort()
print(f"{label} ({', '.join(sorted(models))}): {tp + fn} defective frames, {tp} flagged; {fp + tn} good frames, {fp} flagged "
      f"(false alarms {fp / max(1, fp + tn):.1%}); median {ms[len(ms) // 2]:.0f} ms a frame")
EOF
}
run "judge test frames (default model)" judge "default crop model"

echo "== 4. harvest the camera's fastener crops (uncurated: defects the line has stay in)"
run "harvest training crops" "$RS" --config "$W/railscope.toml" harvest --frames "$W/frames-train/frames" --camera cam-07 --out "$W/harvest-train"
run "harvest calibration crops" "$RS" --config "$W/railscope.toml" harvest --frames "$W/frames-calib/frames" --camera cam-07 --out "$W/harvest-calib"
run "harvest labelled test crops" "$RS" --config "$W/railscope.toml" harvest --frames "$W/frames-test/frames" --camera cam-07 --out "$W/harvest-test" --truth

echo "== 5. a person checks 8 crops on the contact sheets (stand-in: 8 the ground truth calls good)"
"$RS" --config "$W/railscope.toml" harvest --frames "$W/frames-train/frames" --camera cam-07 --out "$W/harvest-train-truth" --truth > /dev/null
"$PY" - "$W" <<'EOF'
import json, random, sys
from pathlib import Path
w = Path(sys.argv[1])
truth = w / "harvest-train-truth" / "test"
good = sorted(p.name for p in (truth / "good").glob("*.png"))
bad = sorted(p.name for d in truth.iterdir() if d.name != "good" for p in d.glob("*.png"))
pool = w / "harvest-train"
(pool / "known_good.txt").write_text("# checked by eye on the contact sheets\n" + "\n".join(random.Random(7).sample(good, 8)) + "\n")
# the truth only feeds the training log's report of what it dropped, never the training
(pool / "pollution.json").write_text(json.dumps({"defective": bad}) + "\n")
print(f"{pool}: {len(good) + len(bad)} crops, {len(bad)} of them defective (not known to training)")
EOF
rm -rf "$W/harvest-train-truth"

echo "== 6. robust training and calibration from normal crops alone"
cd models/train
run "train (robust) + calibrate + evaluate" env OMP_WAIT_POLICY=PASSIVE "$TPY" -m railscope_train.train --data "../../$W/harvest-train" \
    --name track-cam-07 --epochs "$EPOCHS" --threads 2 --lr 1e-3 --corruption structural --photometric standardize \
    --augment --pooling topk --lam auto --robust --known-good "../../$W/harvest-train/known_good.txt" \
    --calib-data "../../$W/harvest-calib" --test-data "../../$W/harvest-test" \
    --out-dir "../../$W/models" --calibration-dir "../../$W/calibration" $TRAIN_FLAGS
cd ../..
grep -E '^robust' "$W/models/track-cam-07/manifest.toml" || true

echo "== 7. give the camera its own model in the running service (server.model stays for the others)"
# cam-07's [[cameras]] table ends the file, so the line joins it
echo "model = \"$W/models/track-cam-07\"" >> "$W/railscope.toml"
tail -n 7 "$W/railscope.toml"
run "reload" curl -fsS -X POST -H "Authorization: Bearer $ADMIN" "http://$BIND/admin/reload"
echo
curl -fsS "http://$BIND/readyz"; echo
run "judge test frames (camera model)" judge "camera's own model"

echo "== done in $(( $(date +%s) - t_start )) s"
printf '%s\n' "${TIMES[@]}"
