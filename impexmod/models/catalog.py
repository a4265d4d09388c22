"""The PrestaShop-shaped catalog: products, combinations, categories, tags, prices, stock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)

from impexmod.extensions import db

Money = Numeric(20, 6)


def now() -> datetime:
    """The current time, naive UTC, as stored in date_add/date_upd columns."""
    return datetime.utcnow().replace(microsecond=0)


class Language(db.Model):
    __tablename__ = "language"
    id = Column(Integer, primary_key=True)
    iso_code = Column(String(2), nullable=False, unique=True)
    name = Column(String(32), nullable=False)
    active = Column(Boolean, nullable=False, default=True)


class Manufacturer(db.Model):
    __tablename__ = "manufacturer"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class Supplier(db.Model):
    __tablename__ = "supplier"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    active = Column(Boolean, nullable=False, default=True)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class Category(db.Model):
    __tablename__ = "category"
    id = Column(Integer, primary_key=True)
    id_parent = Column(Integer, ForeignKey("category.id", ondelete="CASCADE"), index=True)
    level_depth = Column(Integer, nullable=False, default=0)
    position = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)
    is_root_category = Column(Boolean, nullable=False, default=False)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class CategoryLang(db.Model):
    __tablename__ = "category_lang"
    id_category = Column(Integer, ForeignKey("category.id", ondelete="CASCADE"), primary_key=True)
    id_lang = Column(Integer, ForeignKey("language.id"), primary_key=True)
    name = Column(String(128), nullable=False)
    description = Column(Text)
    link_rewrite = Column(String(128), nullable=False)


class Product(db.Model):
    __tablename__ = "product"
    id = Column(Integer, primary_key=True)
    reference = Column(String(64), index=True)
    ean13 = Column(String(13), index=True)
    upc = Column(String(12))
    isbn = Column(String(32))
    mpn = Column(String(40))
    price = Column(Money, nullable=False, default=0)
    wholesale_price = Column(Money, nullable=False, default=0)
    ecotax = Column(Money, nullable=False, default=0)
    weight = Column(Numeric(20, 6), nullable=False, default=0)
    width = Column(Numeric(20, 6), nullable=False, default=0)
    height = Column(Numeric(20, 6), nullable=False, default=0)
    depth = Column(Numeric(20, 6), nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)
    condition = Column(String(16), nullable=False, default="new")
    visibility = Column(String(16), nullable=False, default="both")
    id_manufacturer = Column(Integer, ForeignKey("manufacturer.id", ondelete="SET NULL"))
    id_category_default = Column(Integer, ForeignKey("category.id", ondelete="SET NULL"))
    id_tax_rules_group = Column(Integer, nullable=False, default=1)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class ProductLang(db.Model):
    __tablename__ = "product_lang"
    id_product = Column(Integer, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True)
    id_lang = Column(Integer, ForeignKey("language.id"), primary_key=True)
    name = Column(String(255), nullable=False)
    description = Column(Text)
    description_short = Column(Text)
    link_rewrite = Column(String(128), nullable=False)


class CategoryProduct(db.Model):
    __tablename__ = "category_product"
    id_category = Column(
        Integer, ForeignKey("category.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position = Column(Integer, nullable=False, default=0)


class AttributeGroup(db.Model):
    __tablename__ = "attribute_group"
    id = Column(Integer, primary_key=True)
    is_color_group = Column(Boolean, nullable=False, default=False)
    group_type = Column(String(16), nullable=False, default="select")
    position = Column(Integer, nullable=False, default=0)


class AttributeGroupLang(db.Model):
    __tablename__ = "attribute_group_lang"
    id_attribute_group = Column(
        Integer, ForeignKey("attribute_group.id", ondelete="CASCADE"), primary_key=True
    )
    id_lang = Column(Integer, ForeignKey("language.id"), primary_key=True)
    name = Column(String(128), nullable=False)
    public_name = Column(String(64), nullable=False)


class Attribute(db.Model):
    __tablename__ = "attribute"
    id = Column(Integer, primary_key=True)
    id_attribute_group = Column(
        Integer, ForeignKey("attribute_group.id", ondelete="CASCADE"), nullable=False, index=True
    )
    color = Column(String(32))
    position = Column(Integer, nullable=False, default=0)


class AttributeLang(db.Model):
    __tablename__ = "attribute_lang"
    id_attribute = Column(Integer, ForeignKey("attribute.id", ondelete="CASCADE"), primary_key=True)
    id_lang = Column(Integer, ForeignKey("language.id"), primary_key=True)
    name = Column(String(128), nullable=False)


class Combination(db.Model):
    """A product variant (PrestaShop's ``product_attribute``); prices are impacts."""

    __tablename__ = "product_attribute"
    id = Column(Integer, primary_key=True)
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reference = Column(String(64), index=True)
    ean13 = Column(String(13), index=True)
    upc = Column(String(12))
    isbn = Column(String(32))
    mpn = Column(String(40))
    price = Column(Money, nullable=False, default=0)
    wholesale_price = Column(Money, nullable=False, default=0)
    ecotax = Column(Money, nullable=False, default=0)
    weight = Column(Numeric(20, 6), nullable=False, default=0)
    default_on = Column(Boolean, nullable=False, default=False)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)


