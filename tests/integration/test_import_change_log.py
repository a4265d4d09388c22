"""What an import records in the change log: one row per entity written, and deletions with
the key the entity was published under (the next incremental feed can name nothing else)."""

from __future__ import annotations

from sqlalchemy import select

from impexmod.extensions import db
from impexmod.importing import import_file
from impexmod.models import Combination, EntityChange, Identity, Language

FEED = """<advancedimporter source="Acme">
  <product supplier-reference="P-1"{remove}>
    <name lang="en">Shirt</name>
    <price>{price}</price>
    {combinations}
  </product>
</advancedimporter>"""
COMBINATION = '<combination supplier-reference="{key}"><reference>{key}</reference></combination>'


def _import(tmp_path, keys, price, remove=False):
    path = tmp_path / "feed.xml"
    path.write_text(
        FEED.format(
            remove=' remove-missing-combinations="yes"' if remove else "",
            price=price,
            combinations="".join(COMBINATION.format(key=k) for k in keys),
        )
    )
    report = import_file(path)
    assert report.ok, [str(e) for e in report.errors]
    return report


def test_a_deletion_recorded_with_upserts_keeps_its_key(app, tmp_path):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    _import(tmp_path, ["P-1-A", "P-1-B"], "10")
    gone = db.session.scalars(select(Combination.id).where(Combination.reference == "P-1-B")).one()
    first = db.session.scalar(select(EntityChange.id).order_by(EntityChange.id.desc()).limit(1))
    # One chunk: the product changes (price, combinations) and one combination goes.
    report = _import(tmp_path, ["P-1-A"], "12", remove=True)
    assert report.totals()["deleted"] == 1
    rows = db.session.execute(
        select(
            EntityChange.entity_type,
            EntityChange.entity_id,
            EntityChange.op,
            EntityChange.reference,
            EntityChange.source,
        ).where(EntityChange.id > first)
    ).all()
    assert ("combination", gone, "delete", "P-1-B", "supplier:Acme") in rows
    assert any(r.entity_type == "product" and r.op == "upsert" for r in rows)
    assert len(rows) == len({(r.entity_type, r.entity_id) for r in rows})  # one row each
    keys = db.session.scalars(
        select(Identity.reference).where(Identity.entity_type == "combination")
    ).all()
    assert keys == ["P-1-A"]  # the deleted one's key is forgotten
