"""Dramatiq: the broker from a URL, the actors, the outbox relay, fan-out/fan-in and the watch.

Thin by design: each actor loads state, calls into ``dsar`` and ``connectors``, and saves state.
The state database is the source of truth; a broker message only names a row.
"""
