"""Statistics for evaluation: calibration, two-sample tests, diversity, confidence intervals.
Import the submodule you need, e.g. ``from jaxml.stats import calibration``."""
