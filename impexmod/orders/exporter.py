"""Order exporters (docs/orders.md): tasks of kind ``order_export`` that act on one
export flag, send the orders carrying it to an HTTP endpoint (or serve them as a document on
the task's feed URL, ``pull``) and clear the flag on success, setting the chain's next flags.

This module defines them (create, update, get, list, delete, describe), registers their
pipeline (impexmod.orders.pipeline) with impexmod.runs.lifecycle, and starts a run of every
order exporter acting on a flag as soon as that flag becomes ready on orders (``on_ready``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from impexmod.export import output
from impexmod.extensions import db
from impexmod.models import Task, TaskKind
from impexmod.orders import documents
from impexmod.orders import flags as order_flags
from impexmod.runs import lifecycle
from impexmod.runs import tasks as task_services
from impexmod.runs.lifecycle import TaskBusy
from impexmod.runs.tasks import InvalidTask, TaskNotFound, apply_when, check_when
from impexmod.runs.tokens import feed_url, new_nonce

DESTINATIONS = ("http", "pull")
LIMITS = {"batch": (1, 1000), "timeout": (1, 300), "attempts": (1, 10)}
DEFAULTS: dict[str, Any] = {
    "next_flags": [],
    "fmt": None,  # xml, or json with a template
    "template": None,
    "batch": 1,
    "destination": "http",
    "url": None,
    "timeout": 10,
    "attempts": 3,
    "schedule": None,
    "timezone": None,
    "on_flag": None,
}


@dataclass(frozen=True)
class Definition:
    """What an order exporter does, read from its task."""

    flag: str
    next_flags: tuple[str, ...]
    fmt: str  # xml | json | jsonl
    template: str | None  # a saved field template of orders, written as fmt (json, jsonl)
    batch: int  # orders per request (pull: per claim)
    destination: str  # http | pull
    url: str | None
    secret: str | None
    timeout: float
    attempts: int
    on_flag: bool  # a run starts as soon as the flag becomes ready on orders


def definition_of(task: Task) -> Definition:
    """The definition of an order exporter's task."""
    options = task.options or {}
    return Definition(
        flag=options.get("flag", ""),
        next_flags=tuple(options.get("next_flags") or ()),
        fmt=task.format,
        template=task.template,
        batch=int(options.get("batch") or 1),
        destination=options.get("destination", "http"),
        url=options.get("url"),
        secret=(task.secrets or {}).get("secret"),
        timeout=float(options.get("timeout") or 10),
        attempts=int(options.get("attempts") or 3),
        on_flag=bool(options.get("on_flag", True)),
    )


def _number(name: str, value: Any) -> int:
    low, high = LIMITS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidTask(name, f"{value!r} is not a whole number") from None
    if isinstance(value, bool) or not low <= number <= high or number != float(value):
        raise InvalidTask(name, f"{value!r} is not between {low} and {high}")
    return number


