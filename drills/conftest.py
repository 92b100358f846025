"""Drills write their evidence to reports/ unless told otherwise."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before allure-pytest and junitxml read these options.
    if getattr(config.option, "allure_report_dir", None) is None:
        config.option.allure_report_dir = "reports/allure-results"
    if getattr(config.option, "xmlpath", None) is None:
        config.option.xmlpath = "reports/junit.xml"
