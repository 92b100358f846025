"""Errors that tell a person what went wrong and what to do next."""

from __future__ import annotations


class KubedrillError(Exception):
    """Base error. `hint` says what to do about it; the CLI prints both and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class ConfigError(KubedrillError):
    """Malformed or unknown configuration (a field, a budget, an inventory)."""


class TargetError(KubedrillError):
    """The target cluster cannot be reached or is not what was asked for."""


class UnknownNodeError(ConfigError):
    """A node or role named by a drill or the CLI does not exist in the cluster."""


class MissingBinaryError(KubedrillError):
    """A program kubedrill needs is not installed or not built."""


class NotRootError(KubedrillError):
    """The operation changes network namespaces, iptables or processes and needs root."""


class CommandError(KubedrillError):
    """A command on a node exited non-zero; carries everything needed to debug it."""

    def __init__(
        self, node: str, argv: list[str], exit_code: int, stdout: str, stderr: str
    ) -> None:
        shown = " ".join(argv)
        detail = (stderr.strip() or stdout.strip())[-2000:]
        super().__init__(
            f"command on {node} exited {exit_code}: {shown}\n{detail}",
            "check the node's state with `kubedrill lab status` (or the target's own tools)",
        )
        self.node = node
        self.argv = argv
        self.returncode = exit_code
        self.stdout = stdout
        self.stderr = stderr


class FaultError(KubedrillError):
    """A fault could not be injected (nothing was left injected)."""


class GuardError(KubedrillError):
    """A safety guard refused the operation (allowlist, quorum, outstanding ledger records)."""


class LedgerError(KubedrillError):
    """The undo ledger is unreadable or a heal failed."""
