"""Learning from outcomes: candidate features, suggested points, predictive scores."""
