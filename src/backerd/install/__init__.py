"""Installing backerd as a system service: units, drop-in, udev rule, modules-load.d.

``plan`` decides from hashes what to write, keep or remove (pure); ``apply`` reads the
target root, writes, keeps the manifest of what was installed and runs
``systemd-analyze``. The shipped files live in ``files/`` as package data, so a pip
install carries them.
"""
