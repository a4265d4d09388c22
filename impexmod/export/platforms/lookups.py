"""What platform files need beyond the native records, loaded without one query per record.

Small reference tables (brands, categories, attribute names) are loaded once per feed into
``ctx.cache`` and loaded again if a record points at a row created since; per-product data
(stock policies, supplier references, product images) is loaded per chunk, one query each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from impexmod.entities.base import ExportContext, rows_in
from impexmod.entities.combinations import CombinationRecord, _attribute_catalog
from impexmod.models import (
    Category,
    CategoryLang,
    Image,
    Manufacturer,
    Product,
    ProductSupplier,
    StockAvailable,
    Supplier,
)

# PrestaShop's stock_available.out_of_stock: 0 deny orders, 1 allow them, 2 the shop default
# (which is "deny" in a fresh PrestaShop).
ALLOW_ORDERS = 1


def lang_row(rows: Iterable, lang_id: int | None):
    """The row of ``lang_id`` among translation rows, or None."""
    for row in rows:
        if row.id_lang == lang_id:
            return row
    return None


def manufacturers(ctx: ExportContext, needed: Iterable[int | None]) -> dict[int, str]:
    """Brand names by id (the whole small table, cached for the feed)."""
    names = ctx.cache.get("platform.manufacturers")
    if names is None or any(i and i not in names for i in needed):
        names = dict(ctx.conn.execute(select(Manufacturer.id, Manufacturer.name)).all())
        ctx.cache["platform.manufacturers"] = names
    return names


class CategoryTree:
    """The category tree in one language: names and paths by id."""

    def __init__(self, rows: Sequence, names: dict[int, str]):
        self.parent = {r.id: r.id_parent for r in rows}
        self.root = {r.id for r in rows if r.is_root_category or r.id_parent is None}
        self.names = names

    def __contains__(self, category_id: int) -> bool:
        return category_id in self.parent

    def chain(self, category_id: int | None) -> list[int]:
        """Ids from the top of the tree down to ``category_id``."""
        out: list[int] = []
        seen: set[int] = set()
        while category_id is not None and category_id in self.parent and category_id not in seen:
            seen.add(category_id)
            out.append(category_id)
            category_id = self.parent[category_id]
        return out[::-1]

    def path(self, category_id: int | None, with_root: bool = False) -> list[str]:
        """Category names from the top down (the shop's root category left out unless asked)."""
        return [
            self.names.get(i, "")
            for i in self.chain(category_id)
            if with_root or i not in self.root
        ]

    def deepest(self, category_ids: Sequence[int], first: int | None = None) -> list[int]:
        """The categories of a product that are not an ancestor of another of them, after
        ``first`` (its default category, always kept): a product filed in Men and in
        Men > Shirts (as PrestaShop files it in every level) is listed in Men > Shirts once."""
        ids = [i for i in dict.fromkeys(([first] if first else []) + list(category_ids)) if i]
        ancestors = {a for i in ids for a in self.chain(i)[:-1]}
        return [
            i
            for i in ids
            if (i == first or i not in ancestors) and i not in self.root and i in self
        ]


def categories(
    ctx: ExportContext, lang_id: int | None, needed: Iterable[int | None]
) -> CategoryTree:
    """The category tree with names in ``lang_id`` (cached for the feed)."""
    key = f"platform.categories.{lang_id}"
    tree = ctx.cache.get(key)
    if tree is None or any(i and i not in tree for i in needed):
        conn = ctx.conn
        rows = conn.execute(
            select(Category.id, Category.id_parent, Category.is_root_category)
        ).all()
        names = dict(
            conn.execute(
                select(CategoryLang.id_category, CategoryLang.name).where(
                    CategoryLang.id_lang == lang_id
                )
            ).all()
        )
        tree = ctx.cache[key] = CategoryTree(rows, names)
    return tree


def stock_policies(ctx: ExportContext, product_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """``out_of_stock`` by (product id, combination id or 0), for these products."""
    return {
        (r.id_product, r.id_product_attribute): r.out_of_stock
        for r in rows_in(
            ctx.conn,
            select(
                StockAvailable.id_product,
                StockAvailable.id_product_attribute,
                StockAvailable.out_of_stock,
            ),
            StockAvailable.id_product,
            product_ids,
        )
    }


def allows_orders(policies: dict[tuple[int, int], int], product_id: int, combination_id: int = 0):
    """Whether an item may be ordered out of stock (a combination follows its product's row
    when it has none)."""
    value = policies.get((product_id, combination_id))
    if value is None:
        value = policies.get((product_id, 0))
    return value == ALLOW_ORDERS


def supplier_references(
    ctx: ExportContext, product_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[str, str]]:
    """(supplier name, supplier reference) by (product id, combination id or 0): the first
    supplier of each item."""
    out: dict[tuple[int, int], tuple[str, str]] = {}
    rows = rows_in(
        ctx.conn,
        select(
            ProductSupplier.id_product,
            ProductSupplier.id_product_attribute,
            ProductSupplier.product_supplier_reference,
            Supplier.name,
        )
        .join(Supplier, Supplier.id == ProductSupplier.id_supplier)
        .order_by(ProductSupplier.id),
        ProductSupplier.id_product,
        product_ids,
    )
    for r in rows:
        out.setdefault(
            (r.id_product, r.id_product_attribute), (r.name, r.product_supplier_reference)
        )
    return out


@dataclass(frozen=True)
class ProductBrief:
    """What a combination row needs of its product: reference and images in order."""

    id: int
    reference: str | None
    image_urls: tuple[str, ...]


def product_briefs(ctx: ExportContext, product_ids: Sequence[int]) -> dict[int, ProductBrief]:
    """Reference and image URLs (in position order) of these products."""
    refs = dict(rows_in(ctx.conn, select(Product.id, Product.reference), Product.id, product_ids))
    images: dict[int, list[str]] = {}
    for r in rows_in(
        ctx.conn,
        select(Image.id_product, Image.url).order_by(Image.position, Image.id),
        Image.id_product,
        product_ids,
    ):
        images.setdefault(r.id_product, []).append(r.url)
    return {pid: ProductBrief(pid, ref, tuple(images.get(pid, ()))) for pid, ref in refs.items()}


@dataclass(frozen=True)
class Option:
    """One attribute of a combination: its group (Size) and its value (M), in one language."""

    group_id: int
    group: str
    group_type: str
    group_position: int
    is_color: bool
    value: str
    value_position: int


def options(ctx: ExportContext, rec: CombinationRecord, lang_id: int | None) -> list[Option]:
    """A combination's attributes in group order (groups by position, then id)."""
    groups, group_langs, _gk, attrs, attr_langs, _ak = _attribute_catalog(ctx, rec.attributes)
    out = []
    for attr_id in rec.attributes:
        attr = attrs[attr_id]
        group = groups[attr.id_attribute_group]
        group_name = lang_row(group_langs.get(group.id, []), lang_id)
        value = lang_row(attr_langs.get(attr_id, []), lang_id)
        out.append(
            Option(
                group_id=group.id,
                group=group_name.name if group_name else "",
                group_type=group.group_type or "select",
                group_position=group.position,
                is_color=bool(group.is_color_group),
                value=value.name if value else "",
                value_position=attr.position,
            )
        )
    return sorted(out, key=lambda o: (o.group_position, o.group_id, o.value_position))
