"""Per-field health traces on noisy vectors, and the PNG they plot to."""

from __future__ import annotations

import lzma
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from backerd.format.params import mode
from backerd.format.player import Player
from backerd.observe.counters import driver_counters, format_counters
from backerd.observe.fieldtrace import FieldTrace, Trace
from backerd.observe.plot import column_max, plot_png, render_builtin

DATA = Path(__file__).resolve().parents[1] / "data"


def fields_of(name: str, mode_name: str) -> list[bytes]:
    raw = lzma.decompress((DATA / name).read_bytes())
    geometry = mode(mode_name).geometry
    out, pos, i = [], 0, 0
    while pos < len(raw):
        n = geometry.field_length(i)
        out.append(raw[pos:pos + n])
        pos += n
        i += 1
    return out


def trace_of(name: str, mode_name: str) -> tuple[FieldTrace, bytes]:
    ft = FieldTrace(mode_name)
    for f in fields_of(name, mode_name):
        ft.feed_field(f)
    return ft, ft.finish()


def whole_stream_stats(name: str, mode_name: str) -> dict:
    player = Player(mode_name)
    player.feed(lzma.decompress((DATA / name).read_bytes()))
    player.finish()
    return player.stats.as_dict()


def test_clean_recording_has_a_flat_trace() -> None:
    ft, data = trace_of("3.102-nls-m1000.raw.xz", "nls")
    assert data == bytes(i % 251 for i in range(1000))
    assert sum(ft.trace.corrected) == 0 and sum(ft.trace.lost) == 0
    assert min(m for m in ft.trace.margin if m) > 0


def test_noise_shows_in_the_trace_and_in_the_driver_counters() -> None:
    name = "3.102-nls-m100000-noise-e3.raw.xz"
    ft, data = trace_of(name, "nls")
    assert data == bytes(i % 251 for i in range(100000))
    stats = whole_stream_stats(name, "nls")
    # an independent run over the whole stream counts the same corrections
    assert sum(ft.trace.corrected) == stats["byte_errors"] > 0
    counters = driver_counters(state="READING", mode="nls", stats=stats)
    assert counters["byte_errors"] == stats["byte_errors"]
    assert counters["worst_block"] >= 1 and counters["worst_key"] is not None
    assert "Byte Errors" in "\n".join(format_counters(counters))


def test_wiped_fields_show_as_lost_sectors() -> None:
    ft, _ = trace_of("3.102-nle-m100000-noise-e2-w21.raw.xz", "nle")
    assert sum(ft.trace.lost) > 0


def parse_png(data: bytes) -> tuple[int, int, bytes]:
    """Independent PNG reader: signature, chunk CRCs, IHDR, inflated IDAT."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    pixels = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert depth == 8
    return width, height, pixels if colour == 2 else b""


@pytest.mark.parametrize(("width", "height"), [(1200, 800), (37, 11), (640, 480)])
def test_builtin_png_has_the_right_size(width: int, height: int) -> None:
    trace = Trace(0, [i % 7 for i in range(3000)], [5] * 3000, [0] * 2999 + [1], [0] * 3000)
    width_got, height_got, pixels = parse_png(plot_png(trace, width, height, builtin=True))
    assert (width_got, height_got) == (width, height)
    assert len(pixels) == height * (1 + 3 * width)


def test_a_worn_stretch_is_visible() -> None:
    corrected = [0] * 1000
    corrected[400:500] = [9] * 100
    image = render_builtin(Trace(0, corrected, [1] * 1000, [0] * 1000, [0] * 1000), 100, 80)
    strip = image[:20]
    coloured = np.any(strip != 255, axis=2) & np.any(strip != 160, axis=2)
    assert coloured[:, 40:50].any() and not coloured[:, :39].any()


def test_column_max_keeps_the_worst_field() -> None:
    values = [0] * 1000
    values[123] = 5
    cols = column_max(values, 10)
    assert cols.tolist() == [0, 5] + [0] * 8


def test_matplotlib_png_has_the_right_size() -> None:
    pytest.importorskip("matplotlib")
    trace = Trace(100, [1, 2, 3] * 50, [40] * 150, [0] * 150, [0] * 150)
    width, height, _ = parse_png(plot_png(trace, 640, 480))
    assert (width, height) == (640, 480)
