"""The model contract shared by training and serving (architectures, preprocessing, artifacts).

Knows nothing of Kafka or Faust.
"""

if __name__ != "tickcast.models":  # e.g. imported as "models" with the repository on sys.path
    raise ImportError(f"import tickcast.models, not {__name__}: one module object per file")
