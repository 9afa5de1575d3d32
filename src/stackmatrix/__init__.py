"""stackmatrix: run a test suite against a matrix of Docker Compose stacks."""

__version__ = "0.1.0"
