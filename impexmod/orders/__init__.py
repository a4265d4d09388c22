"""The orders channel (docs/orders.md): the order state machine (``states``), export flags set
by transitions and served by order exporters (``flags``, ``exporter``), approvals, shipments and
the inbound update feeds that move orders along (``inbound``)."""
