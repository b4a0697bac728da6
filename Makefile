# Attention pose: 2D HRNet+CAM detector and 3D spatial-temporal lifter.  `make help` lists targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV       ?= .venv
PY         ?= $(VENV)/bin/python
# torch is installed before the package and kept when already present. TORCH_INDEX empty = pip's
# configured index: on Linux, PyPI's torch wheel is the CUDA build (several GB of nvidia-* wheels).
# CPU-only build: TORCH_INDEX=https://download.pytorch.org/whl/cpu. A CUDA build that matches the
# driver (`nvidia-smi` prints the highest CUDA it supports): TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
GPUS       ?= 0
PRECISION  ?= 32
FRAMES     ?= 243
DATA       ?= synthetic
ARGS       ?=
PYTEST_ARGS ?=
# 2D detector: BACKBONE w32|w48, CAM a cam_placement preset (empty: the config's, i.e. paper),
# CKPT a .ckpt for eval-2d, BOXES gt|det.
BACKBONE   ?= w32
CAM        ?=
CKPT       ?=
BOXES      ?= det
# THREADS=N: OMP_NUM_THREADS / MKL_NUM_THREADS for every target (train, eval, prepare, infer,
# demo, tests...); on a small CPU box THREADS=1 is often much faster than the default.
THREADS    ?=
ifneq ($(strip $(THREADS)),)
export OMP_NUM_THREADS := $(THREADS)
export MKL_NUM_THREADS := $(THREADS)
endif

STAMP := $(VENV)/.installed

.PHONY: help install test test-all test-slow lint format clean data-2d prepare-3d

help: ## List the targets and the variables they take
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: VENV PY TORCH_SPEC TORCH_INDEX GPUS PRECISION FRAMES DATA KEYPOINTS ROOT BACKBONE CAM"
	@echo "  CKPT EVAL_DIR BOXES THREADS SWEEP DDP RESUME ARGS PYTEST_ARGS INPUT DET_CKPT LIFT_CKPT INFER_BOXES PEOPLE INFER_OUT"
	@echo "  RENDER KP_NAME RENDER_ARGS QUICK"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
		$(PY) -m pip install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); \
	fi
	$(PY) -m pip install -e ".[dev]"
	@# W&B's sweep-config validator (package `sweeps`, wandb's [sweeps] extra) for the tests. Its
	@# own requirements pin numpy<2, so it goes, without them, into a folder of its own.
	@$(PY) -m pip install -q --no-deps --upgrade --target $(VENV)/wandb-sweeps "sweeps==0.3.0" \
		|| echo "W&B sweeps validator not installed: its test will be skipped"
	@$(PY) -c "import torch; print('installed torch', torch.__version__, '| CUDA build:', torch.version.cuda or 'none (CPU only)', '| CUDA usable here:', torch.cuda.is_available())" > $(VENV)/.torch-info
	@touch $(STAMP)

install: $(STAMP) ## Create .venv (if missing), install torch first, then this package with dev tools
	@cat $(VENV)/.torch-info 2>/dev/null || true

test: install ## Fast test suite (no slow, no GPU tests)
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-slow: install ## Only the slow tests (multi-process DDP, resume, end-to-end)
	$(PY) -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

test-all: install ## Every test that can run on this machine (slow included; gpu only with CUDA)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff check + ruff format --check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## Apply ruff formatting and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean: ## Remove caches and build leftovers (keeps .venv, data/ and runs/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -not -path "./.venv/*" -prune -exec rm -rf {} +

data-2d: install ## Generate the synthetic COCO-format 2D set in data/synthetic_coco (seconds)
	$(PY) -m datamodules.synthetic_coco --out data/synthetic_coco $(ARGS)

# 3D data: KEYPOINTS the 2D source data_2d_h36m_<KEYPOINTS>.npz (h36m: always; synthetic: only
# when given, else its config's synthetic_det); ROOT the data folder when not the config's, e.g.
# `make train-3d DATA=synthetic ROOT=data/h36m_render KEYPOINTS=ours` (our exported keypoints).
KEYPOINTS ?= cpn_ft_h36m_dbb
ROOT      ?=
KEYPOINTS_GIVEN = $(filter command line environment,$(origin KEYPOINTS))
prepare-3d: install ## Build the 3D cache: DATA=synthetic (generate; with KEYPOINTS= prepare that source) | h36m KEYPOINTS= | 3dhp; ROOT=
	@case "$(DATA)" in \
	  synthetic) $(if $(KEYPOINTS_GIVEN),$(PY) -m datamodules.h36m prepare --root $(or $(ROOT),data/synthetic_h36m) --keypoints $(KEYPOINTS),$(PY) -m datamodules.synthetic_h36m --out $(or $(ROOT),data/synthetic_h36m)) $(ARGS) ;; \
	  h36m) $(PY) -m datamodules.h36m prepare --root $(or $(ROOT),data/h36m) --keypoints $(KEYPOINTS) $(ARGS) ;; \
	  3dhp) $(PY) -m datamodules.mpi_inf_3dhp prepare --root $(or $(ROOT),data/mpi_inf_3dhp) $(ARGS) ;; \
	  *) echo "DATA must be synthetic, h36m or 3dhp (got '$(DATA)')"; exit 2 ;; \
	esac


