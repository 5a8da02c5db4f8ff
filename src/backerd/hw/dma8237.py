"""The 8237 DMA controller as seen by the Backer backends: plans and decoding.

Theory of operation: programming a channel of the first 8237 is a fixed sequence of
port writes (mask, clear flip-flop, mode, address low/high, page, count low/high,
unmask). ``program_plan`` returns that sequence as ``(port, value)`` pairs so it can be
checked without hardware and replayed on any ``PortBus``; ``residue_plan`` and
``decode_residue`` do the same for reading the count back. The count register holds
``N - 1``; the residue (bytes left in the current block) is the register value + 1,
and after the last byte the register wraps to 0xFFFF (residue 0 = terminal count).
"""

from __future__ import annotations

from dataclasses import dataclass

ADDRESS_PORT = {0: 0x00, 1: 0x02, 2: 0x04, 3: 0x06}
COUNT_PORT = {0: 0x01, 1: 0x03, 2: 0x05, 3: 0x07}
PAGE_PORT = {0: 0x87, 1: 0x83, 2: 0x81, 3: 0x82}
STATUS = 0x08  # read: status; write: command
REQUEST = 0x09
SINGLE_MASK = 0x0A
MODE = 0x0B
CLEAR_FLIP_FLOP = 0x0C
MASTER_CLEAR = 0x0D
CLEAR_MASKS = 0x0E
ALL_MASK = 0x0F

# Mode byte fields.
MODE_VERIFY, MODE_WRITE, MODE_READ = 0x00, 0x04, 0x08  # WRITE = device -> memory
MODE_AUTO_INIT = 0x10
MODE_DECREMENT = 0x20
MODE_DEMAND, MODE_SINGLE, MODE_BLOCK, MODE_CASCADE = 0x00, 0x40, 0x80, 0xC0

ISA_RECEIVE = MODE_DEMAND | MODE_AUTO_INIT | MODE_WRITE  # 0x14
ISA_TRANSMIT = MODE_DEMAND | MODE_AUTO_INIT | MODE_READ  # 0x18
ECP_RECEIVE = MODE_SINGLE | MODE_AUTO_INIT | MODE_WRITE  # 0x54
ECP_TRANSMIT = MODE_SINGLE | MODE_AUTO_INIT | MODE_READ  # 0x58

DMA_LIMIT = 16 << 20  # ISA DMA reaches the first 16 MiB only
DMA_PAGE = 64 << 10  # a block must not cross a 64 KiB boundary


@dataclass(frozen=True)
class Block:
    channel: int
    mode: int  # without the channel bits
    address: int  # physical
    count: int  # bytes, 1..65536

    def check(self) -> None:
        if self.channel not in ADDRESS_PORT:
            raise ValueError(f"DMA channel {self.channel} is not an 8-bit channel (0-3)")
        if not 1 <= self.count <= DMA_PAGE:
            raise ValueError(f"DMA count {self.count} outside 1..65536")
        if self.address < 0 or self.address + self.count > DMA_LIMIT:
            raise ValueError(f"DMA block at {self.address:#x} is not below 16 MiB")
        if self.address // DMA_PAGE != (self.address + self.count - 1) // DMA_PAGE:
            raise ValueError(f"DMA block at {self.address:#x}+{self.count} crosses 64 KiB")


def program_plan(block: Block) -> list[tuple[int, int]]:
    """Port writes that program ``block`` and leave the channel unmasked."""
    block.check()
    ch, address, count = block.channel, block.address, block.count - 1
    return [
        (SINGLE_MASK, 0x04 | ch),
        (CLEAR_FLIP_FLOP, 0),
        (MODE, block.mode | ch),
        (ADDRESS_PORT[ch], address & 0xFF),
        (ADDRESS_PORT[ch], (address >> 8) & 0xFF),
        (PAGE_PORT[ch], (address >> 16) & 0xFF),
        (CLEAR_FLIP_FLOP, 0),
        (COUNT_PORT[ch], count & 0xFF),
        (COUNT_PORT[ch], (count >> 8) & 0xFF),
        (SINGLE_MASK, ch),
    ]


def mask_plan(channel: int) -> list[tuple[int, int]]:
    return [(SINGLE_MASK, 0x04 | channel)]


def decode_residue(low: int, high: int) -> int:
    """Bytes left in the block from the two count-register reads (0 after TC)."""
    return ((high << 8 | low) + 1) & 0xFFFF


def position(block_count: int, residue: int) -> int:
    """Offset of the next byte the channel moves, inside a block of ``block_count``."""
    if residue == 0:
        return 0  # terminal count passed: an auto-init channel starts over
    return (block_count - residue) % block_count


def status_dreq(status: int, channel: int) -> bool:
    return bool(status & (0x10 << channel))


def status_tc(status: int, channel: int) -> bool:
    return bool(status & (0x01 << channel))
