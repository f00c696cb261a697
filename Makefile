# hobguard: developer entry points. `make help` lists them.
#
# Everything runs from the project's own virtualenv (.venv) and the
# npm-installed MicroPython WebAssembly port (tools/mpy-wasm/node_modules).
# `make setup` creates both; stamp files make it a no-op when nothing changed.

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
WASM_DIR := tools/mpy-wasm
PORT ?= /dev/ttyUSB0
PYTEST_ARGS ?=
FLASH_ARGS ?=
SETTINGS ?=
BUILD_DIR ?=
DEPLOY_ARGS ?=
WIFI_SSID ?=
KEY_FILE ?=
FIRMWARE ?=

SETUP_STAMP := $(VENV)/.hobguard-setup
WASM_STAMP := $(WASM_DIR)/node_modules/.hobguard-setup

.DEFAULT_GOAL := help
.PHONY: help setup test lint format bench soak demo deploy flash dist addon wiring clean distclean

help:
	@echo "make setup    create .venv (pip install -e '.[dev]') and install the MicroPython WebAssembly port"
	@echo "make test     make lint, then the test suite (pytest)"
	@echo "make lint     ruff check and ruff format --check over the tree; pyright over host/, sim/ and bench/,"
	@echo "              and over firmware/ with the MicroPython stubs"
	@echo "make format   format the tree with ruff (what make lint checks)"
	@echo "make bench    run the benchmarks (python -m bench)"
	@echo "make soak     run the long soak tests (pytest -m soak)"
	@echo "make demo     simulated hob on Wi-Fi (loopback) + embedded broker + bridge, no hardware"
	@echo "make deploy   compile the firmware, copy it and the settings to a board: make deploy PORT=/dev/ttyUSB0 SETTINGS=my_settings.json"
	@echo "              (SETTINGS=keep leaves the board's own settings; DEPLOY_ARGS=--dry-run shows the commands only)"
	@echo "              Wi-Fi: WIFI_SSID='Home Wi-Fi' KEY_FILE=kitchen.key (password from HOBGUARD_WIFI_PASSWORD or asked;"
	@echo "              without WIFI_SSID the board's Wi-Fi is left as it is; DEPLOY_ARGS=--no-wifi removes it)"
	@echo "make flash    write a MicroPython image to a board: make flash PORT=/dev/ttyUSB0 FIRMWARE=image.bin"
	@echo "make dist     build the wheel (dist/hobguard-VERSION-py3-none-any.whl): pip install / pipx install it"
	@echo "make addon    put that wheel into homeassistant/addon/wheels/, for a local Home Assistant add-on (docs/addon.md)"
	@echo "make wiring   redraw docs/wiring.svg from tools/wiring_svg.py"
	@echo "make clean    remove build output and caches (distclean: also .venv and node_modules)"

setup: $(SETUP_STAMP) $(WASM_STAMP)

$(PYTHON):
	$(PY) -m venv $(VENV)

# Reinstalled when pyproject.toml changes. `pyright --version` makes the
# pyright wrapper fetch its Node package now, if it ever needs to, rather
# than during a test. .venv/mpy-typeshed points pyright (pyrightconfig.json)
# at the site-packages folder holding the MicroPython stdlib stubs.
$(SETUP_STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --disable-pip-version-check -q -e '.[dev]'
	$(BIN)/pyright --version
	ln -sfn "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" $(VENV)/mpy-typeshed
	touch $@

$(WASM_STAMP): $(WASM_DIR)/package.json $(WASM_DIR)/package-lock.json
	cd $(WASM_DIR) && npm ci --no-audit --no-fund
	touch $@

# Lint first, so CI (.ci/run: make test) enforces it.
test: setup lint
	$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Two pyright runs: the host, the simulator and the benchmarks against
# CPython's standard library (pyrightconfig.host.json), the firmware against
# MicroPython's (pyrightconfig.json, .venv/mpy-typeshed).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright -p pyrightconfig.host.json
	$(BIN)/pyright -p pyrightconfig.json

format: setup
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

bench: setup
	$(PYTHON) -m bench

# Exit status 5 is pytest's "no test selected": no soak test exists yet.
soak: setup
	@$(PYTHON) -m pytest -q -p no:cacheprovider -m soak $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "soak: no soak tests yet"; exit 0; fi; exit $$rc

demo: setup
	$(BIN)/hobguard demo

# One shell word, whatever the text holds (a Wi-Fi name with spaces or quotes).
shell_quote = '$(subst ','\'',$(1))'

# SETTINGS is required: a deployment copies the file that was checked, or
# says explicitly (SETTINGS=keep) that the board keeps its own.
# WIFI_SSID=NAME writes the board's Wi-Fi secrets (the password from
# HOBGUARD_WIFI_PASSWORD or a prompt, never from the make line), with the
# key in KEY_FILE (made when missing; default ~/.config/hobguard/keys/).
deploy: setup
	@if [ -z "$(SETTINGS)" ]; then \
		echo "make deploy: say which settings the board gets:" >&2; \
		echo "  make deploy PORT=$(PORT) SETTINGS=my_settings.json   checked, then copied to the board" >&2; \
		echo "  make deploy PORT=$(PORT) SETTINGS=keep               the board keeps its own (a new board runs on the defaults)" >&2; \
		exit 2; \
	fi
	$(BIN)/hobguard deploy --port $(PORT) $(if $(filter keep,$(SETTINGS)),--keep-settings,--settings $(SETTINGS)) $(if $(WIFI_SSID),--wifi-ssid $(call shell_quote,$(WIFI_SSID))) $(if $(KEY_FILE),--key-file $(call shell_quote,$(KEY_FILE))) $(if $(BUILD_DIR),--build-dir $(BUILD_DIR)) $(DEPLOY_ARGS)

flash: setup
	$(BIN)/hobguard flash --port $(PORT) $(if $(FIRMWARE),--firmware $(FIRMWARE)) $(FLASH_ARGS)

# The package as users install it (docs/install.md); pip builds it in an
# isolated environment with setuptools from the package index.
dist: setup
	rm -rf dist
	$(PYTHON) -m pip wheel --disable-pip-version-check --no-deps -q -w dist .
	@ls dist/*.whl

# A local add-on builds its image from this wheel instead of PyPI's release.
addon: dist
	rm -f homeassistant/addon/wheels/*.whl
	cp dist/hobguard-*.whl homeassistant/addon/wheels/
	@echo "copy homeassistant/addon/ to the addons folder of Home Assistant (docs/addon.md)"

wiring: setup
	$(PYTHON) tools/wiring_svg.py docs/wiring.svg

clean:
	rm -rf build dist out .pytest_cache .ruff_cache .hypothesis
	rm -rf host/*.egg-info firmware/*.egg-info sim/*.egg-info *.egg-info
	find . -path ./$(VENV) -prune -o -path ./$(WASM_DIR)/node_modules -prune -o \
		\( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \( -name '*.mpy' -type f -exec rm -f {} + \)

distclean: clean
	rm -rf $(VENV) $(WASM_DIR)/node_modules
