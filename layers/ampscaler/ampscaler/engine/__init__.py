"""The pure decision engine: rule + observation + state + now in, decision + new state out.

No I/O, no clock reads, no randomness: stdlib only. A unit test enforces the import boundary.
"""

from ampscaler.engine.decide import decide

__all__ = ["decide"]
