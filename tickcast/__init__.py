"""tickcast: event-driven streaming forecaster and sentiment monitor on Kafka and Faust.

The service lives in :mod:`tickcast.streams` (repo folder ``streams/``), the model contract in
:mod:`tickcast.models` (``models/``), offline jobs in :mod:`tickcast.training` (``training/``);
this package holds the command line and the local development tooling.
"""

__version__ = "0.1.0"
