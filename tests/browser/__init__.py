"""The dashboard page in Chromium. A package, so that its conftest is ``browser.conftest`` and
does not take the module name ``conftest`` that other tests import their helpers from."""
