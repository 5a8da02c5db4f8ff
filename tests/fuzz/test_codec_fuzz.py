"""Random and adversarial raw streams into the decoder: no unexpected exception, no
endless loop, and no byte silently wrong.

Inputs: all zeros, all one value, random bytes, another mode's valid stream, a stream
whose sectors are numbered with jumps, wraps and repeats or carry lengths that lie
(sectors built with the recorder's own sector writer), and valid streams corrupted by
dropouts (runs of 0x00/0xFF), byte errors, deleted spans (slips), repeated spans and
swapped spans. Every decode runs under a per-input timeout (SIGALRM), so a loop bounded
only by the input fails the test instead of hanging it. The only errors allowed are the
documented ones (``MediumError``, ``FormatError``). Where the input is a corrupted valid
stream, the original data is the ground truth: every byte of the output that differs
from it must lie in a reported ``SectorLost`` range, and a recording that ended is
missing no more bytes off its end than its ``EndOfRecord`` reports as possibly lost.
"""

from __future__ import annotations

import io
import random
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backerd.cli import main
from backerd.errors import FormatError, MediumError
from backerd.format import recorder as rec
from backerd.format.params import mode as mode_params
from backerd.format.player import EndOfRecord, Player, SectorLost

MODES = ["nls", "nhs", "nle", "phe"]
TIMEOUT = 20  # seconds per input: generous on a loaded machine, finite


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"decode did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Decoded:
    data: bytes = b""
    lost: list[SectorLost] = field(default_factory=list)
    ended: bool = False
    possibly_lost: int = 0  # user bytes an inferred end may have cut off (reported)
    error: Exception | None = None


def decode(raw: bytes, mode: str, *, chunk: int = 1 << 16) -> Decoded:
    """Feed ``raw`` in chunks as ``backerd decode`` does; only documented errors."""
    out = Decoded()
    pieces: list[bytes] = []
    with deadline(TIMEOUT):
        player = Player(mode, "auto")
        try:
            for at in range(0, len(raw), chunk):
                got = player.feed(raw[at:at + chunk])
                take(out, pieces, got.data, got.events)
                if got.end_of_record:
                    break
            if not out.ended:
                got = player.finish()
                take(out, pieces, got.data, got.events)
                out.ended |= got.end_of_record
        except (MediumError, FormatError) as exc:
            out.error = exc
    out.data = b"".join(pieces)
    for lost in out.lost:
        assert lost.length > 0 and lost.offset >= 0
        assert lost.offset + lost.length <= len(out.data), (lost, len(out.data))
    return out


def take(out: Decoded, pieces: list[bytes], data: bytes, events: list) -> None:
    pieces.append(data)
    out.lost += [e for e in events if isinstance(e, SectorLost)]
    for end in (e for e in events if isinstance(e, EndOfRecord)):
        out.ended = True
        out.possibly_lost += end.possibly_lost


def unreported_errors(original: bytes, got: Decoded) -> list[int]:
    """Offsets where the output differs from the truth outside every lost range."""
    n = min(len(original), len(got.data))
    a = np.frombuffer(original[:n], np.uint8)
    b = np.frombuffer(got.data[:n], np.uint8)
    wrong = np.flatnonzero(a != b)
    covered = np.zeros(n, bool)
    for lost in got.lost:
        covered[lost.offset:lost.offset + lost.length] = True
    return [int(i) for i in wrong if not covered[i]]


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# ---- garbage and foreign streams ----
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["zeros", "ones", "value", "random"])
def test_garbage_never_raises_unexpectedly(mode: str, kind: str) -> None:
    size = 600_000
    raw = {"zeros": bytes(size), "ones": b"\xff" * size, "value": b"\x5a" * size,
           "random": payload(7, size)}[kind]
    got = decode(raw, mode)
    assert not got.ended and not got.data
    assert isinstance(got.error, FormatError | MediumError | type(None))


@pytest.mark.parametrize(("written", "read"), [("nls", "nhs"), ("nhs", "nle"),
                                               ("nle", "nls"), ("phe", "nhe"),
                                               ("pls", "nls")])
def test_another_modes_stream(written: str, read: str) -> None:
    data = payload(1, 30_000)
    got = decode(rec.encode_recording(data, written), read)
    assert not got.ended or got.data == data  # never another mode's bytes passed as data


# ---- sectors with lying numbers and lengths ----
def forged_sp(mode: str, numbers: list[int], lengths: list[int], seed: int) -> tuple[bytes,
                                                                                    np.ndarray]:
    params = mode_params(mode)
    cap = params.capacity
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (len(numbers), cap), dtype=np.uint8)
    writer = rec._FieldWriter(params)
    bor = rec._bor(params)
    writer.fields += params.n_bor
    body = writer.sectors(data, np.array(lengths, np.int64), np.array(numbers, np.int64))
    eor = writer.empty_sectors(max(numbers) + 1, params.n_eor)
    return bor + body + eor, data


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["nls", "nhs"]), st.integers(0, 2**31),
       st.lists(st.sampled_from(["next", "jump", "back", "repeat", "wrap", "huge", "short",
                                 "empty", "negative"]), min_size=3, max_size=12))
