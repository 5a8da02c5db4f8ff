"""The sans-IO lircd protocol: replies, broadcasts, SIGHUP, chunking and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.vcr.lirc_protocol import (
    MAX_DATA_LINES,
    MAX_LINE,
    ButtonPress,
    LircClient,
    LircParser,
    Malformed,
    Reply,
    Sighup,
)

# -- an independent writer of what lircd sends (the oracle) ---------------------------


def reply_bytes(command: str, success: bool, data: list[str] | None) -> bytes:
    lines = ["BEGIN", command, "SUCCESS" if success else "ERROR"]
    if data is not None:
        lines += ["DATA", str(len(data)), *data]
    lines.append("END")
    return "".join(line + "\n" for line in lines).encode()


def broadcast_bytes(code: int, repeat: int, key: str, remote: str) -> bytes:
    return f"{code:016x} {repeat:02x} {key} {remote}\n".encode()


SIGHUP = b"BEGIN\nSIGHUP\nEND\n"

names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
data_lines = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30), max_size=5
)


@st.composite
def packets(draw: st.DrawFn) -> tuple[bytes, object]:
    kind = draw(st.sampled_from(["reply", "broadcast", "sighup"]))
    if kind == "sighup":
        return SIGHUP, Sighup()
    if kind == "broadcast":
        code, repeat = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 255))
        key, remote = draw(names), draw(names)
        return broadcast_bytes(code, repeat, key, remote), ButtonPress(
            f"{code:016x}", repeat, key, remote)
    command = "SEND_ONCE " + draw(names) + " " + draw(names)
    success = draw(st.booleans())
    data = draw(st.one_of(st.none(), data_lines)) if success else draw(data_lines)
    return reply_bytes(command, success, data), Reply(command, success, tuple(data or ()))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(st.lists(packets(), max_size=8), st.lists(st.integers(0, 10_000), max_size=20))
def test_any_chunking_of_valid_traffic_gives_the_same_events(seq, cuts) -> None:
    stream = b"".join(raw for raw, _ in seq)
    parser = LircParser()
    events = [e for chunk in chunked(stream, cuts) for e in parser.feed(chunk)]
    assert events == [expected for _, expected in seq]
    assert parser.idle


@given(st.binary(max_size=3000), st.lists(st.integers(0, 5000), max_size=10))
def test_garbage_never_raises_and_the_parser_recovers(garbage, cuts) -> None:
    parser = LircParser()
    for chunk in chunked(garbage, cuts):
        for event in parser.feed(chunk):
            assert isinstance(event, Reply | ButtonPress | Sighup | Malformed)
    # Empty lines resynchronise (a garbage DATA count swallows up to MAX_DATA_LINES of
    # them), and the next packet is then read correctly, whatever came before.
    good = reply_bytes("SEND_ONCE vcr PLAY", True, None)
    events = parser.feed(b"\n" * (MAX_DATA_LINES + 3) + good)
    assert Reply("SEND_ONCE vcr PLAY", True) in events


def test_data_lines_are_taken_verbatim_even_keywords() -> None:
    raw = reply_bytes("LIST vcr", True, ["END", "BEGIN", "0000000000000001 PLAY"])
    assert LircParser().feed(raw) == [Reply("LIST vcr", True, ("END", "BEGIN",
                                                                "0000000000000001 PLAY"))]


def test_error_reply_carries_its_message() -> None:
    (reply,) = LircParser().feed(reply_bytes("SEND_ONCE vcr NOPE", False,
                                             ["unknown command: \"NOPE\""]))
    assert isinstance(reply, Reply) and not reply.success
    assert reply.message == 'unknown command: "NOPE"'


def test_zero_data_lines_and_crlf() -> None:
    raw = b"BEGIN\r\nVERSION\r\nSUCCESS\r\nDATA\r\n0\r\nEND\r\n"
    assert LircParser().feed(raw) == [Reply("VERSION", True, ())]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"END\n", "between packets"),
    (b"BEGIN\nX\nMAYBE\n", "in a reply"),
    (b"BEGIN\nX\nSUCCESS\nDATA\nmany\n", "in a reply"),
    (b"BEGIN\nX\nSUCCESS\nDATA\n99999999\n", "too large"),
    (b"BEGIN\nX\nSUCCESS\nBEGIN\n", "cut short"),
    (b"\xff\xfe\n", "UTF-8"),
    (b"x" * (MAX_LINE + 1), "longer"),
])
def test_malformed_input_is_reported_once(raw: bytes, reason: str) -> None:
    events = LircParser().feed(raw)
    assert len(events) == 1 and isinstance(events[0], Malformed)
    assert reason in events[0].reason


def test_overlong_line_is_skipped_up_to_its_newline() -> None:
    parser = LircParser()
    events = parser.feed(b"y" * (MAX_LINE * 3))
    events += parser.feed(b"yyy\n" + SIGHUP)
    assert events == [Malformed(f"line longer than {MAX_LINE} bytes"), Sighup()]


def test_client_pairs_replies_in_order_and_ignores_broadcasts_and_sighup() -> None:
    client = LircClient()
    assert client.send_once("vcr", "PLAY") == b"SEND_ONCE vcr PLAY\n"
    assert client.send_once("vcr", "FF", 3) == b"SEND_ONCE vcr FF 3\n"
    traffic = (
        broadcast_bytes(0x20DF10EF, 0, "KEY_POWER", "tv") + SIGHUP
        + reply_bytes("SEND_ONCE vcr PLAY", True, None)
        + reply_bytes("SEND_ONCE other STOP", True, None)  # not ours
        + reply_bytes("send_once  vcr FF 3", False, ["transmission failed"])
    )
    events = client.feed(traffic)
    replies = [e for e in events if isinstance(e, Reply)]
    assert [(r.command, r.expected) for r in replies] == [
        ("SEND_ONCE vcr PLAY", True), ("SEND_ONCE other STOP", False),
        ("send_once  vcr FF 3", True)]
    assert client.waiting == ()
    assert any(isinstance(e, Sighup) for e in events)


@pytest.mark.parametrize(("remote", "key", "repeats"), [
    ("vcr", "PLAY PAUSE", 0), ("", "PLAY", 0), ("vcr\n", "PLAY", 0), ("vcr", "PLAY", 601),
    ("vcr", "PLAY", -1),
])
def test_client_refuses_names_lircd_could_not_parse(remote, key, repeats) -> None:
    with pytest.raises(ValueError):
        LircClient().send_once(remote, key, repeats)


def test_a_garbage_data_count_is_bounded() -> None:
    parser = LircParser()
    parser.feed(b"BEGIN\nX\nSUCCESS\nDATA\n3\n")
    events = parser.feed(b"BEGIN\nSIGHUP\nEND\n\n" + SIGHUP)  # three data lines, then junk
    assert events == [Malformed("unexpected line in a reply (end)", ""), Sighup()]


@given(st.lists(st.tuples(names, names, st.booleans(), st.lists(packets(), max_size=3)),
                min_size=1, max_size=6),
       st.lists(st.integers(0, 10_000), max_size=20))
def test_client_pairs_every_reply_whatever_arrives_around_it(exchanges, cuts) -> None:
    client = LircClient()
    stream = b""
    for remote, key, ok, chatter in exchanges:
        client.send_once(remote, key)
        noise = [raw for raw, event in chatter if not isinstance(event, Reply)]
        stream += b"".join(noise) + reply_bytes(f"SEND_ONCE {remote} {key}", ok,
                                                None if ok else ["failed"])
    events = [e for chunk in chunked(stream, cuts) for e in client.feed(chunk)]
    replies = [e for e in events if isinstance(e, Reply)]
    assert [(r.command, r.success, r.expected) for r in replies] == [
        (f"SEND_ONCE {remote} {key}", ok, True) for remote, key, ok, _ in exchanges]
    assert client.waiting == ()
