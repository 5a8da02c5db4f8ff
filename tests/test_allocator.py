"""The allocator tuning applies on glibc (the codecs' page-fault cost depends on it)."""

import platform

import pytest

from backerd.allocator import tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_allocator_applies_on_glibc() -> None:
    assert tune_allocator() is True
