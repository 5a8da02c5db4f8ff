"""Any TOML-shaped table handed to ``parse_config`` loads or raises ``ConfigError``.

Every known key (top level, ``[[unit]]``, ``[unit.vcr]``) is given values of every TOML
type, plausible words of the vocabulary and nested tables; nothing but the project's
error may come out (a ``TypeError`` or ``KeyError`` would be a traceback at start-up).
"""

from __future__ import annotations

import datetime
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backerd.daemon import config
from backerd.errors import ConfigError
from backerd.vcr import settings as vcr_settings

WORDS = ["", "sim", "nls", "phe", "E-180", "manual", "lirc", "isa", "parport", "auto", "fuse",
         "cuse", "0x378", "0660", "seed=1,errors=2", "/abs/path", "relative", "root", "tape",
         "transmit:800:700", "emulated-isa"]
scalars = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.booleans(), st.text(max_size=10),
    st.floats(allow_nan=True), st.sampled_from(WORDS), st.just(math.inf),
    st.just(datetime.date(2020, 1, 1)), st.just(datetime.time(1, 2)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
UNIT_KEYS = sorted(config._UNIT_KEYS)
VCR_KEYS = sorted(vcr_settings._VCR_KEYS)
TOP_KEYS = sorted(config._TOP_KEYS - {"unit"} | config._NODE_ACCESS_KEYS)

vcr_tables = st.dictionaries(st.sampled_from(VCR_KEYS), values, max_size=4)
unit_tables = st.builds(
    lambda plain, vcr: {**plain, "vcr": vcr} if vcr is not None else plain,
    st.dictionaries(st.sampled_from(UNIT_KEYS), values, max_size=4),
    st.none() | vcr_tables,
)
tables = st.builds(
    lambda top, units: {**top, "unit": units} if units is not None else top,
    st.dictionaries(st.sampled_from(TOP_KEYS), values, max_size=3),
    st.none() | st.lists(unit_tables, max_size=3) | values,
)
ENV = {"BACKERD_STATE_DIR": "/nonexistent/state", "BACKERD_RUNTIME_DIR": "/nonexistent/run"}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables)
def test_any_table_loads_or_is_a_config_error(table: dict) -> None:
    try:
        loaded = config.parse_config(table, environ=ENV)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert loaded.units  # a config that loads has at least the default unit


def test_the_key_lists_are_the_real_ones() -> None:
    # an unknown key is refused, so the strategies above reach the parsers of every key
    for key in TOP_KEYS:
        try:
            config.parse_config({key: object()}, environ=ENV)
        except ConfigError as exc:
            assert "unknown key" not in exc.message, key
