"""The smallest useful flow: three steps passing artifacts along.

    python examples/hello.py run        # or: flow run examples/hello.py
"""

from flow_core import FlowSpec, current, step


class HelloFlow(FlowSpec):
    """Say hello, count the letters, and print both at the end."""

    @step
    def start(self):
        """Choose a greeting."""
        self.greeting = "Hello, Flow!"
        print(f"{current.flow_name} run {current.run_id} starting")
        self.next(self.count)

    @step
    def count(self):
        """Count the letters of the greeting."""
        self.letters = sum(ch.isalpha() for ch in self.greeting)
        self.next(self.end)

    @step
    def end(self):
        """Report what the earlier steps stored."""
        print(f"{self.greeting} has {self.letters} letters.")


if __name__ == "__main__":
    HelloFlow()
