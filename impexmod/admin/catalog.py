"""Catalog pages: products (with combinations and stock), categories, suppliers, orders.

Lists are Flask-Admin model views over the ORM session, so an edit made here is recorded in the
change log like any other ORM write, and reaches the next incremental feed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, IntEqualFilter
from flask_admin.model import typefmt
from flask_babel import gettext as _
from markupsafe import Markup, escape
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional, ValidationError

from impexmod.admin import orders as admin_orders
from impexmod.admin.auth import SecuredView
from impexmod.admin.formatting import catalog_time, format_amount, format_decimal_value
from impexmod.admin.forms import CombinationForm, ConfirmForm
from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.i18n import say
from impexmod.catalog import edits as catalog_edits
from impexmod.catalog import summary as catalog_summary
from impexmod.extensions import db
from impexmod.models import Category, Order, Product, Supplier
from impexmod.orders import overview as order_overview
from impexmod.orders import states as order_states

CATALOG = _l("Catalog")
# Flask-Admin names a column without a label after its attribute ("Date Upd"): every column
# a page shows has one, in the panel's language.
COMMON_LABELS = {
    "id": "ID",
    "name": _l("Name"),
    "reference": _l("Reference"),
    "active": _l("Active"),
    "date_add": _l("Created"),
    "date_upd": _l("Updated"),
}


class CatalogView(SecuredView, ModelView):
    """A read-only list of one catalog table (subclasses open what may change)."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    page_size = 20
    can_set_page_size = True
    column_display_pk = True
    column_default_sort = ("id", False)
    # Dates (as the shop stores them) and decimals in the panel's language.
    column_type_formatters = {
        **typefmt.BASE_FORMATTERS,
        datetime: lambda view, value, name: catalog_time(value),
        Decimal: lambda view, value, name: format_decimal_value(value),
    }
    column_type_formatters_detail = {
        **typefmt.DETAIL_FORMATTERS,
        bool: lambda view, value, name: _("yes") if value else _("no"),
        datetime: lambda view, value, name: catalog_time(value),
        Decimal: lambda view, value, name: format_decimal_value(value),
    }

    def _search_condition(self, term: str):
        return None

    def _apply_search(self, query, count_query, joins, count_joins, search):
        # Words are ANDed; each may match any searchable field, names included.
        for term in search.split():
            condition = self._search_condition(term)
            if condition is None:
                return super()._apply_search(query, count_query, joins, count_joins, search)
            query = query.filter(condition)
            if count_query is not None:
                count_query = count_query.filter(condition)
        return query, count_query, joins, count_joins


class StockFilter(BaseSQLAFilter):
    """In stock / out of stock, by the product's own stock row."""

    def __init__(self):
        options = (("in", _l("In stock")), ("out", _l("Out of stock")))
        super().__init__(Product.id, _l("Stock"), options=options)

    def apply(self, query, value, alias=None):
        return query.filter(catalog_summary.stock_condition(value == "in"))

    def operation(self):
        return _("is")


class _OrderStates:
    """Order states read when the filter is shown, not when the view is built (no app yet)."""

    def __bool__(self) -> bool:
        return True

    def __iter__(self):
        return iter([(str(i), name) for i, name in catalog_summary.order_states()])


class OrderStateFilter(IntEqualFilter):
    def __init__(self):
        super().__init__(Order.current_state, _l("State"))

    def get_options(self, view):
        return _OrderStates()


def _summary(model):
    return g.get("product_summaries", {}).get(model.id) or catalog_summary.ProductSummary()


