"""Training: the stage (train), backbones (models, weights, weights_file), callbacks, tf.distribute
strategies, quantization-aware training, curves. Training side: TensorFlow.
"""
