"""What every Deck must do. Add a factory to DECKS when a new deck backend appears."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backerd.errors import BackerError
from backerd.vcr.base import Deck, Recording
from backerd.vcr.sim import Cassette, SimDeck


def _sim(tmp_path: Path) -> Deck:
    return SimDeck(Cassette.create(tmp_path / "conf.img", "ntsc", "T-15", sync=False))


DECKS: dict[str, Callable[[Path], Deck]] = {"sim": _sim}


@pytest.fixture(params=sorted(DECKS))
def deck(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deck]:
    d = DECKS[request.param](tmp_path)
    yield d
    cassette = getattr(d, "cassette", None)
    if cassette is not None:
        cassette.close()


def fields(n: int, tag: int) -> list[bytes]:
    return [bytes([tag, i % 256 or 1]) * 506 for i in range(n)]


def test_protocol_and_geometry(deck: Deck) -> None:
    assert isinstance(deck, Deck)
    assert deck.loaded and deck.position() == 0
    assert deck.standard in ("ntsc", "pal") and deck.fps in (50, 60)
    assert deck.length > 0 and deck.counter() == "0:00:00"


def test_blank_tape_plays_no_signal(deck: Deck) -> None:
    assert deck.play(5) == [None] * 5
    assert deck.position() == 5
    assert deck.signal_end() == 0


def test_record_then_play_back(deck: Deck) -> None:
    deck.record(fields(30, 1))
    assert deck.position() == 30 and deck.signal_end() == 30
    deck.rewind()
    assert deck.position() == 0
    assert deck.play(32) == fields(30, 1) + [None, None]


def test_recording_over_old_tape_ends_it_there(deck: Deck) -> None:
    deck.record(fields(30, 1))
    deck.seek(10)
    deck.record(fields(5, 2))
    assert deck.signal_end() == 15
    deck.seek(0)
    assert deck.play(20) == fields(10, 1) + fields(5, 2) + [None] * 5


def test_winding_stops_at_both_ends(deck: Deck) -> None:
    deck.wind(-100)
    assert deck.position() == 0
    deck.wind(deck.length + 100)
    assert deck.position() == deck.length
    assert deck.play(3) == []
    deck.seek(deck.length - 1)
    with pytest.raises(BackerError) as e:
        deck.record(fields(2, 3))
    assert e.value.errno == errno.ENOSPC


def test_index_search_finds_recordings(deck: Deck) -> None:
    catalog = deck.catalog
    assert catalog is not None
    for k in range(3):
        start = deck.position()
        catalog.begin_recording(start, "nls", index=k)
        deck.record(fields(10 + k, k + 1))
        catalog.commit_recording(Recording(start, 10 + k, "nls", user_bytes=0, blocks=()))
    deck.stop()
    deck.index_search(1)
    assert deck.position() == 10 and deck.play(1) == fields(1, 2)
    deck.index_search(0)
    assert deck.position() == 0
    with pytest.raises(BackerError):
        deck.index_search(3)


def test_eject_and_load(deck: Deck) -> None:
    deck.record(fields(4, 1))
    deck.eject()
    assert not deck.loaded
    with pytest.raises(BackerError) as e:
        deck.play(1)
    assert e.value.errno == errno.ENOMEDIUM
    deck.load()
    assert deck.loaded and deck.position() == 0
    assert deck.play(4) == fields(4, 1)