class CombinationAttribute(db.Model):
    __tablename__ = "product_attribute_combination"
    id_attribute = Column(Integer, ForeignKey("attribute.id", ondelete="CASCADE"), primary_key=True)
    id_product_attribute = Column(
        Integer,
        ForeignKey("product_attribute.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )


class Tag(db.Model):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("id_lang", "name"),)
    id = Column(Integer, primary_key=True)
    id_lang = Column(Integer, ForeignKey("language.id"), nullable=False)
    name = Column(String(32), nullable=False)


class ProductTag(db.Model):
    __tablename__ = "product_tag"
    id_product = Column(Integer, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True)
    id_tag = Column(Integer, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)


class SpecificPrice(db.Model):
    __tablename__ = "specific_price"
    id = Column(Integer, primary_key=True)
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # 0 means "every combination", as in PrestaShop.
    id_product_attribute = Column(Integer, nullable=False, default=0)
    id_shop = Column(Integer, nullable=False, default=0)
    id_currency = Column(Integer, nullable=False, default=0)
    id_country = Column(Integer, nullable=False, default=0)
    id_group = Column(Integer, nullable=False, default=0)
    id_customer = Column(Integer, nullable=False, default=0)
    price = Column(Money, nullable=False, default=-1)
    from_quantity = Column(Integer, nullable=False, default=1)
    reduction = Column(Money, nullable=False, default=0)
    reduction_tax = Column(Boolean, nullable=False, default=True)
    reduction_type = Column(String(16), nullable=False, default="amount")
    date_from = Column("from", DateTime)
    date_to = Column("to", DateTime)


class StockAvailable(db.Model):
    """Stock of a product (``id_product_attribute`` 0) or of one of its combinations."""

    __tablename__ = "stock_available"
    __table_args__ = (UniqueConstraint("id_product", "id_product_attribute"),)
    id = Column(Integer, primary_key=True)
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
    )
    id_product_attribute = Column(Integer, nullable=False, default=0)
    quantity = Column(Integer, nullable=False, default=0)
    out_of_stock = Column(Integer, nullable=False, default=2)


class ProductSupplier(db.Model):
    __tablename__ = "product_supplier"
    __table_args__ = (UniqueConstraint("id_product", "id_product_attribute", "id_supplier"),)
    id = Column(Integer, primary_key=True)
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
    )
    id_product_attribute = Column(Integer, nullable=False, default=0)
    id_supplier = Column(Integer, ForeignKey("supplier.id", ondelete="CASCADE"), nullable=False)
    product_supplier_reference = Column(String(64), nullable=False)
    product_supplier_price_te = Column(Money, nullable=False, default=0)


class Image(db.Model):
    __tablename__ = "image"
    id = Column(Integer, primary_key=True)
    id_product = Column(
        Integer, ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url = Column(String(512), nullable=False)
    position = Column(Integer, nullable=False, default=0)
    cover = Column(Boolean, nullable=False, default=False)


class ImageLang(db.Model):
    __tablename__ = "image_lang"
    id_image = Column(Integer, ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    id_lang = Column(Integer, ForeignKey("language.id"), primary_key=True)
    legend = Column(String(128))


class CombinationImage(db.Model):
    __tablename__ = "product_attribute_image"
    id_product_attribute = Column(
        Integer, ForeignKey("product_attribute.id", ondelete="CASCADE"), primary_key=True
    )
    id_image = Column(Integer, ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)


Index(
    "ix_product_supplier_supplier_ref",
    ProductSupplier.id_supplier,
    ProductSupplier.product_supplier_reference,
)
