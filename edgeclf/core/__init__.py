"""What every side shares, device included: errors, configuration, nothing half-written (atomic), image
decoding, the run directory, the bounded reader of JSON/YAML, terminal-safe text. No TensorFlow.
"""
