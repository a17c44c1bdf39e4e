# railscope — every target installs what it needs on a fresh machine (idempotent, fast when done).
#   make demo   build and run the demo on the shipped default model
#   make test   everything CI runs
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TRAIN_VENV := .venv-train
PY := $(VENV)/bin/python
TPY := $(TRAIN_VENV)/bin/python
TRAIN_DIR := models/train
# paths as seen from models/train (python -m railscope_train runs there)
UP := ../..

# make train DATA=path/to/mvtec-folder ARCH=nested-edgan SIZE=64 NAME=my-model [EPOCHS=24] [CALIB=dir] [TEST=dir]
DATA ?= data/synth-train
ARCH ?= nested-edgan
SIZE ?= 64
NAME ?= $(ARCH)
EPOCHS ?= 24
CALIB ?=
TEST ?=
# The detection recipe (docs/models.md, "What each change gave"): per-image standardize, photometric /
# focus / noise augmentation, structural restoration damage, topk pooling of R, lambda chosen on
# pseudo-anomalies; calibration on normals alone (CALIB's normals, or 10 % of DATA's held out).
RECIPE ?= --lr 1e-3 --corruption structural --photometric standardize --augment --pooling topk --lam auto
# the shipped default; the two baselines keep the recipe they were shipped with (seed 004's losses,
# restoration training, mean pooling, best-F1 calibration on the labelled calibration set)
SHIPPED_FLAGS ?= $(RECIPE) --epochs 24
BASELINE_FLAGS ?= --lr 1e-3 --epochs 40 --corruption restore --calib-method best-f1

.PHONY: help venv train-venv data data-robustness data-track data-polluted onboard-demo train train-shipped py-test py-test-torch test demo demo-cli clean

help:
	@echo "make demo    - install, build and run the service on the shipped model with simulated cameras"
	@echo "make demo-cli - the offline CLI (infer, search, evaluate) on a fresh synthetic set"
	@echo "make test    - the full test suite (what CI runs)"
	@echo "make data    - generate the synthetic train/calibration/test sets into data/"
	@echo "make data-robustness - nuisance-only false-alarm sets and the harder generalisation set into data/"
	@echo "make data-track - realistic track frames with slot ground truth (railscope slots --frames data/track-eval-*)"
	@echo "make onboard-demo - bring your own line: frames -> harvest -> robust training -> reload -> judged (ONBOARD_FRAMES=200 ONBOARD_EPOCHS=12)"
	@echo "make data-polluted - training pools with 5 % / 10 % defective crops for robust training (train.py --robust)"
	@echo "make train DATA=dir ARCH=nested-edgan|ganomaly|skip-ganomaly|ade-gan SIZE=64 NAME=name [KNOWN_GOOD=list: robust training]"

# Light venv: generator, reference scorer, evaluation, and libonnxruntime.so for the Rust binary.
venv: $(VENV)/.installed
$(VENV)/.installed: $(TRAIN_DIR)/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r $(TRAIN_DIR)/requirements.txt
	@touch $@

# Training venv: PyTorch from PyPI (pulls its CUDA packages, a few GB). Offline work only.
train-venv: $(TRAIN_VENV)/.installed
$(TRAIN_VENV)/.installed: $(TRAIN_DIR)/requirements.txt $(TRAIN_DIR)/requirements-train.txt
	@test -x $(TPY) || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TPY) -m pip install -q --disable-pip-version-check -r $(TRAIN_DIR)/requirements-train.txt
	@touch $@

# The shipped models' data: train (seed 1), calibration (seed 2) and held-out test (seed 3) sets.
data: venv
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-train --seed 1 --train 1600 --test-good 0 --test-defect 0
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-calib --seed 2 --train 0 --test-good 1000 --test-defect 25
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-test --seed 3 --train 0 --test-good 200 --test-defect 25

