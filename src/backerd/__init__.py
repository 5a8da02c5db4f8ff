"""backerd: the Danmere Backer VHS tape drive as a Linux st-like tape device."""

__version__ = "0.1.0"
