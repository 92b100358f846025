"""Drills write their evidence to reports/ unless told otherwise."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before allure-pytest and junitxml read these options.
    if getattr(config.option, "allure_report_dir", None) is None:
        config.option.allure_report_dir = "reports/allure-results"
        # One run's results; trends across runs live in the report's history (make report).
        config.option.clean_alluredir = True
    if getattr(config.option, "xmlpath", None) is None:
        config.option.xmlpath = "reports/junit.xml"
