"""Hypothesis: the Drive against a small independent model of a tape.

The model keeps the tape as a flat list of tokens (a block's bytes, or None for a
filemark) and the head as an index into it, and states st's rules in those terms. It
predicts every result and errno, the st file and block numbers (or -1 where st loses
track) and the final contents of the medium."""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import settings
from hypothesis import strategies as s
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from backerd.errors import TapeError
from backerd.tape import mtio
from backerd.tape.drive import Drive
from backerd.tape.medium import MemoryMedium

FM = None


class Model:
    def __init__(self) -> None:
        self.tokens: list[bytes | None] = []
        self.head = 0
        self.writing = False
        self.zero_due = False  # a zero read is due at blank tape (just after a filemark)
        self.at_end = False  # end of data was reported: reads fail without moving
        self.file_known = True
        self.block_known = True

    # where the head is, in st's terms
    def file(self) -> int:
        return self.tokens[: self.head].count(FM)

    def block(self) -> int:
        before = self.tokens[: self.head]
        last_fm = max((i for i, t in enumerate(before) if t is FM), default=-1)
        return self.head - last_fm - 1

    def files(self) -> list[list[bytes]]:
        out: list[list[bytes]] = [[]]
        for t in self.tokens:
            if t is FM:
                out.append([])
            else:
                out[-1].append(t)
        if not out[-1]:
            out.pop()
        return out

    def _filemarks(self, n: int) -> None:
        self.tokens = self.tokens[: self.head] + [FM] * n
        self.head += n
        self.block_known = True

    def _finish_write(self) -> None:
        if self.writing:
            self._filemarks(1)
        self.writing = False

    # operations: return data / None, or raise OSError-like int via ModelError
    def write(self, data: bytes) -> int:
        self.tokens = self.tokens[: self.head] + [data]
        self.head += 1
        self.writing = True
        self.zero_due = self.at_end = False
        return len(data)

    def read(self, size: int) -> bytes:
        self.writing = False
        if self.at_end:
            raise ModelError(errno.EIO)
        if self.head == len(self.tokens):
            self.block_known = False
            if self.zero_due:
                self.zero_due = False
                self.at_end = True
                return b""
            raise ModelError(errno.EIO)
        token = self.tokens[self.head]
        self.head += 1
        if token is FM:
            self.zero_due = True
            self.block_known = True
            return b""
        if len(token) > size:
            raise ModelError(errno.ENOMEM)
        self.zero_due = False
        return token

    def close_reopen(self) -> None:
        if self.writing:
            self._filemarks(1)
            self.zero_due = True
        self.writing = False

    def weof(self, n: int) -> None:
        self._filemarks(n)
        self.writing = False
        self.zero_due = self.at_end = False

    def rewind(self) -> None:
        self._finish_write()
        self.head = 0
        self.zero_due = self.at_end = False
        self.file_known = self.block_known = True

    def fsf(self, n: int) -> None:
        self.writing = False
        self.block_known = True
        self.at_end = False
        for _ in range(n):
            rest = self.tokens[self.head :]
            if FM not in rest:
                self.head = len(self.tokens)
                self.zero_due = False
                self.at_end = True
                self.block_known = False
                raise ModelError(errno.EIO)
            self.head += rest.index(FM) + 1
        self.zero_due = True

    def bsf(self, n: int) -> None:
        if self.writing:
            self._filemarks(1)
            n += 1
        self.writing = False
        self.zero_due = self.at_end = False
        for _ in range(n):
            marks = [i for i in range(self.head) if self.tokens[i] is FM]
            if not marks:
                self.head = 0
                self.block_known = True
                raise ModelError(errno.EIO)
            self.head = marks[-1]
        self.block_known = False

    def fsr(self, n: int) -> None:
        self.writing = False
        self.zero_due = self.at_end = False
        for _ in range(n):
            if self.head == len(self.tokens):
                self.at_end = True
                raise ModelError(errno.EIO)
            token = self.tokens[self.head]
            self.head += 1
            if token is FM:
                self.zero_due = True
                self.block_known = True
                raise ModelError(errno.EIO)

    def bsr(self, n: int) -> None:
        self.writing = False
        self.zero_due = self.at_end = False
        for _ in range(n):
            if self.head == 0:
                self.block_known = True
                raise ModelError(errno.EIO)
            self.head -= 1
            if self.tokens[self.head] is FM:
                self.block_known = False
                raise ModelError(errno.EIO)

    def eom(self) -> None:
        self.writing = False
        self.zero_due = False
        self.at_end = True
        self.head = len(self.tokens)
        self.block_known = False  # st spaces over filemarks: the block is unknown

    def seek(self, address: int) -> None:
        self._finish_write()
        self.zero_due = self.at_end = False
        if address > len(self.tokens):
            self.head = len(self.tokens)
            self.file_known = self.block_known = False
            raise ModelError(errno.EIO)
        self.head = address
        self.file_known = self.block_known = address == 0


