"""The backend passes the suite every Flow storage backend must pass."""

import pytest
from flow_core.testing import StorageConformance
from flow_my_plugin.storage import MyPluginStorage


class TestMyPluginStorage(StorageConformance):
    @pytest.fixture
    def storage(self):
        return MyPluginStorage()
