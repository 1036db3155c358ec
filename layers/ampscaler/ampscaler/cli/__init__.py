"""The ampscaler command-line interface."""
