"""Running the engine in production: telemetry, Prometheus metrics, alerts, input drift, journal tools.

- ``alerts``: the kind of an alert text, and the ``on_alert`` hook's event;
- ``telemetry``: what the manager counts per decision (no dependency beyond NumPy);
- ``prometheus``: those counts as Prometheus metrics (extra ``[metrics]``);
- ``drift``: the input-drift score of a model's observations against its training statistics;
- ``journal`` and ``report``: reading a journal, and its HTML risk report (extra ``[report]``).

The package imports nothing here: each module is loaded only by what uses it.
"""
