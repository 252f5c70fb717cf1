"""The Faust service: app, settings, event contracts, topics, agents, evaluation, metrics.

Modules are by domain: ``sentiment/`` (texts and labels), ``evaluation/`` (rolling metrics);
``events`` and ``schemas/`` hold the event contracts, ``deadletters`` the dead-letter path.
"""
