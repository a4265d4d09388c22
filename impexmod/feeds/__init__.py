"""The partner-facing feed endpoint."""

from flask import Blueprint

bp = Blueprint("feeds", __name__, url_prefix="/feeds")

from impexmod.feeds import views  # noqa: E402, F401