class ProductView(CatalogView):
    can_edit = True
    details_template = "impexmod/product_details.html"
    column_list = ["id", "reference", "name", "price", "quantity", "combinations", "active"]
    column_labels = {
        **COMMON_LABELS,
        "ean13": "EAN-13",
        "upc": "UPC",
        "isbn": "ISBN",
        "mpn": "MPN",
        "id_tax_rules_group": _l("Tax rules group"),
        "id_manufacturer": _l("Manufacturer ID"),
        "id_category_default": _l("Default category ID"),
        "price": _l("Price (tax excl.)"),
        "wholesale_price": _l("Wholesale price"),
        "quantity": _l("Quantity"),
        "combinations": _l("Combinations"),
        "ecotax": _l("Ecotax"),
        "condition": _l("Condition"),
        "visibility": _l("Visibility"),
        "weight": _l("Weight"),
        "width": _l("Width"),
        "height": _l("Height"),
        "depth": _l("Depth"),
    }
    column_searchable_list = ["reference", "ean13"]
    column_sortable_list = ["id", "reference", "price", "active"]
    column_filters = ["active", "price", "date_upd", StockFilter()]
    column_formatters = {
        "name": lambda v, c, m, n: _summary(m).name,
        "quantity": lambda v, c, m, n: "" if _summary(m).quantity is None else _summary(m).quantity,
        "combinations": lambda v, c, m, n: _summary(m).combination_count or "",
        "price": lambda v, c, m, n: format_amount(m.price),
    }
    form_columns = ["reference", "ean13", "price", "wholesale_price", "quantity", "active"]
    form_args = {
        "price": {"label": _l("Price (tax excl.)"), "validators": [NumberRange(min=0)]},
        "wholesale_price": {"validators": [NumberRange(min=0)]},
        "ean13": {"label": "EAN-13"},
    }
    form_extra_fields = {
        "quantity": IntegerField(
            _l("Quantity"), validators=[Optional()], description=_l("Units in stock.")
        )
    }

    def search_placeholder(self) -> str:
        return _("Name, reference, EAN-13")

    def _search_condition(self, term: str):
        return catalog_summary.product_search(term)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        g.product_summaries = catalog_summary.product_summaries([p.id for p in rows])
        return count, rows

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if obj is not None and catalog_edits.has_combinations(obj.id):
            # Its stock is the sum of its combinations', edited on the product's page.
            del form["quantity"]
        elif obj is not None and request.method == "GET":
            form.quantity.data = catalog_summary.product_summaries([obj.id])[obj.id].quantity
        return form

    def on_model_change(self, form, model, is_created):
        if "quantity" in form and form.quantity.data is not None:
            try:
                catalog_edits.set_product_quantity(model.id, form.quantity.data)
            except catalog_edits.InvalidEdit as exc:
                raise ValidationError(say(exc.message)) from None

    @expose("/details/")
    def details_view(self):
        product_id = request.args.get("id", type=int)
        if product_id is not None:
            g.product_detail = catalog_summary.product_detail(product_id)
            g.combination_form = CombinationForm()
        return super().details_view()

    @expose("/combination/<int:combination_id>/", methods=["POST"])
    def combination(self, combination_id: int):
        form = CombinationForm()
        product_id = request.args.get("product", type=int)
        if product_id is None:
            abort(404)
        back = url_for(".details_view", id=product_id)
        if not form.validate_on_submit():
            flash(
                _("Enter a number for the price impact and a whole number for the quantity."),
                "error",
            )
            return redirect(back)
        try:
            catalog_edits.update_combination(
                combination_id, form.price_impact.data, form.quantity.data
            )
        except catalog_edits.InvalidEdit as exc:
            db.session.rollback()
            message = say(exc.message)
            flash(message[:1].upper() + message[1:], "error")
            return redirect(back)
        db.session.commit()
        flash(_("Combination %(id)s saved.", id=combination_id), "success")
        return redirect(back)


