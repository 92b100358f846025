from __future__ import annotations

import pytest

from kubedrill.allowlist import Allowlist
from kubedrill.errors import GuardError


def test_lab_is_allowed_by_default() -> None:
    assert Allowlist().allows("lab/lab")
    assert Allowlist().allows("lab/kdtest")


@pytest.mark.parametrize("cluster", ["kind/prod", "ssh/inventory.yaml", "context/admin@prod"])
def test_other_targets_need_an_explicit_allow(cluster: str) -> None:
    with pytest.raises(GuardError, match="not on the allowlist") as err:
        Allowlist().check(cluster)
    assert f"--allow-target '{cluster}'" in err.value.hint


def test_patterns_match_shell_style() -> None:
    allow = Allowlist.of(["kind/kubedrill-*", " "])
    assert allow.allows("kind/kubedrill-ha")
    assert not allow.allows("kind/prod")
    assert allow.patterns == ("lab/*", "kind/kubedrill-*")
