"""Measurement: evaluate (accuracy of every artifact), metrics, bench (latency) and its worker, the
Keras float baseline, report and plots.
"""
