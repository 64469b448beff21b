# Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
# pytest-xdist workers: one per CPU by default (TEST_WORKERS=0 runs in-process).
TEST_WORKERS ?= auto

.PHONY: venv demo test test-slow lint format docs keras-hub clean

$(STAMP): setup.py requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.txt -e ".[cpu,dev]"
	# tensorflow-serving-api declares the full `tensorflow` wheel; tensorflow-cpu provides it.
	$(PY) -m pip install -q --no-deps -c requirements.txt tensorflow-serving-api
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m zoo.main_job

test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup
	KERAS_BACKEND=jax $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests/layers

test-slow: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m slow

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

# docs/models.md and its pictures, from the registry and benchmarks/results/.
docs: venv
	$(PY) -m zoo.models_doc

# keras-hub beside the project (benchmarks/text_speed.py), not inside the venv.
keras-hub: venv
	$(PY) -m pip install -q --no-deps --target .cache/keras_hub \
		-r benchmarks/requirements-keras-hub.txt

clean:
	rm -rf $(VENV) build *.egg-info
