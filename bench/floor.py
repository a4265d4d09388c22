"""The floor of the product export: the same rows read straight from SQLite, written as the
same elements with bare lxml, with none of impexmod's pipeline. Used by export_bench.py."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from decimal import Decimal

from lxml import etree

IDS = ("reference", "ean13", "upc", "isbn", "mpn")
LANGS = ("name", "description", "description_short", "link_rewrite")
NUMS = (
    "price",
    "wholesale_price",
    "ecotax",
    "weight",
    "width",
    "height",
    "depth",
    "active",
    "condition",
    "visibility",
    "id_tax_rules_group",
)
SP = (
    "id_shop",
    "id_currency",
    "id_country",
    "id_group",
    "id_customer",
    "price",
    "from_quantity",
    "reduction",
    "reduction_tax",
    "reduction_type",
    "from",
    "to",
)


def _t(v) -> str:
    return "" if v is None else str(v)


def _grouped(con, sql, ids, key=0):
    out = defaultdict(list)
    for row in con.execute(sql.format(q=",".join("?" * len(ids))), ids):
        out[row[key]].append(row)
    return out


def export_floor(db_path: str, out_path: str, shop: str, chunk: int = 1000) -> int:
    """Write every product as the native export does; return how many were written."""
    con = sqlite3.connect(db_path)
    con.row_factory = sqlite3.Row
    langs = {r[0]: r[1] for r in con.execute("SELECT id, iso_code FROM language")}
    groups = {r["id"]: r for r in con.execute("SELECT * FROM attribute_group")}
    glang = _grouped(
        con, "SELECT * FROM attribute_group_lang WHERE 1 OR id_attribute_group IN ({q})", [0]
    )
    attrs = {r["id"]: r for r in con.execute("SELECT * FROM attribute")}
    alang = _grouped(con, "SELECT * FROM attribute_lang WHERE 1 OR id_attribute IN ({q})", [0])
    written = 0
    last = 0
    with open(out_path, "wb") as fh, etree.xmlfile(fh, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("advancedimporter"):
            while True:
                ids = [
                    r[0]
                    for r in con.execute(
                        "SELECT id FROM product WHERE id > ? ORDER BY id LIMIT ?", (last, chunk)
                    )
                ]
                if not ids:
                    break
                last = ids[-1]
                q = ",".join("?" * len(ids))
                products = con.execute(
                    f"SELECT * FROM product WHERE id IN ({q}) ORDER BY id", ids
                ).fetchall()
                plang = _grouped(con, "SELECT * FROM product_lang WHERE id_product IN ({q})", ids)
                cats = _grouped(
                    con,
                    "SELECT id_product, id_category FROM category_product "
                    "WHERE id_product IN ({q}) ORDER BY position",
                    ids,
                )
                tags = _grouped(
                    con,
                    "SELECT pt.id_product, t.id_lang, t.name FROM product_tag pt"
                    " JOIN tag t ON t.id = pt.id_tag WHERE pt.id_product IN ({q})",
                    ids,
                )
                stock = _grouped(
                    con,
                    "SELECT id_product, id_product_attribute, quantity FROM "
                    "stock_available WHERE id_product IN ({q})",
                    ids,
                )
                images = _grouped(
                    con,
                    "SELECT id_product, id, url, position, cover FROM image "
                    "WHERE id_product IN ({q}) ORDER BY position",
                    ids,
                )
                image_ids = [i[1] for rows in images.values() for i in rows]
                legends = (
                    _grouped(con, "SELECT * FROM image_lang WHERE id_image IN ({q})", image_ids)
                    if image_ids
                    else {}
                )
                sps = _grouped(con, "SELECT * FROM specific_price WHERE id_product IN ({q})", ids)
                combos = _grouped(
                    con,
                    "SELECT * FROM product_attribute WHERE id_product IN ({q}) ORDER BY id",
                    ids,
                    key=1,
                )
                combo_ids = [c["id"] for rows in combos.values() for c in rows]
                cattrs = (
                    _grouped(
                        con,
                        "SELECT id_product_attribute, id_attribute FROM "
                        "product_attribute_combination WHERE id_product_attribute IN "
                        "({q})",
                        combo_ids,
                    )
                    if combo_ids
                    else {}
                )
                keys = _grouped(
                    con,
                    "SELECT local_id, reference, source FROM identity WHERE "
                    "entity_type = 'product' AND local_id IN ({q})",
                    ids,
                )
                for p in products:
                    pid = p["id"]
                    key = keys.get(pid)
                    el = etree.Element(
                        "product",
                        {
                            "supplier-reference": key[0][1] if key else str(pid),
                            "source": key[0][2] if key else shop,
                        },
                    )
                    for f in IDS:
                        etree.SubElement(el, f).text = _t(p[f])
                    for f in LANGS:
                        for lrow in plang[pid]:
                            etree.SubElement(el, f, lang=langs[lrow["id_lang"]]).text = _t(lrow[f])
                    for f in NUMS:
                        etree.SubElement(el, f).text = _t(p[f])
                    if p["id_manufacturer"]:
                        etree.SubElement(
                            el,
                            "id_manufacturer",
                            {"supplier-reference": "manufacturer", "source": shop},
                        ).text = str(p["id_manufacturer"])
                    if p["id_category_default"]:
                        etree.SubElement(
                            el,
                            "id_category_default",
                            {"supplier-reference": "category", "source": shop},
                        ).text = str(p["id_category_default"])
                    etree.SubElement(el, "date_add").text = _t(p["date_add"])
                    etree.SubElement(el, "date_upd").text = _t(p["date_upd"])
                    for c in cats[pid]:
                        etree.SubElement(
                            el, "category", {"supplier-reference": str(c[1]), "source": shop}
                        )
                    for t in tags[pid]:
                        etree.SubElement(el, "tag", lang=langs[t[1]]).text = t[2]
                    combo_stock = {}
                    for s in stock[pid]:
                        if s[1] == 0:
                            etree.SubElement(etree.SubElement(el, "stock"), "quantity").text = str(
                                s[2]
                            )
                        else:
                            combo_stock[s[1]] = s[2]
                    for i in images[pid]:
                        iel = etree.SubElement(el, "image")
                        etree.SubElement(iel, "url").text = i[2]
                        for lg in legends.get(i[1], []):
                            etree.SubElement(iel, "legend", lang=langs[lg["id_lang"]]).text = _t(
                                lg["legend"]
                            )
                        etree.SubElement(iel, "position").text = str(i[3])
                        etree.SubElement(iel, "cover").text = str(i[4])
                    for sp in sps[pid]:
                        sel = etree.SubElement(
                            el,
                            "specificPrice",
                            {"supplier-reference": str(sp["id"]), "source": shop},
                        )
                        for f in SP:
                            etree.SubElement(sel, f).text = _t(sp[f])
                    for c in combos[pid]:
                        cel = etree.SubElement(
                            el, "combination", {"supplier-reference": str(c["id"]), "source": shop}
                        )
                        for f in IDS:
                            etree.SubElement(cel, f).text = _t(c[f])
                        etree.SubElement(cel, "price").text = str(
                            Decimal(str(p["price"])) + Decimal(str(c["price"]))
                        )
                        for f in ("wholesale_price", "ecotax", "weight", "default_on"):
                            etree.SubElement(cel, f).text = _t(c[f])
                        for a in cattrs.get(c["id"], []):
                            attr = attrs[a[1]]
                            group = groups[attr["id_attribute_group"]]
                            gel = etree.SubElement(
                                cel,
                                "attributeGroup",
                                {"supplier-reference": str(group["id"]), "source": shop},
                            )
                            for f in ("is_color_group", "group_type", "position"):
                                etree.SubElement(gel, f).text = _t(group[f])
                            for gl in glang[group["id"]]:
                                etree.SubElement(gel, "name", lang=langs[gl["id_lang"]]).text = gl[
                                    "name"
                                ]
                                etree.SubElement(
                                    gel, "public_name", lang=langs[gl["id_lang"]]
                                ).text = gl["public_name"]
                            ael = etree.SubElement(
                                gel,
                                "attribute",
                                {"supplier-reference": str(attr["id"]), "source": shop},
                            )
                            for al in alang[attr["id"]]:
                                etree.SubElement(ael, "name", lang=langs[al["id_lang"]]).text = al[
                                    "name"
                                ]
                            etree.SubElement(ael, "position").text = str(attr["position"])
                            etree.SubElement(ael, "color").text = _t(attr["color"])
                        if c["id"] in combo_stock:
                            etree.SubElement(etree.SubElement(cel, "stock"), "quantity").text = str(
                                combo_stock[c["id"]]
                            )
                    xf.write(el, pretty_print=True)
                    written += 1
    con.close()
    return written
