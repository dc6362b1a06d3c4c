"""flow-my-plugin: say in one line what it adds to Flow."""