class ModelError(Exception):
    def __init__(self, code: int) -> None:
        self.errno = code


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (TapeError, ModelError) as exc:
        return ("err", exc.errno)


blocks = s.binary(min_size=1, max_size=12)
counts = s.integers(min_value=1, max_value=3)


class DriveVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.medium = MemoryMedium()
        self.drive = Drive(self.medium)
        self.drive.open(False, os.O_RDWR)
        self.model = Model()

    def op(self, op: int, count: int) -> None:
        self.drive.mtioctop(op, count)

    def same(self, drive_call, model_call) -> None:
        got, want = outcome(*drive_call), outcome(*model_call)
        if want[0] == "ok" and want[1] is None:
            want = ("ok", got[1] if got[0] == "ok" else None)
        assert got == want

    @rule(data=blocks)
    def write(self, data: bytes) -> None:
        self.same((self.drive.write, data), (self.model.write, data))

    @rule(size=s.sampled_from([4, 64]))
    def read(self, size: int) -> None:
        self.same((self.drive.read, size), (self.model.read, size))

    @rule()
    def close_reopen(self) -> None:
        self.drive.close()
        self.drive.open(False, os.O_RDWR)
        self.model.close_reopen()

    @rule(n=counts)
    def weof(self, n: int) -> None:
        self.same((self.op, mtio.MTWEOF, n), (self.model.weof, n))

    @rule()
    def rewind(self) -> None:
        self.same((self.op, mtio.MTREW, 1), (self.model.rewind,))

    @rule(n=counts)
    def fsf(self, n: int) -> None:
        self.same((self.op, mtio.MTFSF, n), (self.model.fsf, n))

    @rule(n=counts)
    def bsf(self, n: int) -> None:
        self.same((self.op, mtio.MTBSF, n), (self.model.bsf, n))

    @rule(n=counts)
    def fsr(self, n: int) -> None:
        self.same((self.op, mtio.MTFSR, n), (self.model.fsr, n))

    @rule(n=counts)
    def bsr(self, n: int) -> None:
        self.same((self.op, mtio.MTBSR, n), (self.model.bsr, n))

    @rule()
    def eom(self) -> None:
        self.same((self.op, mtio.MTEOM, 1), (self.model.eom,))

    @rule(address=s.integers(min_value=0, max_value=12))
    def seek(self, address: int) -> None:
        self.same((self.op, mtio.MTSEEK, address), (self.model.seek, address))

    @invariant()
    def positions_agree(self) -> None:
        status = self.drive.status()
        m = self.model
        assert status["file"] == (m.file() if m.file_known else -1)
        assert status["block"] == (m.block() if m.block_known else -1)
        assert self.drive.mtiocpos().blkno == m.head

    @invariant()
    def contents_agree(self) -> None:
        assert self.medium.files() == self.model.files()

    def teardown(self) -> None:
        self.drive.close()
        self.model.close_reopen()
        assert self.medium.files() == self.model.files()


DriveVersusModel.TestCase.settings = settings(max_examples=80, stateful_step_count=30,
                                              deadline=None)
test_drive_versus_model = DriveVersusModel.TestCase


class DeepDriveVersusModel(DriveVersusModel):
    pass


DeepDriveVersusModel.TestCase.settings = settings(max_examples=400, stateful_step_count=50,
                                                  deadline=None)
test_drive_versus_model_deep = pytest.mark.slow(DeepDriveVersusModel.TestCase)
