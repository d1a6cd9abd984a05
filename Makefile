# Two targets a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
export CIVICAUP_HOME ?= $(CURDIR)/var
UT1    ?= $(CURDIR)/../shared/data/ut1

.PHONY: demo test install index clean

$(BIN)/civicaup: pyproject.toml setup.py src/civicaup/channels/web/_fastpath.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/civicaup

# The web category index from the UT1 lists when they are beside the repo; else civicaup's starter lists.
index: install
	@if [ -d "$(UT1)" ]; then $(BIN)/civicaup categories build "$(UT1)"; \
	else echo "no UT1 lists at $(UT1): using the starter category lists"; fi

demo: index
	$(BIN)/civicaup demo --policy kirkwood-mo

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) var .pytest_cache
