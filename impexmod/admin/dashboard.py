"""The panel's home (/admin): the dashboard, and the login and logout pages."""

from __future__ import annotations

from flask import flash, redirect, request, session, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_user, logout_user

from impexmod.admin import users
from impexmod.admin.auth import (
    SignInThrottled,
    begin_sign_in,
    failed_sign_in,
    safe_next,
    signed_in,
    to_login,
)
from impexmod.admin.forms import LanguageForm, LoginForm
from impexmod.runs import overview


class DashboardView(AdminIndexView):
    """Counts, latest runs and failures; also where merchants sign in and out."""

    # Open to all: the login page lives here; index() itself asks for a login.
    def is_accessible(self) -> bool:
        return True

    def is_visible(self) -> bool:
        return current_user.is_authenticated

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return to_login()
        return self.render("impexmod/dashboard.html", data=overview.overview())

    @expose("/login/", methods=["GET", "POST"])
    def login_view(self):
        form = LoginForm()
        target = safe_next(request.args.get("next")) or url_for(".index")
        if current_user.is_authenticated:
            return redirect(target)
        failed = False
        if form.validate_on_submit():
            email = form.email.data
            try:
                # Checked before the password: a locked account's password is not even tried.
                begin_sign_in(email)
            except SignInThrottled as refused:
                page = self.render("impexmod/login.html", form=form, throttled=refused.message)
                return page, 429, {"Retry-After": str(refused.seconds)}
            user = users.authenticate(email, form.password.data)
            if user is not None:
                signed_in(email)
                # A fresh session at sign-in: nothing set before it (fixation) survives.
                session.clear()
                session.permanent = True
                login_user(user)
                return redirect(target)
            failed_sign_in(email)
            failed = True
        return self.render("impexmod/login.html", form=form, failed=failed)

    @expose("/logout/", methods=["POST"])
    def logout_view(self):
        logout_user()
        session.clear()
        flash(_("You are signed out."), "info")
        return redirect(url_for(".login_view"))

    @expose("/language/", methods=["POST"])
    def language_view(self):
        """The signed-in merchant's language (the menu of the navigation bar)."""
        if not current_user.is_authenticated:
            return to_login()
        form = LanguageForm()
        back = safe_next(request.form.get("next")) or url_for(".index")
        if form.validate_on_submit():
            users.set_language(current_user, form.language.data or None)
            refresh()  # this response (the flash below) is in the new language already
            flash(_("The panel's language is saved for your account."), "success")
        return redirect(back)
