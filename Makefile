# The project's single entry point. Targets create the locked environment on first use.
#   make run    - the default experiment (PPO-Prior on a generated TextWorld game, CPU LLM prior
#                 through the shared cache, tracked in MLflow)
#   make test   - the test suite (fast + real-path tests; `make test-all` adds the slow ones);
#                 installs Debian's Chromium for the browser test first when run as root
#   make docs   - the docs site into site/ (mkdocs build --strict: any warning fails)
#   make ui     - MLflow UI on the project's run store (http://127.0.0.1:5000)
#   make bench  - prior-latency benchmark (cache hit vs LLM call)
#   make results / make prior-results - the results tables in docs/results/ (hours on 2 cores)

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BOOT := .cache/bootstrap
UV := $(or $(shell uv --version >/dev/null 2>&1 && command -v uv),$(BOOT)/bin/uv)
EXPERIMENT ?= experiments/textworld_ppo_prior.yaml
PYTEST_ARGS ?=

# llama-cpp-python builds from source; its default native build (-march=native) segfaults on
# these CPUs (AMX), so build for a portable AVX2 baseline (see docs/install.md).
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_BMI2=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
export UV_PYTHON := 3.11

.PHONY: env run test test-all ensure-chromium docs ui bench results prior-results clean

env: $(VENV)/.synced

$(BOOT)/bin/uv:
	python3 -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet uv==0.13.9

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras
	touch $@

run: env
	$(PY) -m priorcache run $(EXPERIMENT) $(ARGS)

# The browser test (tests/test_ui_browser.py) drives Debian's Chromium; install it if missing.
ensure-chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0; \
	if [ "$$(id -u)" -eq 0 ]; then \
		echo "make test: installing Debian's chromium and chromium-driver for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "make test: the browser test needs Chromium; run: sudo apt-get install -y chromium chromium-driver" >&2; \
		exit 1; \
	fi

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: env ensure-chromium
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-all: PYTEST_ARGS += -m ""
test-all: test

# Material's end-of-life banner is advice, not a build warning; keep the output to the build.
docs: env
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

ui: env
	$(PY) -m priorcache ui

bench: env
	$(PY) benchmarks/prior_latency.py

# The text-domain results table (docs/results/text.md); resumes from docs/results/text.csv.
results: env
	$(PY) -m priorcache eval experiments/suites/text.yaml $(ARGS)

# The informative-prior table (docs/results/prior.md). Its inputs are made first where missing:
# the demonstrations of every domain, and each domain's LoRA adapter (committed; delete one to
# retrain it).
PRIOR_DOMAINS := alfworld twsuite babyai
PRIOR_ADAPTERS := $(foreach d,$(PRIOR_DOMAINS),priorcache/platform/llm/adapters/$(d)-lora.gguf)
DEMOS := $(foreach d,$(PRIOR_DOMAINS),.cache/demos/$(d)/card.json)

.cache/demos/alfworld/card.json: | env
	$(PY) -m priorcache demos alfworld env.alfworld.max_games=0
.cache/demos/twsuite/card.json: | env
	$(PY) -m priorcache demos twsuite env.suite.train_games=150
.cache/demos/%/card.json: | env
	$(PY) -m priorcache demos $*

priorcache/platform/llm/adapters/%-lora.gguf: | .cache/demos/%/card.json
	$(PY) -m priorcache prior finetune experiments/finetune/$*_lora.yaml
	cp .cache/finetune/$*/adapter.gguf $@

prior-results: env $(DEMOS) $(PRIOR_ADAPTERS)
	$(PY) -m priorcache eval experiments/suites/prior.yaml $(ARGS)

clean:
	rm -rf $(VENV) $(BOOT)
