"""The queue-worker kit's CDK stacks, constructs and typed configuration."""
