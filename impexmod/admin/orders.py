"""The panel's orders channel: moving an order from its page, and Advanced Importer >
Orders to approve (held export flags approved or rejected one by one or in bulk)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm
from impexmod.admin.i18n import say
from impexmod.orders import flags, overview, states
from impexmod.orders.states import OrderNotFound, StateError

APPROVAL_PAGE = 200


def actor() -> str:
    """Who acts, as the order's log names them."""
    return f"panel:{getattr(current_user, 'email', '?')}"


def move_from_form(order_id: int) -> None:
    """Move the order to the state the panel's form asks, flashing what happened."""
    target = (request.form.get("state") or "").strip()
    expected = (request.form.get("expected") or "").strip() or None
    if not target:
        flash(_("Choose the state to move the order to."), "error")
        return
    try:
        moved = states.move(order_id, target, actor=actor(), expected=expected)
    except (StateError, OrderNotFound) as exc:
        flash(say(exc), "error")
        return
    message = _(
        "Order %(reference)s moved from %(source)s to %(target)s.",
        reference=moved.reference,
        source=moved.from_state,
        target=moved.to_state,
    )
    if moved.flags:
        message += " " + _("Flags set: %(flags)s.", flags=", ".join(moved.flags))
    flash(message, "success")


class OrdersToApproveView(SecuredView, BaseView):
    """Orders waiting on a flag that needs approval, oldest first."""

    @expose("/")
    def index(self):
        flag = request.args.get("flag") or None
        rows = [overview.flag_row(f) for f in flags.held(flag, limit=APPROVAL_PAGE)]
        references = overview.references({r["order_id"] for r in rows})
        return self.render(
            "impexmod/orders_to_approve.html",
            rows=rows,
            references=references,
            flag=flag,
            defined=[f for f in flags.defined() if f.needs_approval],
            failing=[overview.flag_row(f) for f in flags.failing(limit=50)],
            form=ConfirmForm(),
        )

    @expose("/decide/", methods=["POST"])
    def decide(self):
        form = ConfirmForm()
        flag = request.form.get("flag") or None
        if form.validate_on_submit():
            if request.form.get("scope") == "all":
                ids = [f.id for f in flags.held(flag, limit=100_000)]
            else:
                ids = [int(i) for i in request.form.getlist("flag_id") if i.isdigit()]
            if not ids:
                flash(_("Select the orders to approve or reject."), "error")
            elif request.form.get("decision") == "reject":
                done = flags.reject(ids, actor=actor())
                flash(
                    ngettext("%(num)d order rejected.", "%(num)d orders rejected.", len(done)),
                    "success",
                )
            else:
                done = flags.approve(ids, actor=actor())
                flash(
                    ngettext("%(num)d order approved.", "%(num)d orders approved.", len(done)),
                    "success",
                )
        return redirect(url_for(".index", flag=flag) if flag else url_for(".index"))


class OrderFlowView(SecuredView, BaseView):
    """The transitions between order states, the flags each sets, and the flags themselves."""

    @expose("/")
    def index(self):
        return self.render(
            "impexmod/order_flow.html",
            transitions=states.transitions(),
            defined=flags.defined(),
            counts=flags.counts(),
            state_names=[s["name"] for s in states.state_list()],
            form=ConfirmForm(),
        )

    @expose("/flag/", methods=["POST"])
    def define_flag(self):
        if ConfirmForm().validate_on_submit():
            try:
                flag = flags.define(
                    request.form.get("name", ""),
                    request.form.get("label", ""),
                    needs_approval=request.form.get("needs_approval") == "y",
                )
            except flags.FlagError as exc:
                flash(say(exc), "error")
            else:
                flash(_("Flag %(name)s saved.", name=flag.name), "success")
        return redirect(url_for(".index"))

    @expose("/transition/", methods=["POST"])
    def save_transition(self):
        if ConfirmForm().validate_on_submit():
            source, target = request.form.get("source", ""), request.form.get("target", "")
            try:
                states.allow(source, target, request.form.getlist("flag"))
            except (StateError, flags.FlagError) as exc:
                flash(say(exc), "error")
            else:
                flash(
                    _("Transition %(source)s → %(target)s saved.", source=source, target=target),
                    "success",
                )
        return redirect(url_for(".index"))

    @expose("/transition/remove/", methods=["POST"])
    def remove_transition(self):
        if ConfirmForm().validate_on_submit():
            source, target = request.form.get("source", ""), request.form.get("target", "")
            try:
                states.forbid(source, target)
            except StateError as exc:
                flash(say(exc), "error")
            else:
                flash(
                    _("Transition %(source)s → %(target)s removed.", source=source, target=target),
                    "success",
                )
        return redirect(url_for(".index"))
