"""The orders channel: allowed state transitions, export-eligibility flags set on orders,
shipments, the order's own log, and the inbound events queued by update feeds.

The services are in impexmod.orders (docs/orders.md): ``states`` moves orders along the
transitions, ``flags`` sets, approves and serves the flags.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)

from impexmod.extensions import db
from impexmod.models.catalog import now

__all__ = [
    "ExportFlag",
    "FlagStatus",
    "InboundEvent",
    "InboundStatus",
    "OrderFlag",
    "OrderLog",
    "OrderTransition",
    "Shipment",
    "ShipmentLine",
    "ShipmentStatus",
]


class OrderTransition(db.Model):
    """A move an order may make from one state to another, with the flags it sets."""

    __tablename__ = "order_transition"
    __table_args__ = (UniqueConstraint("from_state", "to_state"),)
    id = Column(Integer, primary_key=True)
    from_state = Column(
        Integer, ForeignKey("order_state.id", ondelete="CASCADE"), nullable=False, index=True
    )
    to_state = Column(Integer, ForeignKey("order_state.id", ondelete="CASCADE"), nullable=False)
    # Names of the export flags (ExportFlag.name) the order gets when it takes this transition.
    flags = Column(JSON, nullable=False, default=list)


class ExportFlag(db.Model):
    """A kind of export an order can become eligible for (``erp``, ``warehouse``...)."""

    __tablename__ = "export_flag"
    id = Column(Integer, primary_key=True)
    name = Column(String(32), nullable=False, unique=True)
    label = Column(String(128), nullable=False, default="")
    # Orders flagged so wait on the panel's "Orders to approve" list until a merchant approves.
    needs_approval = Column(Boolean, nullable=False, default=False, server_default=false())


class FlagStatus:
    """The values of ``order_flag.status``.

    held -> ready (approved) or rejected; ready -> sending (claimed by an exporter's run) ->
    sent, or back to ready when the send failed (``attempts`` counts) or its run died.
    Setting a flag again once sent or rejected starts a new ``generation``.
    """

    HELD = "held"
    READY = "ready"
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"

    PENDING = (HELD, READY, SENDING)


class OrderFlag(db.Model):
    """One export flag on one order: when it was set, approved, served, and how that went."""

    __tablename__ = "order_flag"
    __table_args__ = (
        UniqueConstraint("id_order", "flag"),
        # What an exporter scans: the orders that carry its flag, ready, in order.
        Index("ix_order_flag_flag_status", "flag", "status", "id"),
    )
    id = Column(Integer, primary_key=True)
    id_order = Column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    flag = Column(String(32), nullable=False)
    status = Column(String(16), nullable=False, default=FlagStatus.READY)
    # 1 the first time the flag is set, +1 each time it is set again after being served:
    # part of the idempotency key, so a receiver tells a new send from a retried one.
    generation = Column(Integer, nullable=False, default=1)
    set_at = Column(DateTime, nullable=False, default=now)
    set_by = Column(String(128), nullable=False, default="")
    approved_at = Column(DateTime)
    approved_by = Column(String(128))
    # The run that claimed the flag to send it (while ``sending``).
    claimed_run = Column(Integer)
    claimed_at = Column(DateTime)
    served_at = Column(DateTime)
    served_by = Column(Integer)  # the order exporter's task id
    outcome = Column(String(255))
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)

    def idempotency_key(self, shop_id: str) -> str:
        """The key sent with every request for this flag: the same for each retry of a send."""
        return f"{shop_id}:order-{self.id_order}:{self.flag}:{self.generation}"


class OrderLog(db.Model):
    """What touched an order: transitions, flags, exports and inbound events, oldest first."""

    __tablename__ = "order_log"
    id = Column(Integer, primary_key=True)
    id_order = Column(
        Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at = Column(DateTime, nullable=False, default=now)
    # transition | flag | approval | export | inbound | shipment
    kind = Column(String(16), nullable=False)
    task_id = Column(Integer)
    run_id = Column(Integer)
    message = Column(String(500), nullable=False)


class ShipmentStatus:
    """The values of ``shipment.status``."""

    PENDING = "pending"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class Shipment(db.Model):
    """A parcel of an order (one or several per order), with its carrier and tracking."""

    __tablename__ = "shipment"
    __table_args__ = (UniqueConstraint("id_order", "number"),)
    id = Column(Integer, primary_key=True)
    id_order = Column(
        Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    number = Column(Integer, nullable=False, default=1)  # 1, 2, ... within the order
    carrier = Column(String(64))
    tracking_number = Column(String(64), index=True)
    status = Column(String(16), nullable=False, default=ShipmentStatus.PENDING)
    shipped_at = Column(DateTime)
    delivered_at = Column(DateTime)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class ShipmentLine(db.Model):
    """How many of an order line a shipment carries."""

    __tablename__ = "shipment_line"
    id = Column(Integer, primary_key=True)
    id_shipment = Column(
        Integer, ForeignKey("shipment.id", ondelete="CASCADE"), nullable=False, index=True
    )
    id_order_detail = Column(
        Integer, ForeignKey("order_detail.id", ondelete="CASCADE"), nullable=False
    )
    quantity = Column(Integer, nullable=False, default=1)


class InboundStatus:
    """The values of ``inbound_event.status``."""

    PENDING = "pending"
    APPLIED = "applied"
    ERROR = "error"


class InboundEvent(db.Model):
    """An event pushed to (or fetched by) an inbound feed, stored before it is applied."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        # Duplicates are recognised by their event id, per feed.
        UniqueConstraint("task_id", "event_id"),
        Index("ix_inbound_event_task_status", "task_id", "status", "id"),
    )
    id = Column(Integer, primary_key=True)
    task_id = Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False)
    event_id = Column(String(128), nullable=False)
    received_at = Column(DateTime, nullable=False, default=now)
    payload = Column(JSON, nullable=False)
    status = Column(String(16), nullable=False, default=InboundStatus.PENDING)
    # The order it was applied to (None while pending, or when no order matched).
    id_order = Column(Integer, ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    run_id = Column(Integer)
    applied_at = Column(DateTime)
    error = Column(Text)
