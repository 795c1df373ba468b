"""Fixtures of the integration layer: real supervisord fleets against moto's server, and the
container engine of the image tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host_setup import host_setup_lock
from tests.integration.containers import SETUP, docker_answers, run
from tests.integration.fleet import Fleet


@pytest.fixture(scope="session")
def engine() -> str:
    """``docker`` when its engine runs, else ``podman`` from the setup script (fails loudly)."""
    if docker_answers():
        return "docker"
    assert SETUP.is_file(), f"no Docker engine and no container setup script at {SETUP}"
    with host_setup_lock():  # the setup installs with apt-get
        offered = run("bash", str(SETUP), "trixie").strip().splitlines()[-1]
    assert offered == "podman", f"{SETUP} offers {offered!r}, not podman"
    return "podman"


@pytest.fixture
def make_fleet(moto_endpoint: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """Factory: a started fleet (FAST settings + overrides); every fleet is killed afterwards."""
    fleets: list[Fleet] = []

    def make(endpoint: str | None = None, **env: Any) -> Fleet:
        workdir = tmp_path / f"fleet-{len(fleets)}"
        workdir.mkdir()
        fleet = Fleet(workdir, endpoint or moto_endpoint, {k: str(v) for k, v in env.items()})
        fleets.append(fleet)
        return fleet.start()

    yield make
    for fleet in fleets:
        fleet.kill()
