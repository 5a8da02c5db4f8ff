"""Helpers the tests share, importable as ``testkit.*`` (pytest puts tests/ on sys.path
through ``pythonpath`` in pyproject.toml).

* ``kernelwire``: the kernel's side of the FUSE/CUSE wire (request builders, reply parser).
* ``stwire``: st's ioctls as tools issue them (MTIOCTOP/MTIOCGET/MTIOCPOS packing).
* ``systemtest``: the ``backerd serve`` subprocess and tool runners of the system tests.
* ``guards``: makes a failed assertion in a fake surface fail the test even where the
  code under test catches every exception.

Everything here is written from the specs (shared/docs), not from backerd's own modules,
so the tests compare the code with an independent reading.
"""
