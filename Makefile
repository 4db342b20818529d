# `make help` lists every target and variable. Each target creates and reuses .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

## Variables (each maps onto a config key; ARGS takes any other key=value overrides)
INIT ?=##        init.name: make inits lists them (kaiming, glorot, ...)
MODEL ?=##       model.name: plain | vgg | resnet
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
NAME ?=##        make rename: the new package name, a lower-case Python identifier

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
  $(if $(SEEDS),'compare.seeds=[$(subst $(space),$(comma),$(strip $(SEEDS)))]')

.PHONY: help install train inits compare bench rename test test-all lint format clean

help: ## Show this help
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables:"
	@grep -E '^[A-Z_]+ \?=##' $(MAKEFILE_LIST) | sed -E 's/ \?=##/ /' | awk '{v=$$1; $$1=""; printf "  %-12s%s\n", v, $$0}'

install: $(STAMP) ## Create .venv and install the project with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP) ## Train one model: make train INIT=kaiming [DATA=synthetic] [EPOCHS=..] [ARGS=..]
	$(PY) -m template train $(OVERRIDES)

inits: $(STAMP) ## Print the table of initialisation schemes
	$(PY) -m template inits

compare: $(STAMP) ## Train every init x seed and compare: make compare EXPERIMENT=quick_demo INITS="kaiming glorot"
	$(PY) -m template compare $(OVERRIDES) $(COMPARE)

bench: $(STAMP) ## Time the template against a plain PyTorch loop: make bench [MODEL=..] [DEPTH=..] (runs/bench-*/bench.json)
	$(PY) -m template bench $(OVERRIDES)

rename: $(STAMP) ## Make this starter your project: make rename NAME=myproject
	$(PY) -m template.rename $(NAME)

test: $(STAMP) ## Run the fast test suite (a few minutes)
	$(PY) -m pytest

test-all: $(STAMP) ## Run everything: the fast suite plus DDP, kill-and-resume and the quick comparison
	$(PY) -m pytest -m ''

lint: $(STAMP) ## Check code and formatting with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove caches (runs/ and data/ are kept)
	rm -rf .pytest_cache .ruff_cache $$(find . -name __pycache__ -not -path './$(VENV)/*')
