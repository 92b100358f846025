"""The only module that talks to Allure, so the drill logic stays free of reporting details."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import allure


@contextmanager
def step(title: str) -> Iterator[None]:
    with allure.step(title):
        yield


def attach_json(name: str, data: Any) -> None:
    allure.attach(
        json.dumps(data, indent=2, default=str),
        name=name,
        attachment_type=allure.attachment_type.JSON,
    )


def attach_text(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def attach_html(name: str, html: str) -> None:
    allure.attach(html, name=name, attachment_type=allure.attachment_type.HTML)


def attach_svg(name: str, svg: str) -> None:
    allure.attach(svg, name=name, attachment_type=allure.attachment_type.SVG)


EPIC = "control plane HA"
# A fault in etcd or the API server takes the whole control plane with it.
CRITICAL_COMPONENTS = frozenset({"etcd", "apiserver"})


def label_drill(*, component: str, fault: str, parameters: dict[str, str]) -> None:
    """epic / feature (the component) / story (the fault), and a severity by component."""
    allure.dynamic.epic(EPIC)  # type: ignore[no-untyped-call]
    allure.dynamic.feature(component)  # type: ignore[no-untyped-call]
    severity = (
        allure.severity_level.CRITICAL
        if component in CRITICAL_COMPONENTS
        else allure.severity_level.NORMAL
    )
    allure.dynamic.severity(severity)  # type: ignore[no-untyped-call]
    allure.dynamic.story(fault)  # type: ignore[no-untyped-call]
    for key, value in parameters.items():
        allure.dynamic.parameter(key, value)
