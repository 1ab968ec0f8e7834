"""Evaluation engines: fetch through sources/, decide through analysis/, build status.

The operator's handlers and the offline `perfguard evaluate` share these, so a verdict
computed on a laptop is the verdict the operator writes.
"""
