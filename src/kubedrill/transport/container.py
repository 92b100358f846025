"""Run commands inside a container (a kind node) through the Docker Engine API.

Any engine that serves the Docker API works: Docker itself, or podman's `podman system service`.
The spec names the container and, optionally, the engine's address; without one the docker
SDK's own rules apply (DOCKER_HOST, else the default socket), as for the `docker` CLI.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Self

import docker
import requests
from docker import errors as docker_errors
from docker.models.containers import Container

from kubedrill.errors import TargetError
from kubedrill.transport.base import CommandResult, TransportSpec
from kubedrill.transport.local import run_process

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Exit codes for failures of the engine rather than of the command, as `docker exec` uses them.
ENGINE_FAILED = 125
TIMED_OUT = 124
API_TIMEOUT_S = 30.0


def engine_address(docker_host: str | None) -> str:
    """The engine address the docker SDK will use, for messages."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def engine_client(
    docker_host: str | None, *, timeout: float = API_TIMEOUT_S
) -> docker.DockerClient:
    """A client for the engine, checked with a ping; TargetError with a hint when unreachable."""
    kwargs: dict[str, Any] = (
        {"base_url": docker_host} if docker_host else docker.utils.kwargs_from_env()
    )
    try:
        version = _api_version(kwargs, timeout)
        return docker.DockerClient(**kwargs, version=version, timeout=int(timeout))
    except (docker_errors.DockerException, requests.RequestException) as exc:
        address = engine_address(docker_host)
        raise TargetError(
            f"cannot reach the container engine at {address}: {_short(exc)}",
            "start Docker (or `podman system service unix:///run/podman/podman.sock`) and point "
            "DOCKER_HOST or --docker-host at its socket",
        ) from exc


def _api_version(kwargs: dict[str, Any], timeout: float) -> str:
    """The engine's API version from the unversioned /_ping header. The SDK's own negotiation
    asks /version, which podman answers in over a second (it gathers host facts) - per step."""
    probe = docker.APIClient(**kwargs, version=docker.constants.MINIMUM_DOCKER_API_VERSION)
    try:
        resp = probe.get(f"{probe.base_url}/_ping", timeout=timeout)
        resp.raise_for_status()
        return str(resp.headers.get("Api-Version") or docker.constants.DEFAULT_DOCKER_API_VERSION)
    finally:
        probe.close()


def find_container(client: docker.DockerClient, name: str, docker_host: str | None) -> Container:
    try:
        found: Container = client.containers.get(name)
    except docker_errors.NotFound as exc:
        raise TargetError(
            f"no container {name!r} on the engine at {engine_address(docker_host)}",
            "list the node containers with `docker ps -a --filter label=io.x-k8s.kind.cluster`; "
            "is the kind cluster up (kubedrill kind status)?",
        ) from exc
    except docker_errors.APIError as exc:
        raise TargetError(f"cannot inspect container {name!r}: {_short(exc)}") from exc
    return found


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


@dataclass
class _Outcome:
    exit_code: int = TIMED_OUT
    stdout: bytes = b""
    stderr: bytes = b""
    error: str = ""


class ContainerTransport:
    """`docker exec` through the API: exit code, stdout and stderr kept apart (demux)."""

    kind = "docker"

    def __init__(self, node: str, container: str, docker_host: str | None = None) -> None:
        self.container = container
        self.docker_host = docker_host
        params = {"container": container} | ({"docker_host": docker_host} if docker_host else {})
        self.spec = TransportSpec(self.kind, node, params)

    @classmethod
    def from_spec(cls, spec: TransportSpec) -> Self:
        return cls(spec.node, spec.params["container"], spec.params.get("docker_host"))

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        """Never raises for a failure: engine trouble is exit 125, a timeout exit 124."""
        try:
            client = engine_client(self.docker_host)
        except TargetError as exc:
            return self._result(argv, ENGINE_FAILED, "", str(exc))
        try:
            refusal = self._refusal(client)
            if refusal:
                return self._result(argv, ENGINE_FAILED, "", refusal)
            return self._exec(client, argv, timeout=timeout, input=input)
        finally:
            client.close()

    def _refusal(self, client: docker.DockerClient) -> str:
        """Why an exec cannot start, said plainly (the engine's own 409 says less)."""
        try:
            container = find_container(client, self.container, self.docker_host)
        except TargetError as exc:
            return str(exc)
        if container.status == "paused":
            return (
                f"container {self.container} is paused, and a paused container refuses exec\n"
                f"  -> a pause fault is active on it: heal it (kubedrill heal) or "
                f"`docker unpause {self.container}`"
            )
        if container.status != "running":
            return (
                f"container {self.container} is {container.status}, not running\n"
                f"  -> a stop or kill fault may be active on it: heal it (kubedrill heal) or "
                f"`docker start {self.container}`"
            )
        return ""

    def _exec(
        self, client: docker.DockerClient, argv: list[str], *, timeout: float, input: str | None
    ) -> CommandResult:
        command = argv
        environment: dict[str, str] = {}
        if input is not None:
            # The exec API has no simple stdin; hand the input over through the environment.
            command = ["sh", "-c", 'printf %s "$KUBEDRILL_STDIN" | "$@"', "sh", *argv]
            environment["KUBEDRILL_STDIN"] = input
        outcome = _Outcome()

        def work() -> None:
            try:
                created = client.api.exec_create(
                    self.container, command, stdout=True, stderr=True, environment=environment
                )
                out, err = client.api.exec_start(created["Id"], demux=True)
                outcome.stdout, outcome.stderr = out or b"", err or b""
                code = client.api.exec_inspect(created["Id"]).get("ExitCode")
                outcome.exit_code = int(code) if code is not None else ENGINE_FAILED
            except docker_errors.DockerException as exc:
                outcome.exit_code, outcome.error = ENGINE_FAILED, f"exec failed: {_short(exc)}"

        # A worker thread bounds the whole exec (the API's own timeout is per socket read).
        worker = threading.Thread(target=work, name=f"exec-{self.container}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            return self._result(
                argv,
                TIMED_OUT,
                "",
                f"timed out after {timeout}s (the command may still run in {self.container})",
            )
        stderr = outcome.stderr.decode(errors="replace") + outcome.error
        return self._result(
            argv, outcome.exit_code, outcome.stdout.decode(errors="replace"), stderr
        )

    def _result(self, argv: list[str], code: int, stdout: str, stderr: str) -> CommandResult:
        return CommandResult(self.spec.node, tuple(argv), code, stdout, stderr)


class ContainerNetnsTransport(ContainerTransport):
    """A command on the machine kubedrill runs on, inside a node container's network namespace
    (`nsenter --net`): for helpers the node image lacks, like the NFQUEUE delayer (Python), that
    must see the node's packets. The container's pid is looked up at each run, so a ledger
    record replayed after the node restarted still finds it."""

    kind = "container-netns"

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        try:
            client = engine_client(self.docker_host)
            try:
                container = find_container(client, self.container, self.docker_host)
                pid = int(container.attrs.get("State", {}).get("Pid") or 0)
            finally:
                client.close()
        except TargetError as exc:
            return CommandResult(self.spec.node, tuple(argv), ENGINE_FAILED, "", str(exc))
        if pid <= 0:
            why = f"container {self.container} is not running (no pid)"
            return CommandResult(self.spec.node, tuple(argv), ENGINE_FAILED, "", why)
        full = ["nsenter", f"--net=/proc/{pid}/ns/net", "--", *argv]
        return run_process(self.spec.node, argv, full, timeout=timeout, input=input)
