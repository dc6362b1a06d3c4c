"""flow-ui: ``flow ui`` serves a read-only web view of every run, through the configured backends."""

__version__ = "0.1.0"
