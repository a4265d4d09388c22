"""Merchant accounts: create them, check passwords, change them."""

from __future__ import annotations

from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from impexmod.extensions import db
from impexmod.models import User, now

MIN_PASSWORD = 8


@cache
def _dummy_hash() -> str:
    # Checked when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
    return generate_password_hash("not anyone's password")


class InvalidUser(ValueError):
    """An account that cannot be saved; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_email(email: str | None) -> str:
    """An e-mail address as accounts are keyed: trimmed, lower case."""
    return (email or "").strip().lower()


def _check_password(password: str | None) -> str:
    if not password or len(password) < MIN_PASSWORD:
        raise InvalidUser("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidUser("password", "at most 1024 characters")
    return password


def create_user(email: str, password: str) -> User:
    """Create a merchant account; raise InvalidUser for a bad or taken e-mail or password."""
    address = normalize_email(email)
    if "@" not in address or " " in address or len(address) > 255:
        raise InvalidUser("email", f"{email!r} is not an e-mail address")
    if find_user(address) is not None:
        raise InvalidUser("email", f"an account for {address} already exists")
    user = User(email=address, password_hash=generate_password_hash(_check_password(password)))
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    """The account with this e-mail address, if any."""
    return db.session.query(User).filter(User.email == normalize_email(email)).one_or_none()


def get_user(user_id: int | str) -> User | None:
    """The account with this id (as kept in the session), if any."""
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def list_users() -> list[User]:
    """Every account, oldest first."""
    return db.session.query(User).order_by(User.id).all()


def authenticate(email: str, password: str) -> User | None:
    """The active account these credentials open, or None (without saying which was wrong)."""
    user = find_user(email)
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    user.last_login_at = now()
    db.session.commit()
    return user


def set_password(user: User, password: str) -> User:
    """Give an account a new password."""
    user.password_hash = generate_password_hash(_check_password(password))
    db.session.commit()
    return user


def set_language(user: User, language: str | None) -> User:
    """Set the panel's language of an account ("en", "fr"; None or "": the browser's)."""
    from impexmod.admin.i18n import LANGUAGES

    if language and language not in LANGUAGES:
        raise InvalidUser("language", f"one of {', '.join(LANGUAGES)}, not {language!r}")
    user.language = language or None
    db.session.commit()
    return user
