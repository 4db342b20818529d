# `make help` lists every target and variable. Each target creates and reuses .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
LOCK := requirements.lock

# uv reads no pip configuration: tools/pip_sources_for_uv.py hands it pip's package sources.
WITH_PIP_SOURCES = eval "$$($(PY) tools/pip_sources_for_uv.py)" &&

## Variables (each maps onto a config key; ARGS takes any other key=value overrides)
INIT ?=##        init.name: make inits lists them (kaiming, glorot, ...)
MODEL ?=##       model.name: plain | vgg | resnet | vanilla
DEPTH ?=##       model.depth: weight layers, classifier included
DATA ?=##        data.name: cifar10, mnist, svhn, synthetic (offline), ... (train --help lists all)
EPOCHS ?=##      trainer.max_epochs
SEED ?=##        seed
DEVICES ?=##     trainer.devices: e.g. 8 (GPUs) or 2 with ACCELERATOR=cpu
STRATEGY ?=##    trainer.strategy: auto | ddp | ddp_spawn | fsdp
ACCELERATOR ?=## trainer.accelerator: auto | cpu | gpu
NUM_NODES ?=##   trainer.num_nodes
RESUME ?=##      resume: a run folder, or last
EXPERIMENT ?=##  experiment: a file of configs/experiment/
LOGGER ?=##      logger.name: wandb | tensorboard | csv | none
ARGS ?=##        any other overrides, e.g. ARGS="optimizer.lr=0.003 data.batch_size=64"
INITS ?=##       compare.inits: the inits make compare trains, e.g. INITS="kaiming glorot"
SEEDS ?=##       compare.seeds: the seeds of each init, e.g. SEEDS="0 1 2"
DEPTHS ?=##      compare.depths: a depth sweep, every init at each model.depth, e.g. DEPTHS="30 100 200"
NAME ?=##        make rename: the new package name, a lower-case Python identifier
INSTALLER ?=##   make install: uv (the default; pip where uv cannot be had) or pip

OVERRIDES = $(strip \
  $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(if $(INIT),init.name=$(INIT)) \
  $(if $(MODEL),model.name=$(MODEL)) $(if $(DEPTH),model.depth=$(DEPTH)) $(if $(DATA),data.name=$(DATA)) \
  $(if $(EPOCHS),trainer.max_epochs=$(EPOCHS)) $(if $(SEED),seed=$(SEED)) \
  $(if $(DEVICES),trainer.devices=$(DEVICES)) $(if $(STRATEGY),trainer.strategy=$(STRATEGY)) \
  $(if $(ACCELERATOR),trainer.accelerator=$(ACCELERATOR)) $(if $(NUM_NODES),trainer.num_nodes=$(NUM_NODES)) \
  $(if $(RESUME),resume=$(RESUME)) $(if $(LOGGER),logger.name=$(LOGGER)) $(ARGS))

comma := ,
space := $(subst ,, )
# INITS="a b" -> 'compare.inits=[a,b]' (quoted: the shell would read [a,b] as a pattern)
COMPARE = $(if $(INITS),'compare.inits=[$(subst $(space),$(comma),$(strip $(INITS)))]') \
  $(if $(SEEDS),'compare.seeds=[$(subst $(space),$(comma),$(strip $(SEEDS)))]') \
  $(if $(DEPTHS),'compare.depths=[$(subst $(space),$(comma),$(strip $(DEPTHS)))]')

.PHONY: help install lock train inits theory phase compare reproduce bench rename test test-all lint format clean

help: ## Show this help
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables:"
	@grep -E '^[A-Z_]+ \?=##' $(MAKEFILE_LIST) | sed -E 's/ \?=##/ /' | awk '{v=$$1; $$1=""; printf "  %-12s%s\n", v, $$0}'

install: $(STAMP) ## Create .venv and install the locked versions (requirements.lock), then the project

# uv installs the lock (with pip's package sources, as `make lock` does); where uv cannot be had or
# fails, or INSTALLER=pip, pip does it instead. Both compile the packages' bytecode as they install them
# (pip by default, uv when asked): without it every process compiles torch and Lightning from source
# where bytecode is not written (PYTHONDONTWRITEBYTECODE, read-only folders), and `import lightning`
# took 16.5 s instead of 7.3 s on a 2-core machine.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON_BOOT) -m venv $(VENV)
	if [ "$(INSTALLER)" != pip ] && $(PY) -m pip install --quiet uv==$(UV_VERSION) \
	    && $(WITH_PIP_SOURCES) $(UV) pip install --quiet --compile-bytecode --python $(PY) -r $(LOCK); then \
	  $(UV) pip install --quiet --python $(PY) --no-deps -e .; \
	else \
	  echo "make install: installing with pip"; \
	  $(PY) -m pip install --quiet -r $(LOCK) && $(PY) -m pip install --quiet --no-deps -e .; \
	fi
	touch $(STAMP)

lock: $(STAMP) ## Re-resolve requirements.lock from pyproject.toml's ranges (every platform, Python >= 3.10)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(WITH_PIP_SOURCES) $(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.10 \
	  --no-annotate --custom-compile-command "make lock" --quiet -o $(LOCK)

train: $(STAMP) ## Train one model: make train INIT=kaiming [DATA=synthetic] [EPOCHS=..] [ARGS=..]
	$(PY) -m template train $(OVERRIDES)

inits: $(STAMP) ## Print the table of initialisation schemes
	$(PY) -m template inits

theory: $(STAMP) ## Mean-field theory for a config before training: make theory MODEL=plain DEPTH=20 ARGS="model.activation=tanh"
	$(PY) -m template theory $(OVERRIDES)

phase: $(STAMP) ## Phase diagram of model.activation; ARGS="phase.sweep=true" adds the trainability sweep (submitit)
	$(PY) -m template phase $(OVERRIDES)

compare: $(STAMP) ## Train every init x seed and compare: make compare EXPERIMENT=quick_demo INITS="kaiming glorot"
	$(PY) -m template compare $(OVERRIDES) $(COMPARE)

reproduce: $(STAMP) ## quick_demo on seeds 0-4 at 1 and 2 threads and with oneDNN off; fails unless the effect holds on each
	$(PY) -m template reproduce $(OVERRIDES) $(COMPARE)

bench: $(STAMP) ## Time the template against a plain PyTorch loop: make bench [MODEL=..] [DEPTH=..] (runs/bench-*/bench.json)
	$(PY) -m template bench $(OVERRIDES)

rename: $(STAMP) ## Make this starter your project: make rename NAME=myproject
	$(PY) -m template.rename $(NAME)

# One pytest-xdist worker per core (at most 8: each holds torch, about 1 GB), each with its share of the
# cores (tests/conftest.py); the ten slowest tests are printed, so that a slowdown is seen when it comes.
PYTEST = $(PY) -m pytest -n auto --maxprocesses=8 --durations=10

test: $(STAMP) ## Run the fast test suite (2.5 to 3 minutes on 2 cores)
	$(PYTEST)

test-all: $(STAMP) ## Run everything: the fast suite plus DDP, kill-and-resume and the quick comparison
	$(PYTEST) -m ''

lint: $(STAMP) ## Check code and formatting with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove caches (runs/ and data/ are kept)
	rm -rf .pytest_cache .ruff_cache $$(find . -name __pycache__ -not -path './$(VENV)/*')
