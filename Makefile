# The two set-up commands: `make demo` and `make test`. Each builds .venv when it is missing (torch pinned by
# constraints.txt, so no CUDA wheels on a CPU machine), then runs. A second call installs nothing.
.PHONY: demo demo-docs screenshots foundation test quality style bench bench-gpu clean-venv

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed
EXTRAS ?= dev,quant,wandb

# Everything the project downloads or builds stays inside the tree; tests and the demo never reach the Hub.
export RS_REWARD_CACHE := $(CURDIR)/.cache
export HF_HOME := $(CURDIR)/.cache/huggingface
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export HF_HUB_DISABLE_TELEMETRY := 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM := false
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# pip compiles every installed file to bytecode one at a time (51 of the 85 s of a fresh install on 2 cores);
# compileall does it on every core (30 s). A file written for a newer Python than this one fails to compile there
# as it does in pip's own pass, and is skipped alike (hence `|| true`); imports then read it from source.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --no-compile -e ".[$(EXTRAS)]"
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(BIN)/rs-reward demo --config recipes/tiny/demo/config.yaml $(ARGS)

# Retrain the SynthRS foundation the demo starts from and publish it over the committed copy: the vision phase,
# then the conversation phase from its model, 800 more conversation steps, then five runs with isolated turns
# (about 4.2 hours alone on 2 CPU cores; rerun to resume after an interruption).
FOUNDATION_RECIPES = config_vision config config_longer config_isolated config_isolated_2 config_isolated_3 config_isolated_4 config_isolated_5
foundation: $(STAMP)
	set -e; for recipe in $(FOUNDATION_RECIPES); do \
		$(OFFLINE) $(BIN)/rs-reward foundation --config recipes/tiny/foundation/$$recipe.yaml $(ARGS); \
	done

test: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest $(ARGS)

quality: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

style: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	for b in bench/bench_synthrs.py bench/bench_scoring.py; do $(OFFLINE) $(BIN)/python $$b || exit 1; done

# On a CUDA machine: real-size Qwen2-VL with random weights (bench/README.md has the last results).
bench-gpu: $(STAMP)
	$(OFFLINE) $(BIN)/python bench/bench_gpu.py --out bench/results
	$(OFFLINE) $(BIN)/python bench/bench_gpu_grpo.py --preset qwen2-vl-2b --out bench/results

# Copy the last demo report and the figures it shows into docs/demo/ (what the README links to).
demo-docs:
	rm -rf docs/demo && mkdir -p docs/demo && cp runs/demo/report.md runs/demo/metrics.json docs/demo/
	cd runs/demo && for f in $$(grep -o '([A-Za-z0-9_/.-]*\.png)' report.md | tr -d '()'); do \
		mkdir -p ../../docs/demo/$$(dirname $$f) && cp $$f ../../docs/demo/$$f; done
	cd runs/demo && for f in $$(grep -o '([A-Za-z0-9_/.-]*browse/index\.html)' report.md | tr -d '()'); do \
		d=$$(dirname $$f); mkdir -p ../../docs/demo/$$d && cp -r $$d/index.html $$d/thumbs ../../docs/demo/$$d/; done

# PNG screenshots of the demo's pages for the README (headless Chromium: Debian's chromium and chromium-driver).
screenshots: $(STAMP)
	$(BIN)/python -m rs_reward.pages.browser --out docs/screenshots --root docs/demo \
		docs/demo/browse/index.html docs/demo/curated/reward_model/browse/index.html docs/demo/bon/browse/index.html \
		docs/demo/grpo/score_model-seed0/browse/index.html

clean-venv:
	rm -rf $(VENV)