# Robustness sets (test split only). synth-nuisance-<N>: 200 good images with every nuisance neutral
# except N, drawn at the strong end of its training range (false-alarm rate per nuisance; "neutral"
# is the all-neutral control). synth-test-hard: every nuisance range widened by 30 % (generalisation).
# synth-test-below: synth-test's 425 crops lit from below, as a frame's far row is once flipped back.
NUISANCE_SEEDS := dark:30 bright:31 blur:32 jitter:33 stripes:34 stains:35 neutral:36
data-robustness: venv
	@for ns in $(NUISANCE_SEEDS); do n=$${ns%%:*}; s=$${ns##*:}; \
		echo "synth-nuisance-$$n (seed $$s)"; \
		(cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-nuisance-$$n --seed $$s \
			--nuisance $$n --train 0 --test-good 200 --test-defect 0) || exit 1; \
	done
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-test-hard --seed 5 --harder --train 0 --test-good 200 --test-defect 25
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-test-below --seed 3 --light below --train 0 --test-good 200 --test-defect 25

# Realistic track frames (railscope_train.track) with per-slot ground truth: an evaluation set
# per camera preset for `railscope slots` (seed 12: 100 frames + 10 without track each).
TRACK_CAMERAS := across-1mp across-2mp down-1mp down-4mp
data-track: venv
	@for c in $(TRACK_CAMERAS); do \
		(cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.track --out $(UP)/data/track-eval-$$c --camera $$c \
			--seed 12 --frames 100 --no-track 10) || exit 1; \
	done

# Uncurated pools for robust training (issue 11): synth-train with 5 % / 10 % defective crops from
# a defect set of their own (seed 41), plus pollution.json (truth) and known_good.txt (8 checked crops).
data-polluted: data
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-pollutant --seed 41 --train 0 --test-good 0 --test-defect 20
	@for p in 5 10; do \
		(cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.pollute --clean $(UP)/data/synth-train --defects $(UP)/data/synth-pollutant \
			--share 0.$$(printf %02d $$p) --out $(UP)/data/synth-train-polluted-$$p) || exit 1; \
	done

# "Bring your own line" end to end (docs/onboarding.md): frames -> harvest -> robust training ->
# calibration -> POST /admin/reload into a running service -> the camera's frames judged; timed.
# ONBOARD_FRAMES=200 ONBOARD_EPOCHS=12 by default; 20 and 1 for a quick look.
ONBOARD_FRAMES ?= 200
ONBOARD_EPOCHS ?= 12
onboard-demo: venv train-venv build
	FRAMES=$(ONBOARD_FRAMES) EPOCHS=$(ONBOARD_EPOCHS) bash $(TRAIN_DIR)/onboard_demo.sh

train: train-venv
	cd $(TRAIN_DIR) && $(UP)/$(TPY) -m railscope_train.train --data $(abspath $(DATA)) --arch $(ARCH) --size $(SIZE) \
		--name $(NAME) $(RECIPE) --epochs $(EPOCHS) $(if $(CALIB),--calib-data $(abspath $(CALIB))) $(if $(TEST),--test-data $(abspath $(TEST))) \
		$(if $(KNOWN_GOOD),--robust --known-good $(abspath $(KNOWN_GOOD)))

# Reproduces the shipped packages (models/<arch>, calibration/<arch>.json) from `make data`.
# nested-edgan trains in NESTED_STAGES stages of 24 epochs, each a warm restart from the one
# before (docs/models.md rows 11, 12, 17): stage 2 from stage 1's checkpoint, later ones from the
# package the stage before wrote (train.py --init-from models/nested-edgan); from stage
# GEOMETRIC_FROM on, the restoration damage adds the geometric kinds (--corruption geometric).
# The baselines train in one run.
NESTED_STAGES ?= 4
GEOMETRIC_FROM ?= 4
train-shipped: data train-venv
	for run in $$(seq -f nested-edgan:%g 1 $(NESTED_STAGES)) ganomaly:1 skip-ganomaly:1; do \
		arch=$${run%%:*}; stage=$${run##*:}; \
		if [ $$arch = nested-edgan ]; then flags="$(SHIPPED_FLAGS)"; else flags="$(BASELINE_FLAGS)"; fi; \
		if [ $$stage = 2 ]; then cp runs/nested-edgan/checkpoint.pt runs/nested-edgan-stage1.pt; \
			flags="$$flags --init-from $(CURDIR)/runs/nested-edgan-stage1.pt"; fi; \
		if [ $$stage -gt 2 ]; then flags="$$flags --init-from $(CURDIR)/models/nested-edgan"; fi; \
		if [ $$arch = nested-edgan ] && [ $$stage -ge $(GEOMETRIC_FROM) ]; then flags="$$flags --corruption geometric"; fi; \
		cd $(TRAIN_DIR) && $(UP)/$(TPY) -m railscope_train.train --data $(UP)/data/synth-train --arch $$arch --size $(SIZE) \
			--calib-data $(UP)/data/synth-calib --test-data $(UP)/data/synth-test --threads 2 $$flags \
			--data-label "railscope_train.synth seed=1 train=1600 size=128" \
			--test-data-label "railscope_train.synth seed=3 good=200 defect=25/type size=128" || exit 1; cd $(CURDIR); \
	done
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.parity

py-test: venv
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m pytest -q tests
	PYTHONPATH=$(TRAIN_DIR) $(PY) -m pytest -q benches/service  # the load benchmark's Python baseline scores like the reference

# torch-dependent tests (model shapes, losses, export parity, a smoke training run)
py-test-torch: train-venv
	cd $(TRAIN_DIR) && $(UP)/$(TPY) -m pytest -q tests_torch

test: py-test py-test-torch
	$(MAKE) rust-test prometheus-test api-test web-test

# The service on the shipped default model with simulated line cameras: prints the dashboard
# and API URLs, runs DEMO_SECONDS (0 = until Ctrl-C), then stops both cleanly.
DEMO_BIND ?= 127.0.0.1:8080
DEMO_CAMERAS ?= 4
DEMO_FPS ?= 2
DEMO_SECONDS ?= 300
# The simulated cameras send frames of the held-out test set (seed 3, generated once, ~10 s): 200
# normals and 225 defects, drawn 10 % defective, so the share flagged is a fair sample of what
# the model does, not of the 24 committed fixture images.
DEMO_FRAMES := data/synth-test
$(DEMO_FRAMES)/manifest.json: | $(VENV)/.installed
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/$(DEMO_FRAMES) --seed 3 --train 0 --test-good 200 --test-defect 25

demo: venv build $(DEMO_FRAMES)/manifest.json
	@set -euo pipefail; \
	store=data/demo-service; mkdir -p $$store; \
	RAILSCOPE__SERVER__BIND=$(DEMO_BIND) RAILSCOPE__STORAGE__PATH=$$store $(RAILSCOPE) serve > $$store/serve.log 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null || true' EXIT INT TERM; \
	for i in $$(seq 1 120); do curl -fs http://$(DEMO_BIND)/readyz >/dev/null 2>&1 && break; \
		kill -0 $$server 2>/dev/null || { cat $$store/serve.log; exit 1; }; sleep 0.5; done; \
	curl -fs http://$(DEMO_BIND)/readyz; echo; \
	echo ""; \
	echo "railscope is inspecting frames from $(DEMO_CAMERAS) simulated cameras at $(DEMO_FPS) frames/s each:"; \
	echo "  dashboard   http://$(DEMO_BIND)/          (log in with demo-inspector-token, or demo-admin-token)"; \
	echo "  API         http://$(DEMO_BIND)/v1/cameras  (Authorization: Bearer demo-inspector-token; docs/api.yaml)"; \
	echo "  metrics     http://$(DEMO_BIND)/metrics"; \
	echo "  post a frame: curl -H 'Authorization: Bearer demo-key-cam-01' -H 'Content-Type: image/png' \\"; \
	echo "      --data-binary @tests/fixtures/fasteners/test/good/000000.png http://$(DEMO_BIND)/v1/cameras/cam-01/frames"; \
	echo "  results in $$store/ (railscope.db, media/), service log $$store/serve.log"; \
	echo ""; \
	if [ "$(DEMO_SECONDS)" = "0" ]; then duration=31536000; else duration=$(DEMO_SECONDS); fi; \
	$(RAILSCOPE) simulate --url http://$(DEMO_BIND) --cameras $(DEMO_CAMERAS) --fps $(DEMO_FPS) --duration $$duration --dir $(DEMO_FRAMES)

# The offline CLI on a fresh synthetic set (seed 11, never seen in training): per-image verdicts
# with heatmaps, fastener search on whole track frames, an evaluation report with ROC/PR curves.
DEMO := data/demo
demo-cli: venv build
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/$(DEMO) --seed 11 --train 0 --test-good 20 --test-defect 3 --frames 2
	$(RAILSCOPE) infer $(DEMO)/test/*/*.png --heatmap $(DEMO)/heatmaps > $(DEMO)/verdicts.jsonl
	@echo "per-image verdicts: $(DEMO)/verdicts.jsonl, heatmaps: $(DEMO)/heatmaps/"
	@head -3 $(DEMO)/verdicts.jsonl
	$(RAILSCOPE) infer --roi search $(DEMO)/frames/*.png --heatmap $(DEMO)/heatmaps
	$(RAILSCOPE) evaluate --data $(DEMO) --out $(DEMO)/report
	@echo "report: $(DEMO)/report/report.md (roc.png, pr.png)"

clean:
	rm -rf target runs reports

# --- rust, service, dashboard ---
# Debian packages: what the opencv crate needs (headers + libclang for its binding generator),
# Prometheus (promtool and the server, for the alert-rule and scrape tests), Chromium (the
# dashboard's browser tests) and curl (make demo).
RUST_APT_DEPS := libopencv-dev clang libclang-dev prometheus chromium curl
CARGO ?= cargo
RAILSCOPE := target/release/railscope

.PHONY: rust-deps build rust-test bench bench-service prometheus-test api-test web-test serve
# Idempotent and fast when installed: only asks apt for what dpkg does not have.
rust-deps:
	@missing=""; for p in $(RUST_APT_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

build: rust-deps
	$(CARGO) build --release

# --release so clippy and the tests reuse the release build's compiled dependencies (opencv's
# generated bindings are built once per profile). The tests load libonnxruntime.so from .venv.
rust-test: rust-deps venv
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) test --release --lib --bins --tests  # no doctests: the last summary line counts real tests

# Alert rules: syntax, and promtool unit tests that each alert fires when it should and only then.
# Then the Grafana dashboard (docker/grafana/railscope.json): every panel's query run by a real
# Prometheus scraping a real railscope fed by the simulator, all on 127.0.0.1 (about 20 s).
prometheus-test: rust-deps venv build
	promtool check config docker/prometheus/prometheus.yml
	promtool test rules docker/prometheus/alerts_test.yml
	$(PY) docker/grafana/check_dashboard.py
	$(PY) docker/grafana/check_alerts.py

# docs/api.yaml against the real service (schemathesis: no 5xx, documented codes and bodies).
$(VENV)/.api-installed: tests/api/requirements.txt $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -r tests/api/requirements.txt
	@touch $@
api-test: build $(VENV)/.api-installed
	bash tests/api/conformance.sh $(PY)

# Dashboard: unit tests of the page logic, then end-to-end in headless Chromium against a real
# railscope fed by the simulator (screenshots in web/test-artifacts/).
web-test: rust-deps venv build
	cd web && npm ci --no-audit --no-fund --loglevel=error
	cd web && node --test tests/unit/*.test.mjs
	cd web && node --test tests/e2e/*.test.mjs

# The HTTP service under bounded load on 127.0.0.1 (saturation, 50 % / 80 % paced, batching on
# and off, RSS) against the engine's ceiling and a plain Python onnxruntime server; about two
# minutes; writes its section of docs/performance.md and data/bench/service.json.
bench-service: build venv
	PYTHONPATH=$(TRAIN_DIR) $(PY) benches/service/load_bench.py --wait-idle 300 --out data/bench/service.json --write docs/performance.md

# The service in the foreground on the configured model (config/railscope.toml).
serve: venv build
	$(RAILSCOPE) serve

# Micro-benchmarks of the CPU stages, then the full figures into docs/performance.md.
bench: build venv data-track
	$(CARGO) bench --bench pipeline
	$(RAILSCOPE) bench --write docs/performance.md $(foreach c,$(TRACK_CAMERAS),--track data/track-eval-$(c))
# --- end rust ---

# The CPU container image (docker/Dockerfile) built with podman on a local Debian base (no registry
# needed), started on a free loopback port, one frame posted and its verdict checked, health check
# run, container removed; timings printed (docker/README.md). Not in `make test`.
.PHONY: image
image:
	bash docker/image-check.sh
