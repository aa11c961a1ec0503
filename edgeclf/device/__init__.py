"""The device programs, without TensorFlow: predict, watch, serve, unpack, and stopping cleanly on
signals.
"""