def test_lying_sector_numbers_and_lengths(mode: str, seed: int, script: list[str]) -> None:
    cap = mode_params(mode).capacity
    rng = random.Random(seed)
    numbers: list[int] = []
    lengths: list[int] = []
    n = 0
    for step in script:
        n = {"next": n + 1, "jump": n + rng.randrange(2, 5000), "back": max(0, n - 3),
             "repeat": n, "wrap": 0, "huge": 2**31 - 1 - rng.randrange(10),
             "negative": -rng.randrange(1, 100)}.get(step, n + 1)
        numbers.append(n)
        lengths.append({"short": rng.randrange(1, cap), "empty": 0}.get(step, cap))
    raw, _ = forged_sp(mode, numbers, lengths, seed)
    got = decode(raw, mode)
    # a jump is lost sectors, reported; beyond what the numbering accounts for, nothing
    assert len(got.data) <= (max(max(numbers), 0) + 2) * cap
    reported = sum(lost.length for lost in got.lost)
    assert len(got.data) - reported <= len(numbers) * cap  # the rest came from sectors


# ---- corrupted valid streams: the original is the ground truth ----
def corrupt(raw: bytes, rng: random.Random, how: str) -> bytes:
    b = bytearray(raw)
    n = len(b)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(0, n - 1)
        span = min(rng.randrange(1, 3000), len(b) - at)
        if how == "dropout":
            b[at:at + span] = bytes([rng.choice([0, 0xFF])]) * span
        elif how == "errors":
            for _ in range(rng.randrange(1, 200)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif how == "slip":
            del b[at:at + span]
        elif how == "repeat":
            b[at:at] = b[at:at + span]
        elif how == "swap":
            other = rng.randrange(0, len(b) - span)
            first, second = bytes(b[at:at + span]), bytes(b[other:other + span])
            b[at:at + span], b[other:other + span] = second, first
    return bytes(b)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(MODES), st.integers(0, 2**31),
       st.sampled_from(["dropout", "errors", "slip", "repeat", "swap"]))
def test_every_unrecovered_byte_is_reported(mode: str, seed: int, how: str) -> None:
    check_ground_truth(mode, seed, how)


@pytest.mark.parametrize("seed", range(40))
def test_swapped_spans_report_every_lost_byte(seed: int) -> None:
    """Spans of fields swapped: EOR sectors into the BOR run or the data (seed 0), data
    sectors into the BOR run (6, 11, 20, 29, 37), a BOR sector where the last data and
    first EOR sectors were (25), and an end whose first EOR number stays ambiguous (28)."""
    check_ground_truth("nls", seed, "swap")


@pytest.mark.slow
@pytest.mark.parametrize("mode", [m for m in MODES if m != "nls"])
def test_swapped_spans_in_the_other_modes(mode: str) -> None:
    for seed in range(0, 40, 4):  # all forty: docs/reliability.md has the command
        check_ground_truth(mode, seed, "swap")


def check_ground_truth(mode: str, seed: int, how: str) -> None:
    rng = random.Random(seed)
    data = payload(seed, rng.randrange(1, 60_000))
    raw = corrupt(rec.encode_recording(data, mode), rng, how)
    got = decode(raw, mode, chunk=rng.choice([4096, 1 << 16, 1 << 20]))
    bad = unreported_errors(data, got)
    assert not bad, f"{len(bad)} wrong bytes not reported lost, first at {bad[0]}"
    if got.ended and got.error is None:
        # a recording that ended lost no bytes silently off its end (a lost last sector
        # is reported at full capacity: its true length died with it; an ambiguous end
        # reports what it may have cut off as possibly lost)
        missing = len(data) - len(got.data)
        assert missing <= got.possibly_lost, f"{missing} bytes missing"
        if not got.lost and not got.possibly_lost:
            assert len(got.data) == len(data)


def test_the_ground_truth_check_can_fail() -> None:
    good = Decoded(data=b"abcd")
    assert unreported_errors(b"abXd", good) == [2]
    good.lost = [SectorLost(0, 2, 1)]
    assert unreported_errors(b"abXd", good) == []


# ---- through the command line ----
@pytest.mark.parametrize("raw", [b"", bytes(300_000), b"\xff" * 300_000,
                                 random.Random(3).randbytes(300_000)])
def test_backerd_decode_fails_with_one_line(raw: bytes, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(raw))
    stdout = io.TextIOWrapper(io.BytesIO())
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", stdout)
    with deadline(TIMEOUT):
        status = _run_decode()
    err = capsys.readouterr().err
    assert status != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def _run_decode() -> int:
    try:
        return main(["decode", "--mode", "nls"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
