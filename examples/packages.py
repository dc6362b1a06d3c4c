"""Per-step packages with @pypi: each step gets the versions it asks for, and nothing else.

    pip install ./plugins/flow-env                       # from a checkout (uv sync installs it)
    python examples/packages.py --environment=pypi run

The first run resolves and builds two environments (a few seconds); later runs reuse them.
"""

from flow_core import FlowSpec, pypi, pypi_base, step


@pypi_base(packages={"humanize": "4.9.0"})
class PackagesFlow(FlowSpec):
    @step
    def start(self):
        import humanize

        self.size = humanize.naturalsize(123_456_789)
        self.next(self.newer)

    @pypi(packages={"humanize": "4.10.0"})
    @step
    def newer(self):
        import humanize

        self.versions = {"start": "4.9.0", "newer": humanize.__version__}
        self.next(self.end)

    @step
    def end(self):
        print(f"123456789 bytes is {self.size}; the steps ran humanize {self.versions}.")


if __name__ == "__main__":
    PackagesFlow()
