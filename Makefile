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

# make train DATA=path/to/mvtec-folder ARCH=nested-edgan SIZE=64 NAME=my-model [EPOCHS=15] [CALIB=dir] [TEST=dir]
DATA ?= data/synth-train
ARCH ?= nested-edgan
SIZE ?= 64
NAME ?= $(ARCH)
EPOCHS ?= 15
CALIB ?= $(DATA)
TEST ?=
# what the shipped packages were trained with beyond the defaults (docs/models.md says why)
SHIPPED_FLAGS ?= --lr 1e-3 --epochs 40 --corruption restore

.PHONY: help venv train-venv data train train-shipped py-test py-test-torch test demo clean

help:
	@echo "make demo    - install, build and run railscope on the shipped model"
	@echo "make test    - the full test suite (what CI runs)"
	@echo "make data    - generate the synthetic train/calibration/test sets into data/"
	@echo "make train DATA=dir ARCH=nested-edgan|ganomaly|skip-ganomaly SIZE=64 NAME=name"

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
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-calib --seed 2 --train 0 --test-good 200 --test-defect 25
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/data/synth-test --seed 3 --train 0 --test-good 200 --test-defect 25

train: train-venv
	cd $(TRAIN_DIR) && $(UP)/$(TPY) -m railscope_train.train --data $(abspath $(DATA)) --arch $(ARCH) --size $(SIZE) \
		--name $(NAME) --epochs $(EPOCHS) --calib-data $(abspath $(CALIB)) $(if $(TEST),--test-data $(abspath $(TEST)))

# Reproduces the shipped packages (models/<arch>, calibration/<arch>.json) from `make data`.
train-shipped: data train-venv
	for arch in nested-edgan ganomaly skip-ganomaly; do \
		cd $(TRAIN_DIR) && $(UP)/$(TPY) -m railscope_train.train --data $(UP)/data/synth-train --arch $$arch --size $(SIZE) \
			--calib-data $(UP)/data/synth-calib --test-data $(UP)/data/synth-test --threads 2 $(SHIPPED_FLAGS) \
			--data-label "railscope_train.synth seed=1 train=1600 size=128" \
			--test-data-label "railscope_train.synth seed=3 good=200 defect=25/type size=128" || exit 1; cd $(CURDIR); \
	done
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.parity

py-test: venv
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m pytest -q tests

# torch-dependent tests (model shapes, losses, export parity, a smoke training run)
py-test-torch: train-venv
	cd $(TRAIN_DIR) && $(UP)/$(TPY) -m pytest -q tests_torch

test: py-test py-test-torch
	$(MAKE) rust-test

# Until the HTTP service lands: a fresh synthetic inspection run (seed 11, never seen in training)
# scored by the railscope binary on the shipped default model — per-image verdicts with heatmaps,
# the fastener search on whole track frames, and an evaluation report with ROC/PR curves.
DEMO := data/demo
demo: venv build
	cd $(TRAIN_DIR) && $(UP)/$(PY) -m railscope_train.synth --out $(UP)/$(DEMO) --seed 11 --train 0 --test-good 20 --test-defect 3 --frames 2
	$(RAILSCOPE) infer $(DEMO)/test/*/*.png --heatmap $(DEMO)/heatmaps > $(DEMO)/verdicts.jsonl
	@echo "per-image verdicts: $(DEMO)/verdicts.jsonl, heatmaps: $(DEMO)/heatmaps/"
	@head -3 $(DEMO)/verdicts.jsonl
	$(RAILSCOPE) infer --roi search $(DEMO)/frames/*.png --heatmap $(DEMO)/heatmaps
	$(RAILSCOPE) evaluate --data $(DEMO) --out $(DEMO)/report
	@echo "report: $(DEMO)/report/report.md (roc.png, pr.png)"

clean:
	rm -rf target runs reports

# --- rust (owned by inference core) ---
# System packages the opencv crate needs (headers + libclang for its binding generator).
RUST_APT_DEPS := libopencv-dev clang libclang-dev
CARGO ?= cargo
RAILSCOPE := target/release/railscope

.PHONY: rust-deps build rust-test bench
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

# Micro-benchmarks of the CPU stages, then the full figures into docs/performance.md.
bench: build venv
	$(CARGO) bench --bench pipeline
	$(RAILSCOPE) bench --write docs/performance.md
# --- end rust ---
