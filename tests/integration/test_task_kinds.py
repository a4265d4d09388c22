"""Task kinds: stored as before, each run through its registered pipeline, and the CLI's run
commands refuse a task of the other direction."""

from __future__ import annotations

from sqlalchemy import func, select, text

from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing.definition import create_importer
from impexmod.models import Run, Task, TaskKind
from impexmod.runs import lifecycle


def _runs() -> int:
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(Run)).scalar()


def test_kinds_are_stored_as_the_strings_they_were(app, tmp_path):
    exporter = exporters.create_exporter("p", "products")
    importer = create_importer("s", str(tmp_path / "stock.csv"), entity="stock")
    stored = dict(db.session.execute(text("SELECT id, kind FROM task")).all())
    assert stored == {exporter.id: "export", importer.id: "import"}
    db.session.expire_all()
    assert db.session.get(Task, importer.id).kind is TaskKind.IMPORT
    assert db.session.query(Task).filter(Task.kind == "export").one().id == exporter.id


def test_every_kind_has_a_pipeline(app):
    pipelines = {kind: lifecycle.pipeline_of(Task(kind=kind)) for kind in TaskKind}
    assert pipelines[TaskKind.EXPORT] is pipelines[TaskKind.MANUAL]
    assert pipelines[TaskKind.IMPORT] is pipelines[TaskKind.UPLOAD]
    assert pipelines[TaskKind.EXPORT] is not pipelines[TaskKind.IMPORT]


def test_exporter_run_refuses_an_importer(app, runner, tmp_path):
    importer = create_importer("s", str(tmp_path / "stock.csv"), entity="stock")
    result = runner.invoke(args=["exporter", "run", str(importer.id), "--wait"])
    assert result.exit_code != 0
    assert f"task {importer.id} is an importer: use `impexmod importer run`" in result.output
    assert _runs() == 0


def test_importer_run_refuses_an_exporter(app, runner):
    exporter = exporters.create_exporter("p", "products")
    result = runner.invoke(args=["importer", "run", str(exporter.id), "--wait"])
    assert result.exit_code != 0
    assert f"task {exporter.id} is an exporter: use `impexmod exporter run`" in result.output
    assert _runs() == 0


def test_run_commands_refuse_the_panels_one_off_tasks(app, runner):
    one_off = Task(kind=TaskKind.MANUAL, name="once", entity="products", token_nonce="n")
    db.session.add(one_off)
    db.session.commit()
    for command, kind in (("exporter", "an exporter"), ("importer", "an importer")):
        result = runner.invoke(args=[command, "run", str(one_off.id)])
        assert result.exit_code != 0
        assert f"task {one_off.id} is not {kind}" in result.output
    assert _runs() == 0
