"""The Faust service: app, settings, event contracts, topics, agents, evaluation, metrics.

Modules are by domain: ``prices/`` and ``sentiment/`` (a processor and an agent each),
``evaluation/`` (rolling metrics); ``app`` wires them, ``worker`` runs them, ``events`` and
``schemas/`` hold the event contracts, ``faust_internals`` everything beneath Faust's public
API.
"""

if __name__ != "tickcast.streams":  # e.g. imported as "streams" with the repository on sys.path
    raise ImportError(f"import tickcast.streams, not {__name__}: one module object per file")
