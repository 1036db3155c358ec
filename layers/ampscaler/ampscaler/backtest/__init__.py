"""Backtesting: replay a rule through the engine over metric history (``ampscaler backtest``).

``simulate`` is pure (history in, rows and a summary out); ``fetch`` reads history with
``query_range``; ``report`` writes the CSV, the PNG chart and the printed summary.
"""
