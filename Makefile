# The two commands: `make run` (the main job) and `make test` (the whole suite).
# Both bootstrap .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SAM CLI pins an older boto3/botocore than the project: it gets a venv of its own, made here
# (not by the tests, whose traffic stays on 127.0.0.1); its pin is in pyproject.toml.
SAM_VENV := .sam-venv
SAM_STAMP := $(SAM_VENV)/.installed
TARGET ?= local
REGION ?=
# JupyterLab refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: run test lab stop status lint clean .git-filter

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

$(SAM_STAMP): pyproject.toml $(STAMP)
	$(PYTHON) -m venv --clear $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet "$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["iot-core-pipeline"]["sam-cli"])')"
	touch $(SAM_STAMP)

# Notebooks saved in JupyterLab carry outputs; the nbstripout git filter strips them on
# `git add`, so what is committed stays clean (tests/unit/test_notebooks_clean.py checks).
.git-filter: $(STAMP)
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/nbstripout --install; fi

run: $(STAMP)
	$(BIN)/python -m pipeline.run --target $(TARGET) $(if $(REGION),--region $(REGION))

# Two worker processes, a test file per worker at a time (module fixtures stay in one process,
# each worker has its own session emulator): most of the suite waits on sockets and
# subprocesses, so two workers halve the wall time even on two cores.
test: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# JupyterLab on the repository (template.yaml, pipeline/, data/ in its file browser), opened
# on the first notebook; 127.0.0.1 only.
lab: $(STAMP) .git-filter
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --ServerApp.ip=127.0.0.1 $(ALLOW_ROOT) \
		notebooks/01-deploy-stack.ipynb

# The emulator the notebooks started in the background outlives JupyterLab: stop it.
stop: $(STAMP)
	$(BIN)/python -m emulator stop

status: $(STAMP)
	$(BIN)/python -m emulator status

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(SAM_VENV) runs .pytest_cache