# --- 2D detector (HRNet + CAM) --------------------------------------------------------------------
POSE2D_CFG = $(if $(filter synthetic,$(DATA)),configs/pose2d/synthetic.yaml,configs/pose2d/$(if $(filter w48,$(BACKBONE)),w48_cam_256x192,w32_cam_256x192).yaml)
POSE2D_DEV = $(if $(filter 0,$(GPUS)),--trainer.accelerator=cpu --trainer.devices=1,--trainer.accelerator=gpu --trainer.devices=$(GPUS)$(if $(filter 1,$(GPUS)),, --trainer.strategy=ddp))
POSE2D_DET = $(if $(filter synthetic,$(DATA)),person_detection_results/synthetic_val2017_detections.json,person_detection_results/COCO_val2017_detections_AP_H_56_person.json)
POSE2D_BOXES = $(if $(filter gt,$(BOXES)),gt,$(POSE2D_DET))
# Evaluation output folder: one per checkpoint (run name + file stem); EVAL_DIR= overrides it.
CKPT_TAG = $(notdir $(patsubst %/checkpoints/,%,$(dir $(CKPT))))-$(basename $(notdir $(CKPT)))
POSE2D_EVAL_DIR = $(or $(EVAL_DIR),runs/pose2d/eval-$(DATA)-$(BOXES)-$(CKPT_TAG))

.PHONY: train-2d eval-2d bench-2d
train-2d: install ## Train the 2D detector (BACKBONE=w32|w48 CAM= DATA=coco|synthetic GPUS PRECISION ARGS)
	$(PY) -m pose2d fit --config $(POSE2D_CFG) $(POSE2D_DEV) --trainer.precision=$(PRECISION) $(if $(CAM),--model.cam_placement=$(CAM)) $(RESUME_ARG) $(ARGS)

eval-2d: install ## Evaluate CKPT (a pose2d .ckpt or an official pose_hrnet_*.pth) on COCO val (BOXES=gt|det), print a Table I row
	@test -n "$(CKPT)" || { echo "set CKPT=path/to.ckpt"; exit 2; }
	$(PY) -m pose2d validate --config $(POSE2D_CFG) $(POSE2D_DEV) --trainer.precision=$(PRECISION) --ckpt_path=$(CKPT) --data.val_boxes=$(POSE2D_BOXES) --run.dir=$(POSE2D_EVAL_DIR) $(ARGS)
	$(PY) -m pose2d.table $(POSE2D_EVAL_DIR)/metrics.json --ckpt $(CKPT) --boxes $(BOXES)

bench-2d: install ## HRNet reference vs fast path, side by side: train img/s, peak memory, ratios (QUICK=1: short)
	$(PY) -m pose2d.bench $(if $(CAM),--cam $(CAM)) $(if $(filter 1 yes true,$(QUICK)),--quick) $(ARGS)


# --- sweeps / ablations (Tables VI-X) --------------------------------------------------------------
SWEEP ?= table8
RESUME ?= 0
RESUME_ARG = $(if $(filter 1 yes true,$(RESUME)),--ckpt_path=last)
DDP ?= 0
# callbacks.sweep options, e.g. SWEEP_ARGS="--dry-run" or "--count 3 --entity me"
SWEEP_ARGS ?=

.PHONY: sweep ablate
sweep: install ## W&B sweep SWEEP=table6..10: GPUS=N one agent per GPU (pinned, devices=1); DDP=N one agent, DDP runs (wandb login)
	$(PY) -m callbacks.sweep configs/sweeps/$(SWEEP).yaml --gpus $(GPUS) $(if $(filter-out 0 1,$(DDP)),--ddp $(DDP)) $(SWEEP_ARGS)

ablate: install ## Run the grid of SWEEP locally, no W&B server (GPUS=N: N points at once, ARGS passed on); table in runs/ablate/
	$(PY) -m callbacks.ablate configs/sweeps/$(SWEEP).yaml --gpus $(GPUS) -- $(ARGS)


# --- the system: inference, demo, our 2D keypoints for the lifter (Table V), ONNX -------------------
INPUT       ?=
DET_CKPT    ?= runs/demo/2d/checkpoints/last.ckpt
LIFT_CKPT   ?= runs/demo/3d/checkpoints/last.ckpt
INFER_BOXES ?= full
PEOPLE      ?= main
INFER_OUT   ?= runs/infer
RENDER      ?= data/h36m_render
KP_NAME     ?= ours
RENDER_ARGS ?= --actions Directions Greeting Walking --max-frames 80

