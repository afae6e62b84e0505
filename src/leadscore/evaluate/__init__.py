"""Evaluation on the team's own outcomes: backtests as of a cut-off, lift, AUC, conversion."""