def _check_url(url: str | None) -> str:
    url = (url or "").strip()
    if not url:
        raise InvalidTask("url", "an http destination needs the URL orders are POSTed to")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTask("url", f"{url!r} is not an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise InvalidTask("url", f"{url!r} has a port that is not a number") from None
    if len(url) > 512:
        raise InvalidTask("url", "at most 512 characters")
    return url


def _check_output(fmt: str | None, template: str | None) -> tuple[str, str | None]:
    template = (template or "").strip() or None
    fmt = (fmt or "").strip().lower() or ("json" if template else "xml")
    if template:
        if fmt not in documents.TEMPLATE_FORMATS:
            raise InvalidTask(
                "format",
                f"a field template is written as {' or '.join(documents.TEMPLATE_FORMATS)}, "
                f"not {fmt}",
            )
        try:  # the saved template exists and maps orders
            output.validate_output("orders", fmt, {}, template)
        except output.InvalidOutput as exc:
            raise InvalidTask(exc.field, exc.message) from None
    elif fmt not in documents.FORMATS:
        raise InvalidTask("format", f"choose one of {', '.join(documents.FORMATS)}")
    return fmt, template


def validate(
    name: str,
    flag: str,
    *,
    has_secret: bool = False,
    secret: str | None = None,
    **given: Any,
) -> dict[str, Any]:
    """Check an order exporter's definition (the keywords of DEFAULTS); return it normalised,
    or raise InvalidTask naming the first bad field."""
    values = {**DEFAULTS, **given}
    if not name or not name.strip():
        raise InvalidTask("name", "a name is required")
    if len(name.strip()) > 128:
        raise InvalidTask("name", "at most 128 characters")
    try:
        [flag] = order_flags.check_names([flag]) or [""]
    except order_flags.FlagError as exc:
        raise InvalidTask("flag", str(exc)) from None
    if not flag:
        raise InvalidTask("flag", "name the export flag the exporter acts on")
    try:
        next_flags = order_flags.check_names(values["next_flags"] or [])
    except order_flags.FlagError as exc:
        raise InvalidTask("next_flags", str(exc)) from None
    if flag in next_flags:
        raise InvalidTask("next_flags", f"flag {flag} cannot follow itself: it would never end")
    fmt, template = _check_output(values["fmt"], values["template"])
    batch = _number("batch", values["batch"])
    destination = (values["destination"] or "http").strip().lower()
    if destination not in DESTINATIONS:
        raise InvalidTask("destination", f"choose one of {', '.join(DESTINATIONS)}")
    options: dict[str, Any] = {
        "flag": flag,
        "next_flags": next_flags,
        "batch": batch,
        "destination": destination,
    }
    if destination == "http":
        options["url"] = _check_url(values["url"])
        options["timeout"] = _number("timeout", values["timeout"])
        options["attempts"] = _number("attempts", values["attempts"])
        secret = (secret or "").strip() or None
        if secret is None and not has_secret:
            raise InvalidTask("secret", "an http destination needs a secret to sign requests with")
        if secret is not None and len(secret) > 256:
            raise InvalidTask("secret", "at most 256 characters")
    elif values["url"]:
        raise InvalidTask("url", "a pull exporter is read on its feed URL: it takes no URL")
    # Pull documents replace one another on the feed URL: by default they are written on the
    # schedule (or by hand), not at each flag, so a partner polling has time to read each.
    on_flag = values["on_flag"]
    options["on_flag"] = (destination == "http") if on_flag is None else bool(on_flag)
    when = check_when(values["schedule"], values["timezone"], None, None)
    return {"options": options, "format": fmt, "template": template, "secret": secret, "when": when}


def _apply(task: Task, name: str, checked: dict[str, Any]) -> None:
    task.name = name.strip()
    task.entity = "orders"
    task.format, task.template = checked["format"], checked["template"]
    task.options = checked["options"]
    if checked["options"]["destination"] == "pull":
        task.secrets = None
    elif checked["secret"] is not None:
        task.secrets = {"secret": checked["secret"]}
    apply_when(task, checked["when"])


def create_order_exporter(
    name: str, flag: str, *, secret: str | None = None, max_retries: int = 0, **definition: Any
) -> Task:
    """Save a new order exporter (``definition``: the keywords of DEFAULTS); a pull exporter's
    feed URL answers 404 until its first run has served orders."""
    checked = validate(name, flag, secret=secret, **definition)
    task = Task(kind=TaskKind.ORDER_EXPORT, token_nonce=new_nonce(), max_retries=max_retries)
    _apply(task, name, checked)
    db.session.add(task)
    db.session.commit()
    return task


def current_values(task: Task) -> dict[str, Any]:
    """An order exporter's definition as the keywords of ``update_order_exporter``."""
    d = definition_of(task)
    return {
        "name": task.name,
        "flag": d.flag,
        "next_flags": list(d.next_flags),
        "fmt": d.fmt,
        "template": d.template,
        "batch": d.batch,
        "destination": d.destination,
        "url": d.url,
        "timeout": int(d.timeout),
        "attempts": d.attempts,
        "schedule": task.schedule,
        "timezone": task.timezone,
        "on_flag": d.on_flag,
    }


def update_order_exporter(task: Task, *, secret: str | None = None, **changes: Any) -> Task:
    """Change some of an order exporter's definition (the others are kept; so is its secret
    unless ``secret`` is given, and its feed URL's token)."""
    if task.kind != TaskKind.ORDER_EXPORT:
        raise InvalidTask("kind", f"task {task.id} is not an order exporter")
    values = {**current_values(task), **changes}
    if "destination" in changes and "on_flag" not in changes:
        values["on_flag"] = None  # the new destination's default
    name, flag = values.pop("name"), values.pop("flag")
    has_secret = bool((task.secrets or {}).get("secret"))
    checked = validate(name, flag, secret=secret, has_secret=has_secret, **values)
    _apply(task, name, checked)
    db.session.commit()
    return task


def get_order_exporter(task_id: int) -> Task:
    """The order exporter with this id (TaskNotFound if there is none)."""
    task = db.session.get(Task, task_id)
    if task is None or task.kind != TaskKind.ORDER_EXPORT:
        raise TaskNotFound(f"no order exporter with id {task_id}")
    return task


def list_order_exporters(flag: str | None = None) -> list[Task]:
    """Every order exporter (or those acting on ``flag``), oldest first."""
    found = list(
        db.session.scalars(select(Task).where(Task.kind == TaskKind.ORDER_EXPORT).order_by(Task.id))
    )
    return [t for t in found if flag is None or definition_of(t).flag == flag]


def delete_order_exporter(task: Task) -> None:
    """Delete an order exporter, its runs and its files; the flags it served stay recorded."""
    task_services.delete_task(get_order_exporter(task.id))


def describe(task: Task) -> dict[str, Any]:
    """An order exporter as plain data: its definition (never its secret), the flag's counts,
    the orders that keep failing, its feed URL (pull) and its last run."""
    d = definition_of(task)
    described = task_services.describe(task)
    failing = order_flags.failing(d.flag, limit=50)
    return {
        "id": task.id,
        "kind": str(task.kind),
        "name": task.name,
        "flag": d.flag,
        "next_flags": list(d.next_flags),
        "format": d.fmt,
        "template": d.template,
        "batch": d.batch,
        "destination": d.destination,
        "url": d.url,
        "timeout": d.timeout,
        "attempts": d.attempts,
        "has_secret": bool(d.secret),
        "on_flag": d.on_flag,
        "feed_url": feed_url(task) if d.destination == "pull" else None,
        "schedule": described["schedule"],
        "timezone": described["timezone"],
        "next_run_at": described["next_run_at"],
        "flag_counts": order_flags.counts().get(d.flag, {}),
        "failing": [
            {
                "order_id": f.id_order,
                "attempts": f.attempts,
                "last_error": f.last_error,
                "set_at": f.set_at.isoformat(timespec="seconds") if f.set_at else None,
            }
            for f in failing
        ],
        "last_run": described["last_run"],
    }


# -- runs started when flags become ready ----------------------------------------------------


def start_for(names: set[str], trigger: str = "flag") -> list[int]:
    """Start a run of every order exporter acting on one of ``names`` (those taking flags as
    they come); one already running takes the new flags in its loop. Returns the run ids."""
    started = []
    for task in list_order_exporters():
        d = definition_of(task)
        if d.flag not in names or not d.on_flag:
            continue
        try:
            started.append(lifecycle.start(task, trigger=trigger).id)
        except TaskBusy:
            db.session.rollback()  # a run is on it: its loop claims until none is left
    return started


def flags_ready(names: set[str]) -> None:
    """The ``flags.on_ready`` listener: never fails whoever set the flags, which committed."""
    try:
        start_for(names)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("order exporters of flags %s were not started", names)


def register() -> None:
    """Run order exporters through their pipeline and start them when their flag is set (the
    app factory calls it)."""
    from impexmod.orders.pipeline import OrderExportPipeline

    lifecycle.register(OrderExportPipeline(), TaskKind.ORDER_EXPORT)
    order_flags.on_ready(flags_ready)
