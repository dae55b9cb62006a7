# deployer: the two commands a fresh machine needs.
#   make demo   set everything up, then train, build, check, push --to local and predict
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DEPLOYER_BASE_IMAGE ?= deployer-base:bookworm-py311
TORCH_VERSION ?= 2.13.0

.PHONY: demo test setup machine venv lint bench clean

demo: setup
	cd examples/iris && ../../$(BIN)/python train.py
	cd examples/iris && ../../$(BIN)/deployer validate
	cd examples/iris && ../../$(BIN)/deployer build
	cd examples/iris && ../../$(BIN)/deployer check
	cd examples/iris && ../../$(BIN)/deployer push --to local
	cd examples/iris && ../../$(BIN)/deployer predict --to local -d '[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]'

test: setup
	DEPLOYER_REQUIRE_DOCKER=$${DEPLOYER_REQUIRE_DOCKER:-0} $(BIN)/pytest -q --durations=25

setup: machine venv

machine:
	scripts/setup-machine.sh

venv: $(BIN)/deployer

# The core, the router and every provider in one resolve (pip then picks versions that agree).
PROVIDERS := $(patsubst %/pyproject.toml,%,$(wildcard providers/*/pyproject.toml))
$(BIN)/deployer: pyproject.toml router/pyproject.toml $(wildcard providers/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	# a current pip: the resolver of older ones (23.x) gives up on this dependency set
	$(BIN)/pip install -q --upgrade 'pip>=25'
	# torch first, pinned: 2.13.0 is the CPU build on this machine's disk, which the
	# dev extra's range then accepts (an unpinned torch would pull a CUDA build of GBs).
	$(BIN)/pip install -q 'torch==$(TORCH_VERSION)'
	$(BIN)/pip install -q -e '.[dev]' -e 'router[test]' $(foreach p,$(PROVIDERS),-e '$(p)[test]')
	touch $@

lint: venv
	$(BIN)/ruff check deployer router tests benchmarks examples providers
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/image.py
	$(BIN)/python benchmarks/multicloud.py
	$(BIN)/python benchmarks/router.py
	$(BIN)/python benchmarks/torch_serving.py
	$(BIN)/python benchmarks/torch_serving.py --model text
	$(BIN)/python benchmarks/torch_image.py
	$(BIN)/python benchmarks/torch_image.py --model text
	$(BIN)/python benchmarks/evaluate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
