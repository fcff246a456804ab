# Included by the Makefile. `make test` also installs the infrastructure linters that
# tests/infra runs (checkov, hadolint, actionlint), pinned in infra/tools-requirements.txt,
# into a separate virtualenv because checkov pins many libraries that would clash with the
# runtime ones. The stamp makes a second `make test` skip the install.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.tools-installed

TEST_PREREQS += infra-tools

.PHONY: infra-tools infra-test

$(INFRA_STAMP): infra/tools-requirements.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/tools-requirements.txt
	touch $@

infra-tools: $(INFRA_STAMP)

# Only the infrastructure tests, with everything they need.
infra-test: deps system-deps infra-tools
	$(BIN)/python -m pytest tests/infra