.PHONY: demo infer render-h36m export-2d-keypoints export-onnx
demo: install ## Whole system on synthetic data: train small 2D+3D (or reuse runs/demo), render a clip, infer, pictures
	$(PY) -m pose3d.demo $(ARGS)

infer: install ## Image/video → 2D → 3D + pictures: INPUT= DET_CKPT= LIFT_CKPT= INFER_BOXES=full|track|onnx:FILE|coco_json:PATH PEOPLE=main|all INFER_OUT=
	@test -n "$(INPUT)" || { echo "set INPUT=video.mp4 | image folder | image"; exit 2; }
	$(PY) -m pose3d.infer --input "$(INPUT)" --detector $(DET_CKPT) --lifter $(LIFT_CKPT) --out $(INFER_OUT) --boxes $(INFER_BOXES) --people $(PEOPLE) $(ARGS)

render-h36m: install ## Table V step 1: render data/synthetic_h36m as H36M-style videos into RENDER= (RENDER_ARGS subset)
	$(PY) -m datamodules.render_h36m --source data/synthetic_h36m --out $(RENDER) $(RENDER_ARGS)

export-2d-keypoints: install ## Table V step 2: DET_CKPT over RENDER= videos → RENDER/data_2d_h36m_$(KP_NAME).npz
	$(PY) -m pose2d.export_keypoints --root $(RENDER) --detector $(DET_CKPT) --name $(KP_NAME) $(ARGS)

export-onnx: install ## Both networks to ONNX (opset 17, dynamic batch) + onnxruntime parity (needs .[deploy])
	$(PY) -m pose2d.export_onnx --ckpt $(DET_CKPT) --out runs/onnx/detector.onnx --check
	$(PY) -m pose3d.export_onnx --ckpt $(LIFT_CKPT) --out runs/onnx/lifter.onnx --check


# --- 3D lifter (PoseFormer + SAM/TAM) -------------------------------------------------------------
POSE3D_CFG = configs/pose3d/$(if $(filter synthetic,$(DATA)),synthetic,$(if $(filter 3dhp,$(DATA)),3dhp,paper)).yaml
POSE3D_DEV = $(if $(filter 0,$(GPUS)),--trainer.accelerator=cpu --trainer.devices=1,--trainer.accelerator=gpu --trainer.devices=$(GPUS)$(if $(filter 1,$(GPUS)),, --trainer.strategy=ddp))
# FRAMES applies to h36m/3dhp always, to synthetic only when given explicitly (its config uses 9).
POSE3D_FRAMES = $(if $(or $(filter-out synthetic,$(DATA)),$(filter command line environment,$(origin FRAMES))),--data.init_args.frames=$(FRAMES))
POSE3D_KEYPOINTS = $(if $(or $(filter h36m,$(DATA)),$(and $(filter synthetic,$(DATA)),$(KEYPOINTS_GIVEN))),--data.init_args.keypoints=$(KEYPOINTS))
POSE3D_DATA = $(POSE3D_FRAMES) $(POSE3D_KEYPOINTS) $(if $(ROOT),--data.init_args.root=$(ROOT))
POSE3D_EVAL_DIR = $(or $(EVAL_DIR),runs/pose3d/eval-$(DATA)-$(CKPT_TAG))

.PHONY: train-3d eval-3d bench-3d
train-3d: install ## Train the 3D lifter (DATA=h36m|3dhp|synthetic FRAMES KEYPOINTS ROOT GPUS PRECISION ARGS)
	$(PY) -m pose3d fit --config $(POSE3D_CFG) $(POSE3D_DEV) --trainer.precision=$(PRECISION) $(POSE3D_DATA) $(RESUME_ARG) $(ARGS)

eval-3d: install ## Test CKPT (a pose3d .ckpt, or one from python -m pose3d.convert) and print the Table II (H36M P1/P2/MPJVE per action) or Table IV (3DHP) row
	@test -n "$(CKPT)" || { echo "set CKPT=path/to.ckpt"; exit 2; }
	$(PY) -m pose3d test --config $(POSE3D_CFG) $(POSE3D_DEV) --trainer.precision=$(PRECISION) $(POSE3D_DATA) --ckpt_path=$(CKPT) --run.dir=$(POSE3D_EVAL_DIR) $(ARGS)
	$(PY) -m pose3d.report $(POSE3D_EVAL_DIR)/metrics.json

bench-3d: install ## Lifter reference vs fast path, side by side: train seq/s, peak memory, ratios (QUICK=1: short)
	$(PY) -m pose3d.bench $(if $(filter 1 yes true,$(QUICK)),--quick) $(ARGS)

.PHONY: bench-loaders
bench-loaders: install ## Loader throughput: COCO training images/s per worker (+16-worker projection), 3D windows/s
	$(PY) -m datamodules.loader_bench $(if $(filter 1 yes true,$(QUICK)),--quick) $(ARGS)

.PHONY: bench
bench: bench-2d bench-3d bench-loaders ## All benchmarks: 2D and 3D side by side (reference vs fast) and the loaders
