"""The model contract shared by training and serving (architectures, preprocessing, artifacts).

Knows nothing of Kafka or Faust. Populated by the training and streaming-inference work.
"""
