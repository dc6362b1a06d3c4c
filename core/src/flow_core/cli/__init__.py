"""The command line: ``flow …`` and ``python myflow.py …``, built on click."""
