"""Data: finding, checking and splitting a folder (dataset), streaming a split (decoded), packed
TFRecord datasets (packed), the tf.data training pipeline, class weights. Training side.
"""
