"""Rows of the reference data products point at: languages, categories, brands, suppliers,
attributes, tags and order states. Each builder returns {table: rows} in insert order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from impexmod.factories import words
from impexmod.factories.rows import CategoryRow, ManufacturerRow, SupplierRow, lang_rows
from impexmod.factories.values import EPOCH, slugify
from impexmod.factories.words import Word

Rows = dict[str, list[dict]]
NextId = Callable[[str], int]  # table name -> the next free id of that table

# (id, iso code, name): PrestaShop's usual ids for a shop installed in English then French.
LANGUAGES = [(1, "en", "English"), (2, "fr", "Français")]


def language_rows(present: Iterable[str], taken: Iterable[int], next_id: NextId) -> Rows:
    """The demo languages missing from ``present`` (iso codes), with their usual ids if free."""
    present, taken = set(present), set(taken)
    rows = []
    for id_, iso, name in LANGUAGES:
        if iso not in present:
            rows.append(
                {
                    "id": id_ if id_ not in taken else next_id("language"),
                    "iso_code": iso,
                    "name": name,
                    "active": True,
                }
            )
            taken.add(rows[-1]["id"])
    return {"language": rows}


def category_rows(next_id: NextId, langs: Mapping[str, int]) -> Rows:
    """The category tree: "Home" (the shop's root category) and the vocabulary's departments."""
    out: Rows = {"category": [], "category_lang": []}

    def add(name: Word, parent: int | None, depth: int, position: int) -> int:
        id_ = next_id("category")
        out["category"].append(
            CategoryRow.build(
                id=id_,
                id_parent=parent,
                level_depth=depth,
                position=position,
                is_root_category=parent is None,
                date_add=EPOCH,
                date_upd=EPOCH,
            )
        )
        for row in lang_rows("id_category", id_, name, langs, "name"):
            row["description"] = None
            row["link_rewrite"] = slugify(row["name"])
            out["category_lang"].append(row)
        return id_

    def walk(nodes: list[words.CategoryNode], parent: int, depth: int) -> None:
        for position, (name, _nouns, children) in enumerate(nodes):
            walk(children, add(name, parent, depth, position), depth + 1)

    walk(words.TREE, add(words.ROOT, None, 0, 0), 1)
    return out


def manufacturer_rows(next_id: NextId) -> Rows:
    """The brands."""
    return {
        "manufacturer": [
            ManufacturerRow.build(id=next_id("manufacturer"), name=name)
            for name in words.MANUFACTURERS
        ]
    }


def supplier_rows(next_id: NextId) -> Rows:
    """The suppliers whose references some products carry."""
    return {
        "supplier": [
            SupplierRow.build(id=next_id("supplier"), name=name) for name, _code in words.SUPPLIERS
        ]
    }


def attribute_rows(next_id: NextId, langs: Mapping[str, int]) -> Rows:
    """The Size and Color attribute groups and their values."""
    out: Rows = {
        "attribute_group": [],
        "attribute_group_lang": [],
        "attribute": [],
        "attribute_lang": [],
    }
    groups = [
        (words.SIZE_GROUP, False, [(Word(s, s), None) for s in words.SIZES]),
        (words.COLOR_GROUP, True, [(name, hex_) for name, hex_, _code in words.COLORS]),
    ]
    for position, (group, is_color, values) in enumerate(groups):
        id_group = next_id("attribute_group")
        out["attribute_group"].append(
            {
                "id": id_group,
                "is_color_group": is_color,
                "group_type": "color" if is_color else "select",
                "position": position,
            }
        )
        for row in lang_rows("id_attribute_group", id_group, group, langs, "name"):
            row["public_name"] = row["name"]
            out["attribute_group_lang"].append(row)
        for value_position, (name, color) in enumerate(values):
            id_attribute = next_id("attribute")
            out["attribute"].append(
                {
                    "id": id_attribute,
                    "id_attribute_group": id_group,
                    "color": color,
                    "position": value_position,
                }
            )
            out["attribute_lang"].extend(
                lang_rows("id_attribute", id_attribute, name, langs, "name")
            )
    return out


def tag_rows(next_id: NextId, langs: Mapping[str, int]) -> Rows:
    """The tags, one row per language (PrestaShop's tags belong to a language)."""
    rows = []
    for tag in words.TAGS:
        for iso, id_lang in langs.items():
            rows.append({"id": next_id("tag"), "id_lang": id_lang, "name": tag.in_lang(iso)})
    return {"tag": rows}


def order_state_rows(present: Iterable[str], next_id: NextId) -> Rows:
    """PrestaShop's standard order states missing from ``present`` (names)."""
    present = set(present)
    return {
        "order_state": [
            {
                "id": next_id("order_state"),
                "name": name,
                "color": color,
                "paid": paid,
                "shipped": shipped,
                "delivery": delivery,
            }
            for name, color, paid, shipped, delivery in words.ORDER_STATES
            if name not in present
        ]
    }