class CategoryView(CatalogView):
    column_list = ["id", "name", "id_parent", "level_depth", "active", "date_upd"]
    column_labels = {
        **COMMON_LABELS,
        "id_parent": _l("Parent"),
        "level_depth": _l("Depth"),
        "is_root_category": _l("Root category"),
        "position": _l("Position"),
    }
    column_searchable_list = ["id"]
    column_filters = ["active", "level_depth", "is_root_category"]
    column_formatters = {
        "name": lambda v, c, m, n: g.get("category_names", {}).get(m.id, ""),
        "id_parent": lambda v, c, m, n: g.get("category_names", {}).get(m.id_parent, ""),
    }

    def search_placeholder(self) -> str:
        return _("Name")

    def _search_condition(self, term: str):
        return catalog_summary.category_search(term)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        ids = {c.id for c in rows} | {c.id_parent for c in rows if c.id_parent}
        g.category_names = catalog_summary.category_names(list(ids))
        return count, rows


class SupplierView(CatalogView):
    column_list = ["id", "name", "active", "date_add", "date_upd"]
    column_labels = COMMON_LABELS
    column_searchable_list = ["name"]
    column_filters = ["active"]


def _order_state(view, context, model, name):
    summary = g.get("order_summaries", {}).get(model.id)
    if summary is None or not summary.state:
        return ""
    return Markup('<span class="badge text-white" style="background:{}">{}</span>').format(
        escape(summary.color), summary.state
    )


class OrderView(CatalogView):
    details_template = "impexmod/order_details.html"
    column_list = [
        "id",
        "reference",
        "customer",
        "state",
        "payment",
        "total_paid_tax_incl",
        "currency_iso",
        "date_add",
    ]
    column_labels = {
        **COMMON_LABELS,
        "customer": _l("Customer"),
        "state": _l("State"),
        "payment": _l("Payment"),
        "total_paid_tax_incl": _l("Total paid"),
        "currency_iso": _l("Currency"),
        "date_add": _l("Date"),
        "current_state": _l("State"),
        "total_products": _l("Products total"),
        "total_shipping": _l("Shipping"),
        "total_paid_tax_excl": _l("Total (tax excl.)"),
        "id_customer": _l("Customer"),
        "id_address_delivery": _l("Delivery address"),
        "id_address_invoice": _l("Invoice address"),
    }
    column_default_sort = ("id", True)
    column_searchable_list = ["reference", "payment"]
    column_filters = [
        OrderStateFilter(),
        "date_add",
        "total_paid_tax_incl",
        "payment",
    ]
    column_formatters = {
        "customer": lambda v, c, m, n: (
            g.get("order_summaries", {}).get(m.id).customer
            if m.id in g.get("order_summaries", {})
            else ""
        ),
        "state": _order_state,
        "total_paid_tax_incl": lambda v, c, m, n: format_amount(m.total_paid_tax_incl),
    }

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        g.order_summaries = catalog_summary.order_summaries(list(rows))
        return count, rows

    @expose("/details/")
    def details_view(self):
        order_id = request.args.get("id", type=int)
        if order_id is not None:
            g.order_lines = catalog_summary.order_lines(order_id)
            try:
                g.order_channel = order_overview.describe(order_id)
            except order_states.OrderNotFound:
                g.order_channel = None  # Flask-Admin's own page says the record is gone
            g.move_form = ConfirmForm()
        return super().details_view()

    @expose("/move/", methods=["POST"])
    def move_view(self):
        """Move the order along a transition (the order page's form)."""
        order_id = request.args.get("id", type=int)
        if order_id is None:
            abort(404)
        # The CSRF token is checked for every panel POST (admin.init_app).
        if ConfirmForm().validate_on_submit():
            admin_orders.move_from_form(order_id)
        return redirect(url_for(".details_view", id=order_id))


def catalog_views() -> list[ModelView]:
    """The catalog pages, in menu order."""
    return [
        ProductView(Product, db, name=_l("Products"), category=CATALOG, endpoint="products"),
        CategoryView(Category, db, name=_l("Categories"), category=CATALOG, endpoint="categories"),
        SupplierView(Supplier, db, name=_l("Suppliers"), category=CATALOG, endpoint="suppliers"),
        OrderView(Order, db, name=_l("Orders"), category=CATALOG, endpoint="orders"),
    ]
