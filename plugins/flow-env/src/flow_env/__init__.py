"""flow-env: Flow's ``@pypi`` and ``@conda`` environments (``--environment=pypi`` / ``conda``)."""
