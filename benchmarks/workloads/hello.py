from FRAMEWORK import FlowSpec, step


class HelloBench(FlowSpec):
    @step
    def start(self):
        self.message = "hello"
        self.next(self.end)

    @step
    def end(self):
        print(self.message)


if __name__ == "__main__":
    HelloBench()
