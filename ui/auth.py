"""Roles: every browser session is a technician until it proves it is support staff.

Proof is the staff password (``MANUALRAG_UI__STAFF_PASSWORD``) or an OIDC sign-in
through ``st.login`` whose verified e-mail is in ``MANUALRAG_UI__STAFF_EMAILS``. The role
lives in server-side session state under a key no widget uses, so a browser cannot
set it; every staff action calls ``require_staff`` itself rather than trusting that
its button was only shown to staff (a crafted or stale widget event still reaches
the handler).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Literal

import streamlit as st

from manualrag.settings import UiSettings
from manualrag.throttle import SignInThrottle

Role = Literal["technician", "staff"]

_STAFF = "_manualrag_staff_by_password"  # not a widget key: only this module sets it
NOTICE = "_manualrag_notice"  # one-line messages for the next run of the page


class NotAllowed(Exception):
    """A technician session tried a staff action."""


def password_matches(given: str, settings: UiSettings) -> bool:
    expected = settings.staff_password.get_secret_value()
    if not expected:
        return False  # no password configured: the password path is closed
    # Constant time, so response timing does not leak how much of a guess was right.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def verified_email(user: Mapping[str, Any]) -> str:
    """The signed-in account's e-mail, '' unless the identity provider says it verified it:
    many providers let anyone type any address at sign-up, so an unverified one proves nothing."""
    if not user.get("is_logged_in") or user.get("email_verified") is not True:
        return ""
    return str(user.get("email") or "")


def _user_email() -> str:
    try:
        return verified_email(st.user.to_dict())
    except Exception:  # noqa: BLE001 - st.user without any auth configured may raise
        return ""


def email_is_staff(email: str, settings: UiSettings) -> bool:
    allowed = {e.strip().lower() for e in settings.staff_emails if e.strip()}
    if not email or not allowed:
        return False
    return "*" in allowed or email.strip().lower() in allowed


def role(settings: UiSettings) -> Role:
    if st.session_state.get(_STAFF) is True:
        return "staff"
    if settings.oidc_enabled and email_is_staff(_user_email(), settings):
        return "staff"
    return "technician"


def is_staff(settings: UiSettings) -> bool:
    return role(settings) == "staff"


def require_staff(settings: UiSettings, action: str) -> None:
    """Raise ``NotAllowed`` (and leave a notice) unless this session is staff."""
    if not is_staff(settings):
        notify("error", f"Only support staff can {action}: sign in as staff first.")
        raise NotAllowed(action)


def notify(kind: Literal["success", "info", "warning", "error"], text: str) -> None:
    st.session_state.setdefault(NOTICE, []).append((kind, text))


def allowed(settings: UiSettings, action: str, show: bool = False) -> bool:
    """``require_staff`` as a test: False (with a notice, shown at once if ``show``) for technicians."""
    try:
        require_staff(settings, action)
    except NotAllowed:
        if show:
            show_notices()
        return False
    return True


def show_notices() -> None:
    for kind, text in st.session_state.pop(NOTICE, []):
        getattr(st, kind)(text)


def staff_available(settings: UiSettings) -> bool:
    return bool(settings.staff_password.get_secret_value()) or settings.oidc_enabled


# -- the sign-in panel ------------------------------------------------------------------------------


def client_address() -> str:
    """The connection's address, "local" for a browser on this machine (Streamlit gives None)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - outside a browser session there is no connection
        address = None
    return address if isinstance(address, str) and address else "local"


def _try_password(settings: UiSettings, throttle: SignInThrottle) -> None:
    given = st.session_state.get("staff_password_input", "")
    st.session_state["staff_password_input"] = ""  # never kept in the session
    # Counted per address and app-wide in app.db (manualrag/throttle.py): a new tab, a new
    # session or a restart of the app starts nothing from zero.
    client = client_address()
    wait = throttle.wait_s(client)
    if wait > 0:
        notify("error", f"Too many wrong passwords: wait {wait:.0f} s.")
        return
    if password_matches(given, settings):
        throttle.succeeded(client)
        st.session_state[_STAFF] = True
        notify("success", "Signed in as support staff.")
        return
    wait = throttle.failed(client, settings.max_failed_logins, settings.lockout_s)
    locked = f" Too many wrong passwords: wait {wait:.0f} s." if wait else ""
    notify("error", "Wrong staff password." + locked)


def sign_out() -> None:
    st.session_state[_STAFF] = False


def sign_in_panel(settings: UiSettings, throttle: SignInThrottle) -> None:
    """Sidebar panel: who this session is, and how to become staff."""
    current = role(settings)
    if current == "staff":
        who = _user_email()
        st.caption(f"Signed in as **support staff**{' (' + who + ')' if who else ''}.")
        if st.session_state.get(_STAFF):
            st.button("Sign out", key="staff_sign_out", on_click=sign_out)
        elif settings.oidc_enabled:
            st.button("Sign out", key="oidc_sign_out", on_click=st.logout)
        return
    st.caption("You are using the app as a **technician**.")
    if not staff_available(settings):
        st.caption("Staff sign-in is off: set MANUALRAG_UI__STAFF_PASSWORD or the OIDC settings.")
        return
    with st.expander("Support staff sign-in"):
        if settings.staff_password.get_secret_value():
            with st.form("staff_sign_in", clear_on_submit=True, border=False):
                st.text_input("Staff password", type="password", key="staff_password_input")
                st.form_submit_button("Sign in", on_click=_try_password, args=(settings, throttle))
        if settings.oidc_enabled:
            if _authlib_missing():
                st.caption("Single sign-on needs Authlib: pip install 'Authlib>=1.3.2'.")
            elif st.user.is_logged_in:
                st.caption(f"{_user_email() or 'This account'} is not on the staff list.")
                st.button("Sign out", key="oidc_sign_out_other", on_click=st.logout)
            else:
                st.button("Sign in with single sign-on", key="oidc_sign_in", on_click=st.login)


def _authlib_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("authlib") is None
