"""Fault injection against a real daemon process: kill -9, dying clients, storage faults.

Like tests/system these run GNU tar and mt-st against ``backerd serve`` (the FUSE
fallback on a host without CUSE) and are skipped, with the reason, when a tool or the
kernel interface is missing. Each test starts its own daemons in its tmp dir.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.systemtest import mark_system_tests


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_system_tests(Path(__file__).parent, items)
