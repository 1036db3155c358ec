"""Adapters: the only code that does I/O, one module per backend."""
