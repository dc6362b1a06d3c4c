"""Branches and a foreach: count the words of a few sentences in parallel.

    python examples/fanout.py run
    python examples/fanout.py run --sentences '["one two", "three"]'

Then, from any Python process or notebook::

    from flow_core import Flow
    run = Flow("FanOutFlow").latest_successful_run
    for task in run["count"]:
        print(task.index, task.data.sentence, task.data.words, task.stdout)
"""

from flow_core import FlowSpec, JSONType, Parameter, current, step

DEFAULT_SENTENCES = '["the quick brown fox", "jumps over", "the lazy dog"]'


class FanOutFlow(FlowSpec):
    """Split sentences into a foreach, count each one's words, and meet a side branch in a join."""

    sentences = Parameter("sentences", default=DEFAULT_SENTENCES, type=JSONType,
                          help="A JSON list of sentences to count.")

    @step
    def start(self):
        """Fan out: one branch counts words, the other notes the run."""
        self.next(self.split, self.describe)

    @step
    def split(self):
        """One task per sentence."""
        self.items = list(self.sentences)
        self.next(self.count, foreach="items")

    @step
    def count(self):
        """Count one sentence's words."""
        self.sentence = self.input
        self.words = len(self.sentence.split())
        print(f"sentence {self.index}: {self.words} words")
        self.next(self.gather)

    @step
    def gather(self, inputs):
        """Join the foreach: total the counts."""
        self.per_sentence = [i.words for i in inputs]
        self.total = sum(self.per_sentence)
        self.next(self.join)

    @step
    def describe(self):
        """The side branch: who ran this."""
        self.note = f"counted by {current.username} in run {current.run_id}"
        self.next(self.join)

    @step
    def join(self, inputs):
        """Meet the two branches."""
        self.total = inputs.gather.total
        self.per_sentence = inputs.gather.per_sentence
        self.note = inputs.describe.note
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        print(f"{self.total} words in {len(self.per_sentence)} sentences; {self.note}")


if __name__ == "__main__":
    FanOutFlow()
