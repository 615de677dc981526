"""Use-cases: the only code that changes state and commits."""
