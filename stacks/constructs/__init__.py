"""One capability per module: the building blocks the stacks compose."""
