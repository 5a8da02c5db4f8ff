"""Which strengths of the reader are switched on: one typed value the Player passes down.

Theory of operation: the reader recovers more than the original driver did through a
few independent features. Each can be switched off, so a benchmark can measure what it
is worth and compare with the original's method (`DecoderOptions.original()`):

* `erasures`: bytes known or likely to be damaged are passed to the inner RS decoder as
  erasures (invalid GCR words, re-aligned slip spans, tiers around unmatched key bytes,
  constant-level dropout runs, dropout windows). Off: errors-only inner decoding.
* `dropout_runs`: runs of 0x00 or 0xFF in the field payload (a dropout reads as a
  constant level) are erasure hints for sectors that fail without them. Needs
  `erasures`.
* `resync`: line slips inside a field are re-aligned (and their candidate lines tried).
  Off: a sector in a field with a line slip is lost, as the original lost it.
* `outer_placement`: EP (3.102 ecc2) lost sectors are erasures at their true codeword
  positions. Off: at the group sector index, the original decoders' mistake (spec 17.3).
* `partial_sectors`: SP sectors whose header decoded but some data codeword did not
  deliver the codewords that decoded and report only the others' bytes as lost.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class DecoderOptions:
    erasures: bool = True
    dropout_runs: bool = True
    resync: bool = True
    outer_placement: bool = True
    partial_sectors: bool = True

    @classmethod
    def original(cls) -> DecoderOptions:
        """The original driver's method: errors-only inner decoding, a sector lost on any
        line slip, outer erasures at the group index, whole sectors lost."""
        return cls(**{f.name: False for f in fields(cls)})

    def without(self, name: str) -> DecoderOptions:
        """These options with one feature switched off (benchmark ablations)."""
        if name not in {f.name for f in fields(self)}:
            raise ValueError(f"no decoder option {name!r}")
        return DecoderOptions(**{f.name: getattr(self, f.name) and f.name != name
                                 for f in fields(self)})


DEFAULT = DecoderOptions()
