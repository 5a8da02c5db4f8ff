"""The st state machine: Linux st semantics over a Medium.

Theory of operation: a Drive holds what st.c holds per drive (open state, direction, end-of-file
state, file and block counters, block size, options) and turns each open/read/write/ioctl/close
into Medium calls, following st.c's order of work: an ioctl first flushes (backs the tape over
fixed-mode read-ahead, or just drops it for ops that move the head anyway), writes the pending
filemark before rewind/BSF/seek/offline after a write, then performs the op and updates the
counters. The file and block counters are st's own, not the Medium's: they become -1 where st
loses track (after MTBSF, MTSEEK, a blank check), because mt and tar see exactly those values. The
transition rules live in ``state``, the ioctl wire (which ioctl, struct layouts, the gstat/dsreg
words) in ``ioctlwire``; errors are ``TapeError(errno)``.

Deliberate differences from st, each harmless to the tools: rejected ops (ENOSYS, EINVAL, EPERM)
change no state; MTFSF/MTBSF/MTFSR/MTBSR with count 0 move nothing; MTBSR stopped by BOT reports
block 0; MTIOCGET works while the position is lost; MTUNLOAD writes the pending filemark like
MTOFFL; MTERASE erases from the head and then rewinds (st reports file 0 block 0 after an erase).
One that FUSE forces (``flush``): the first close of any duplicate after a write ends the file.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from backerd.errors import TapeError
from backerd.tape import ioctlwire, mtio
from backerd.tape.density import is_valid_density, mode_for_density
from backerd.tape.medium import FILEMARK, BufferingMedium, DamagedBlock, Medium
from backerd.tape.state import (
    BLANK_ON_READ,
    DATA_READ,
    EOD_ON_READ,
    EOM_WRITE,
    KEEPS_RW,
    NO_TAPE_OK,
    NOT_IMPLEMENTED,
    RESTORES_POSITION,
    SEEK_NEXT,
    UNSUPPORTED_ERRNO,
    WEOF_BEFORE,
    WEOF_BEFORE_COUNTS,
    WRITING_OPS,
    ZERO_READ,
    ZERO_READ_NEXT_FILE,
    Eof,
    Rw,
)

MAX_BLOCK_SIZE = mtio.MT_ST_BLKSIZE_MASK  # what mt_dsreg can report
EOM_SPACE_COUNT = 0x7FFFFF  # st's MTEOM: space over this many filemarks


def _fail(code: int, message: str) -> TapeError:
    return TapeError(message, errno=code)


class Drive:
    """One st-like tape drive over ``medium``."""

    def __init__(self, medium: Medium, *, default_block_size: int = 0, min_block_size: int = 1,
                 max_block_size: int = MAX_BLOCK_SIZE,
                 options: int = mtio.MT_ST_DEFAULT_OPTIONS) -> None:
        self.medium = medium
        self.block_size = default_block_size
        self.default_block_size = default_block_size
        self.min_block_size = min_block_size
        self.max_block_size = max_block_size
        self.options = options
        self.other_settings: dict[int, int] = {}  # MTSETDRVBUFFER values we only keep
        self.is_open = False
        self.rewind_on_close = False
        self._node_rewinds = False
        self.read_only = False
        self.nonblocking = False
        self.rw = Rw.IDLE
        self.eof = Eof.NOEOF
        self.fileno = 0
        self.blkno = 0
        self.position_lost_flag = False
        self.locked = False
        self.soft_errors = 0
        self._readahead = bytearray()  # fixed mode: bytes of blocks read, not yet returned
        self._was_loaded = medium.loaded
        self._buffering = medium if isinstance(medium, BufferingMedium) else None  # asked once

    # -- helpers -------------------------------------------------------------------------

    def _check_media(self) -> None:
        """Notice a cassette inserted or removed behind our back (st's UNIT ATTENTION)."""
        if self.medium.loaded != self._was_loaded:
            self.media_changed()

    def media_changed(self) -> None:
        """A cassette was ejected or inserted between calls: a new session, at BOT."""
        self._readahead.clear()
        self.rw, self.eof = Rw.IDLE, Eof.NOEOF
        self.fileno = self.blkno = 0
        self.position_lost_flag = self.locked = False
        self._was_loaded = loaded = self.medium.loaded
        if loaded:  # a new session starts in the default block size (MT_ST_DEF_BLKSIZE)
            self.block_size = self.default_block_size

    def _require_tape(self, code: int = errno.ENOMEDIUM) -> None:
        if not self.medium.loaded:
            raise _fail(code, "no cassette in the drive")

    def _require_open(self) -> None:
        if not self.is_open:
            raise _fail(errno.EBADF, "drive is not open")

    @property
    def write_prohibited(self) -> bool:
        """st's write_prot: the cassette is protected or the descriptor is read-only."""
        return self.read_only or self.medium.write_protected

    def _add_file(self, delta: int) -> None:
        if self.fileno >= 0:
            self.fileno += delta

    def _add_block(self, delta: int) -> None:
        if self.blkno >= 0:
            self.blkno += delta

    def _at(self, fileno: int, blkno: int, eof: Eof) -> None:
        self.fileno, self.blkno, self.eof = fileno, blkno, eof

    def _reported_block(self) -> int:
        """mt_blkno: st's counter less the read-ahead blocks not yet fully returned."""
        if self.blkno < 0 or not self._readahead or not self.block_size:
            return self.blkno
        return self.blkno - -(-len(self._readahead) // self.block_size)

    def _flush(self, seek_next: bool) -> bool:
        """st's flush_buffer; True when a pending filemark was counted as crossed."""
        if not self.medium.loaded or self.rw is Rw.WRITING or not self.block_size:
            return False
        # st backs over the blocks not touched yet; the rest of a partly returned block
        # counts as read (st.c flush_buffer)
        backspace = len(self._readahead) // self.block_size
        self._readahead.clear()
        if not seek_next:
            if self.eof is Eof.FM_HIT:
                self.medium.space_filemarks(-1)
                self.eof = Eof.NOEOF
            if backspace:
                self.medium.space_blocks(-backspace)
                self._add_block(-backspace)
            return False
        if self.eof is Eof.FM_HIT:
            self._add_file(1)
            self.blkno = 0
            self.eof = Eof.NOEOF
            return True
        return False

    # -- open / close --------------------------------------------------------------------

    def open(self, rewind_on_close: bool, flags: int) -> None:
        if self.is_open:
            raise _fail(errno.EBUSY, "tape drive is already open")
        self._check_media()
        access = flags & os.O_ACCMODE
        nonblocking = bool(flags & os.O_NONBLOCK)
        if not self.medium.loaded and not nonblocking:
            raise _fail(errno.ENOMEDIUM, "no cassette in the drive")
        wants_write = access in (os.O_WRONLY, os.O_RDWR)
        if (self.medium.loaded and self.medium.write_protected and wants_write
                and not nonblocking):
            raise _fail(errno.EROFS, "cassette is write-protected")
        self.is_open = True
        self.rewind_on_close = self._node_rewinds = rewind_on_close
        self.read_only = access == os.O_RDONLY
        self.nonblocking = nonblocking
        self.rw = Rw.IDLE

    def flush(self) -> None:
        """st_flush: after a write, close(2) records the buffered blocks and the filemark,
        and reports their errors (ENOSPC, EIO). st does so at the last close of the open
        file only (it returns early while ``file_count(filp) > 1``); FUSE sends FLUSH at
        every close(2) of a duplicate without saying whether others remain, so here the
        first close after a write ends the file and a later write starts a new one."""
        if self.is_open:
            self._check_media()  # a changed cassette: nothing of this session to end
        if not (self.is_open and self.rw is Rw.WRITING and self.medium.loaded) or (
                self.position_lost_flag):
            return
        self.rw = Rw.IDLE  # failed or not, st does not write it again at release
        two = bool(self.options & mtio.MT_ST_TWO_FM)
        self.medium.write_filemarks(2 if two else 1)
        if two:
            self.medium.space_filemarks(-1)
        self._add_file(1)
        self._at(self.fileno, 0, Eof.FM)

    def close(self) -> None:
        """st_release, after st_flush if no FLUSH came (CUSE, a killed client): rewind if asked."""
        if not self.is_open:
            return
        error: TapeError | None = None
        try:
            try:
                self.flush()
            except TapeError as exc:
                error = exc
            if not self.position_lost_flag:  # after a read: back over fixed-mode read-ahead
                self._flush(seek_next=False)
            if self.medium.loaded and self.rewind_on_close:
                self.medium.rewind()  # also after a lost position: BOT is known again
                self._at(0, 0, Eof.NOEOF)
                self.position_lost_flag = False
        finally:
            self.is_open = False
            self.rw = Rw.IDLE
            self._readahead.clear()
        if error is not None:
            raise error

    def position_lost(self) -> None:
        """The head moved without us (manual deck, reset): I/O fails until repositioned."""
        self.position_lost_flag = True
        self._readahead.clear()
        self.rw = Rw.IDLE
        self._at(-1, -1, Eof.NOEOF)

    def note_soft_errors(self, count: int) -> None:
        """Recovered errors to report (and clear) in the next MTIOCGET's mt_erreg."""
        self.soft_errors += count

    def _io_checks(self) -> None:
        self._require_open()
        self._check_media()
        self._require_tape()
        if self.position_lost_flag:
            raise _fail(errno.EIO, "tape position lost; rewind or seek first")

    def would_wait(self, writing: bool, size: int) -> bool:
        """Whether ``write`` (``writing``) or ``read`` of ``size`` bytes may wait for the
        tape or the codec. False only in the middle of a stream the medium buffers (reads:
        variable blocks, the next one decoded already): cheap enough for an event loop."""
        medium = self._buffering
        if medium is None or not (
                self.is_open and self.rw is (Rw.WRITING if writing else Rw.READING)
                and self.eof is Eof.NOEOF and not self.position_lost_flag
                and self.medium.loaded == self._was_loaded):
            return True
        if writing:
            return medium.write_would_wait(size)
        return bool(self.block_size) or medium.read_would_wait(size)

    # -- read ----------------------------------------------------------------------------

    def read(self, size: int, exact: bool = True) -> bytes:
        self._io_checks()
        if size < 0:
            raise _fail(errno.EINVAL, "negative read size")
        if size == 0:
            return b""
        if not self.block_size and size > self.max_block_size:
            raise _fail(errno.EINVAL, f"read of {size} bytes is outside the block limits")
        self.rw = Rw.READING
        if not self._readahead and self.eof in EOD_ON_READ:
            nxt = EOD_ON_READ[self.eof]
            if nxt is None:
                raise _fail(errno.EIO, "read past end of data")
            self.eof = nxt
            return b""
        data = self._read_fixed(size) if self.block_size else self._read_variable(size, exact)
        if data:
            self.eof = DATA_READ.get(self.eof, self.eof)
        else:
            self._zero_read()
        return data

    def _zero_read(self) -> None:
        if self.eof in ZERO_READ_NEXT_FILE:
            self._add_file(1)
            self.blkno = 0
        self.eof = ZERO_READ.get(self.eof, self.eof)

    def _blank(self) -> None:
        """Blank tape met by a read: a zero read right after a filemark, else EIO."""
        self.blkno = -1
        nxt = BLANK_ON_READ.get(self.eof)
        if nxt is None:
            raise _fail(errno.EIO, "read at end of data")
        self.eof = nxt

    def _read_variable(self, size: int, exact: bool) -> bytes:
        if self.eof is Eof.FM_HIT:
            return b""
        try:
            item = self.medium.read_block(size)
        except DamagedBlock:
            self._add_block(1)  # the medium moved past the lost block
            raise
        if isinstance(item, bytes):
            self._add_block(1)
            if len(item) > size and exact:
                raise _fail(
                    errno.ENOMEM,
                    f"failed to read {len(item)} byte block with {size} byte transfer",
                )
            return item
        if item is FILEMARK:
            self.eof = Eof.FM_HIT
        else:
            self._blank()
        return b""

    def _read_fixed(self, size: int) -> bytes:
        out = bytearray()
        bs = self.block_size
        while len(out) < size:
            if not self._readahead:
                if self.eof is Eof.FM_HIT:
                    break
                try:
                    item = self.medium.read_block(bs)
                except DamagedBlock:
                    self._add_block(1)
                    raise
                if isinstance(item, bytes):
                    if len(item) != bs:
                        # st backs over the odd block: the data before it is returned,
                        # the next read meets the error again
                        self.medium.space_blocks(-1)
                        if out:
                            break
                        raise _fail(errno.EIO, f"incorrect block size {len(item)} (set {bs})")
                    self._readahead += item
                    self._add_block(1)
                elif item is FILEMARK:
                    self.eof = Eof.FM_HIT
                    break
                else:
                    if not out:
                        self._blank()
                    break
            take = min(len(self._readahead), size - len(out))
            out += self._readahead[:take]
            del self._readahead[:take]
        return bytes(out)

    # -- write ---------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        self._io_checks()
        if self.write_prohibited:
            raise _fail(errno.EACCES, "cassette is write-protected or opened read-only")
        n = len(data)
        if n == 0:
            return 0
        if self.block_size:
            if n % self.block_size:
                raise _fail(errno.EINVAL, "write not multiple of tape block size")
            chunks = [data[i : i + self.block_size] for i in range(0, n, self.block_size)]
        else:
            if n < self.min_block_size or n > self.max_block_size:
                raise _fail(errno.EINVAL, f"block of {n} bytes is outside the block limits")
            chunks = [data]
        if self.rw is Rw.READING:
            self._flush(seek_next=False)
        refusal = EOM_WRITE.get(self.eof)
        if refusal is not None:
            self.eof = refusal[1]
            raise _fail(getattr(errno, refusal[0]), "end of tape (early warning)")
        was, self.rw = self.rw, Rw.WRITING
        written = 0
        for chunk in chunks:
            try:
                self.medium.write_block(bytes(chunk))
            except TapeError as exc:
                if exc.errno == errno.ENOSPC:  # physical end: st's VOLUME OVERFLOW
                    self.eof = Eof.EOM_OK
                if written:
                    return written
                if exc.errno == errno.EACCES:  # refused before the tape moved, as st's
                    self.rw = was  # write-protect check: close writes no filemark
                raise
            written += len(chunk)
            self._add_block(1)
        if self.medium.early_warning() or self.eof is Eof.EOD_1:
            self.eof = Eof.EOM_OK
        else:
            self.eof = Eof.NOEOF
        return written

    # -- ioctl ---------------------------------------------------------------------------

    def ioctl(self, cmd: int, arg: bytes, out_size: int, *, privileged: bool = False) -> bytes:
        """One ioctl(2); returns the bytes to copy back to the caller (b"" for MTIOCTOP)."""
        self._require_open()
        request = ioctlwire.decode(cmd, arg)
        if request.op is not None:
            self.mtioctop(request.op.op, request.op.count, privileged=privileged)
            return b""
        if request.kind is ioctlwire.TapeIoctl.GET:
            return ioctlwire.pack_get(self.mtiocget(), request.wide)
        return ioctlwire.pack_pos(self.mtiocpos(), request.wide)

    def gstat(self) -> int:
        loaded = self.medium.loaded
        return ioctlwire.gstat_bits(ioctlwire.GstatFacts(
            options=self.options,
            block_size=self.block_size,
            loaded=loaded,
            write_protected=loaded and self.medium.write_protected,
            fileno=self.fileno,
            blkno=self._reported_block(),
            eof=self.eof,
            early_warning=loaded and self.medium.early_warning(),
            density=self.medium.density() if loaded else 0,
        ))

    def mtiocget(self) -> mtio.MtGet:
        self._check_media()
        if self.medium.loaded and not self.position_lost_flag:
            self._flush(seek_next=False)
        self.soft_errors += self.medium.take_soft_errors()
        erreg = min(self.soft_errors, mtio.MT_ST_SOFTERR_MASK)
        self.soft_errors = 0
        loaded = self.medium.loaded
        density = self.medium.density() if loaded else 0
        return mtio.MtGet(
            type=mtio.MT_ISSCSI2,
            resid=0,  # st reports the current partition here
            dsreg=ioctlwire.dsreg(self.block_size, density),
            gstat=self.gstat(),
            erreg=erreg,
            fileno=self.fileno if loaded else -1,
            blkno=self._reported_block() if loaded else -1,
        )

    def mtiocpos(self) -> mtio.MtPos:
        self._check_media()
        self._require_tape(errno.EIO)
        if self.position_lost_flag:
            raise _fail(errno.EIO, "tape position lost")
        self._flush(seek_next=False)
        return mtio.MtPos(self.medium.tell())

    def mtioctop(self, op: int, count: int, *, privileged: bool = False) -> None:
        """One MTIOCTOP operation (st_ioctl + st_int_ioctl)."""
        self._require_open()
        if op == mtio.MTSETDRVBUFFER and not privileged:
            raise _fail(errno.EPERM, "MTSETDRVBUFFER only allowed for root")
        if op in NOT_IMPLEMENTED or op not in mtio.OP_NAMES:
            raise _fail(errno.ENOSYS, f"tape operation {op} not supported")
        self._check_media()
        if op in (mtio.MTSETPART, mtio.MTMKPART):
            raise _fail(errno.EINVAL, "the tape has no partitions")
        if op == mtio.MTSETDRVBUFFER and count & mtio.MT_ST_OPTIONS:
            self._set_options(count)
            return
        if not self.medium.loaded and op not in NO_TAPE_OK:
            raise _fail(errno.ENOMEDIUM, "no cassette in the drive")
        if self.position_lost_flag and op not in RESTORES_POSITION:
            raise _fail(errno.EIO, "tape position lost; rewind or seek first")
        if op in WRITING_OPS and self.write_prohibited:
            raise _fail(errno.EACCES, "cassette is write-protected or opened read-only")
        if op in UNSUPPORTED_ERRNO:
            code = getattr(errno, UNSUPPORTED_ERRNO[op])
            raise _fail(code, f"{mtio.OP_NAMES[op]} is not supported by a Backer tape")
        if op in (mtio.MTWEOF, mtio.MTWEOFI, mtio.MTERASE) and count < 0:
            raise _fail(errno.EINVAL, "negative count")

        if self.medium.loaded and not self.position_lost_flag:
            if self._flush(seek_next=op in SEEK_NEXT):
                if op in (mtio.MTFSF, mtio.MTFSFM, mtio.MTEOM):
                    count -= 1
                elif op in (mtio.MTBSF, mtio.MTBSFM):
                    count += 1
            if self.rw is Rw.WRITING and op in WEOF_BEFORE:
                self._weof(1)
                if op in WEOF_BEFORE_COUNTS:
                    count += 1
                self.rw = Rw.IDLE
        if op not in KEEPS_RW:
            self.rw = Rw.IDLE
        if op in (mtio.MTOFFL, mtio.MTUNLOAD):
            self.locked = False

        handler = self._OPS[op]
        handler(self, count)
        if op in RESTORES_POSITION:
            self.position_lost_flag = False

    # -- the operations ------------------------------------------------------------------

    def _op_fsf(self, count: int) -> None:
        if count < 0:
            return self._op_bsf(-count)
        if count == 0:
            return None
        done = self.medium.space_filemarks(count)
        self._add_file(done)
        if done == count:
            self.blkno = 0
            self.eof = Eof.FM
            return None
        self.blkno = -1
        self.eof = Eof.EOD
        raise _fail(errno.EIO, "end of data while spacing forward over filemarks")

    def _op_bsf(self, count: int) -> None:
        if count < 0:
            return self._op_fsf(-count)
        if count == 0:
            return None
        done = -self.medium.space_filemarks(-count)
        self._add_file(-done)
        self.eof = Eof.NOEOF
        if done == count:
            self.blkno = -1  # st cannot know how long the previous file is
            return None
        self.blkno = 0
        raise _fail(errno.EIO, "beginning of tape while spacing back over filemarks")

    def _op_fsr(self, count: int) -> None:
        if count < 0:
            return self._op_bsr(-count)
        if count == 0:
            return None
        before = self.medium.position().file
        done = self.medium.space_blocks(count)
        self._add_block(done)
        if done == count:
            self.eof = Eof.NOEOF
            return None
        if self.medium.position().file != before:
            self._add_file(1)
            self.blkno = 0
            self.eof = Eof.FM
            raise _fail(errno.EIO, "filemark while spacing forward over blocks")
        self.eof = Eof.EOD
        raise _fail(errno.EIO, "end of data while spacing forward over blocks")

    def _op_bsr(self, count: int) -> None:
        if count < 0:
            return self._op_fsr(-count)
        if count == 0:
            return None
        before = self.medium.position().file
        done = -self.medium.space_blocks(-count)
        self.eof = Eof.NOEOF
        if done == count:
            self._add_block(-count)
            return None
        if self.medium.position().file != before:
            self._add_file(-1)
            self.blkno = -1
            raise _fail(errno.EIO, "filemark while spacing back over blocks")
        self._add_block(-done)
        if self.medium.at_bot():
            self.blkno = 0
        raise _fail(errno.EIO, "beginning of tape while spacing back over blocks")

    def _weof(self, count: int) -> None:
        if count == 0:
            return
        self.medium.write_filemarks(count)
        self._add_file(count)
        self.blkno = 0
        self.eof = Eof.EOM_OK if self.medium.early_warning() else Eof.NOEOF

    def _op_rew(self, count: int) -> None:
        self.medium.rewind()
        self._at(0, 0, Eof.NOEOF)

    def _op_offl(self, count: int) -> None:
        self.medium.rewind()
        self.medium.unload()
        self._was_loaded = False
        self._at(0, 0, Eof.NOEOF)
        self.rewind_on_close = False

    def _op_nop(self, count: int) -> None:
        """Only the flush st does before every op."""

    def _op_bsfm(self, count: int) -> None:
        self._op_bsf(count)
        self._op_fsf(1)

    def _op_fsfm(self, count: int) -> None:
        self._op_fsf(count)
        self._op_bsf(1)

    def _op_eom(self, count: int) -> None:
        if self.options & mtio.MT_ST_FAST_MTEOM:
            self.medium.seek_eod()
            self._at(-1, -1, Eof.EOD)
            return
        # st spaces over filemarks until end of data: the file number stays valid, the
        # block number becomes unknown
        done = self.medium.space_filemarks(EOM_SPACE_COUNT)
        self.medium.seek_eod()  # also past blocks of a last file without a filemark
        self._add_file(done)
        self._at(self.fileno, -1, Eof.EOD)

    def _op_erase(self, count: int) -> None:
        self.medium.erase()
        self.medium.rewind()
        self._at(0, 0, Eof.NOEOF)

    def _op_setblk(self, count: int) -> None:
        if count < 0 or (count and not self.min_block_size <= count <= self.max_block_size):
            raise _fail(errno.EINVAL, f"block size {count} outside the block limits")
        self.block_size = count

    def _op_setdensity(self, count: int) -> None:
        if not is_valid_density(count):
            raise _fail(errno.EINVAL, f"density code {count:#x} is not a Backer mode")
        self.medium.set_density(count)

    def _op_seek(self, count: int) -> None:
        try:
            self.medium.locate(count)
        except TapeError:
            self._at(-1, -1, Eof.NOEOF)  # st's set_location, whatever the outcome
            raise
        if count == 0:
            self._at(0, 0, Eof.NOEOF)
        else:
            self._at(-1, -1, Eof.NOEOF)

    def _op_lock(self, count: int) -> None:
        self.locked = True

    def _op_unlock(self, count: int) -> None:
        self.locked = False

    def _op_load(self, count: int) -> None:
        self.medium.load()
        self.rewind_on_close = self._node_rewinds  # st: rew_at_close = autorew_dev
        if not self._was_loaded:
            self.block_size = self.default_block_size
        self._was_loaded = True
        self._readahead.clear()
        self._at(0, 0, Eof.NOEOF)

    def _op_drvbuffer(self, count: int) -> None:
        self.other_settings[0] = count  # the drive's buffering mode: nothing to change

    def _set_options(self, value: int) -> None:
        self.options, self.default_block_size, other = ioctlwire.apply_options(
            self.options, self.default_block_size, value)
        if other is not None:
            self.other_settings[other[0]] = other[1]

    _OPS: dict[int, Any] = {
        mtio.MTFSF: _op_fsf,
        mtio.MTBSF: _op_bsf,
        mtio.MTFSR: _op_fsr,
        mtio.MTBSR: _op_bsr,
        mtio.MTWEOF: _weof,
        mtio.MTWEOFI: _weof,
        mtio.MTREW: _op_rew,
        mtio.MTOFFL: _op_offl,
        mtio.MTUNLOAD: _op_offl,
        mtio.MTNOP: _op_nop,
        mtio.MTRETEN: _op_rew,
        mtio.MTBSFM: _op_bsfm,
        mtio.MTFSFM: _op_fsfm,
        mtio.MTEOM: _op_eom,
        mtio.MTERASE: _op_erase,
        mtio.MTSETBLK: _op_setblk,
        mtio.MTSETDENSITY: _op_setdensity,
        mtio.MTSEEK: _op_seek,
        mtio.MTLOCK: _op_lock,
        mtio.MTUNLOCK: _op_unlock,
        mtio.MTLOAD: _op_load,
        mtio.MTSETDRVBUFFER: _op_drvbuffer,
    }

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A snapshot for status displays; changes nothing (no flush)."""
        loaded = self.medium.loaded
        density = self.medium.density() if loaded else None
        return {
            "open": self.is_open,
            "rewind_on_close": self.rewind_on_close,
            "read_only": self.read_only,
            "loaded": loaded,
            "write_protected": bool(loaded and self.medium.write_protected),
            "file": self.fileno if loaded else -1,
            "block": self._reported_block() if loaded else -1,
            "gstat": mtio.gstat_names(self.gstat()),
            "block_size": self.block_size,
            "density": density,
            "mode": mode_for_density(density) if density is not None else None,
            "direction": self.rw.value,
            "eof": self.eof.name,
            "early_warning": bool(loaded and self.medium.early_warning()),
            "locked": self.locked,
            "position_lost": self.position_lost_flag,
            "options": self.options,
        }
