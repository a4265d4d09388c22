"""Customers, addresses, orders, order lines, order states and status history."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String

from impexmod.extensions import db
from impexmod.models.catalog import Money, now


class Customer(db.Model):
    __tablename__ = "customer"
    id = Column(Integer, primary_key=True)
    email = Column(String(255), nullable=False, index=True)
    firstname = Column(String(255), nullable=False)
    lastname = Column(String(255), nullable=False)
    id_lang = Column(Integer, ForeignKey("language.id"))
    active = Column(Boolean, nullable=False, default=True)
    newsletter = Column(Boolean, nullable=False, default=False)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class Address(db.Model):
    __tablename__ = "address"
    id = Column(Integer, primary_key=True)
    id_customer = Column(
        Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True
    )
    alias = Column(String(32), nullable=False, default="Home")
    company = Column(String(255))
    firstname = Column(String(255), nullable=False)
    lastname = Column(String(255), nullable=False)
    address1 = Column(String(128), nullable=False)
    address2 = Column(String(128))
    postcode = Column(String(12))
    city = Column(String(64), nullable=False)
    country_iso = Column(String(3), nullable=False, default="FR")
    phone = Column(String(32))
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class OrderState(db.Model):
    __tablename__ = "order_state"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    color = Column(String(32), nullable=False, default="#4169E1")
    paid = Column(Boolean, nullable=False, default=False)
    shipped = Column(Boolean, nullable=False, default=False)
    delivery = Column(Boolean, nullable=False, default=False)


class Order(db.Model):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    reference = Column(String(16), nullable=False, index=True)
    id_customer = Column(Integer, ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    id_address_delivery = Column(Integer, ForeignKey("address.id", ondelete="SET NULL"))
    id_address_invoice = Column(Integer, ForeignKey("address.id", ondelete="SET NULL"))
    current_state = Column(Integer, ForeignKey("order_state.id"), nullable=False)
    payment = Column(String(255), nullable=False, default="")
    currency_iso = Column(String(3), nullable=False, default="EUR")
    total_products = Column(Money, nullable=False, default=0)
    total_shipping = Column(Money, nullable=False, default=0)
    total_paid_tax_excl = Column(Money, nullable=False, default=0)
    total_paid_tax_incl = Column(Money, nullable=False, default=0)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class OrderDetail(db.Model):
    __tablename__ = "order_detail"
    id = Column(Integer, primary_key=True)
    id_order = Column(
        Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # No foreign keys: an order line outlives the product it sold, as in PrestaShop.
    product_id = Column(Integer, nullable=False)
    product_attribute_id = Column(Integer, nullable=False, default=0)
    product_name = Column(String(255), nullable=False)
    product_reference = Column(String(64))
    product_quantity = Column(Integer, nullable=False, default=1)
    unit_price_tax_excl = Column(Money, nullable=False, default=0)
    unit_price_tax_incl = Column(Money, nullable=False, default=0)


class OrderHistory(db.Model):
    __tablename__ = "order_history"
    id = Column(Integer, primary_key=True)
    id_order = Column(
        Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    id_order_state = Column(Integer, ForeignKey("order_state.id"), nullable=False)
    date_add = Column(DateTime, nullable=False, default=now)
