# The README's two commands: `make demo` (runtime only) and `make test` (what tests need).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
LINTER := $(VENV)/.lint-installed
# The LangGraph Agent Server (langhost) pins its own langgraph-api: a venv of its own.
SERVER_VENV := .venv-server
SERVER := $(SERVER_VENV)/.server-installed

.PHONY: setup setup-dev demo test lint docs notebooks clean

setup: $(RUNTIME)

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The local CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(RUNTIME)

setup-dev: $(DEV) $(SERVER)

$(SERVER): pyproject.toml
	test -x $(SERVER_VENV)/bin/python || $(PY) -m venv $(SERVER_VENV)
	$(SERVER_VENV)/bin/pip install -q --upgrade pip
	$(SERVER_VENV)/bin/python -c "import torch" 2>/dev/null || $(SERVER_VENV)/bin/pip install -q torch==2.13.0
	$(SERVER_VENV)/bin/pip install -q -e '.[agent-server]'
	touch $(SERVER)

# The linter alone: `make lint` needs neither the test servers nor the Agent Server's venv.
$(LINTER): $(RUNTIME)
	$(BIN)/pip install -q -e '.[lint]'
	touch $(LINTER)

$(DEV): $(RUNTIME)
	# llama-cpp-python (a real OpenAI-compatible test server) builds from source; portable flags.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[dev]'
	# Headless Chromium for the report test (Debian's package; installed only as root, else skipped).
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }; } || true
	# PostgreSQL server binaries for the Postgres tests (Debian's package; installed only as root, else skipped).
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q postgresql || { apt-get update -q && apt-get install -y -q postgresql; }; }; } || true
	# Redis for the LangGraph-server test (Debian's package; installed only as root, else skipped).
	command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q redis-server || { apt-get update -q && apt-get install -y -q redis-server; }; }; } || true
	touch $(DEV)

# A prompt the shipped model gets wrong in round 1 (seed 0) and the refiner fixes by laying it out.
DEMO_PROMPT ?= a photo of a yellow circle and a green triangle

demo: setup
	$(BIN)/gems run "$(DEMO_PROMPT)" --rounds 5 --out runs
	@echo "gems is installed in $(VENV): '. $(VENV)/bin/activate' puts it on your PATH (or call $(BIN)/gems)"

lint: $(LINTER)
	$(BIN)/ruff check gems_graph nodes tests benchmarks docs/hooks
	$(BIN)/ruff format --check gems_graph nodes tests benchmarks docs/hooks
	# Types: the packages and settings are in pyproject.toml ([tool.mypy]).
	$(BIN)/mypy

test: lint setup-dev
	$(BIN)/python -m pytest -q

# The documentation site, offline, strict: a broken link or reference fails the build (tests/test_docs.py does the same).
docs: setup-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Re-execute the offline notebooks in place (they are committed with their outputs).
notebooks: setup-dev
	$(BIN)/python notebooks/execute.py notebooks/01_quickstart.ipynb notebooks/02_memory_and_skills.ipynb

clean:
	rm -rf $(VENV) $(SERVER_VENV) .pytest_cache .mypy_cache build site *.egg-info
