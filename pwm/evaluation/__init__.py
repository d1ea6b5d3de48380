"""Evaluation across runs: loading ``results.csv`` files, normalised scores, aggregate metrics with CIs."""
