"""Development-only launchers and simulators shared by tests, make demo and bench/. Never shipped in the Lambda layer."""
