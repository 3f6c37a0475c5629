"""Who owns a conversation: an unguessable token per browser, kept in a cookie.

Why a cookie written by a line of JavaScript, and not the URL: Streamlit 1.67 reads the
cookies the browser sent when the page connected (``st.context.cookies``) but cannot set
one from the server. A token in the URL would survive a reload too, but it would travel
with every link a technician copies into a ticket or a chat, and whoever opened the link
would own the conversations. The cookie stays in its browser, is sent only to this site
(``SameSite=Strict``), and a reload (a new Streamlit session) reads it back. Until the
browser has it (the first page of a new browser), the token lives in the session.

app.db stores only the token's sha256 (manualrag/conversations.py).
"""

from __future__ import annotations

import re
import secrets

import streamlit as st

COOKIE = "manualrag_owner"
_TOKEN = "_manualrag_owner_token"  # not a widget key: only this module sets it
_FORMAT = re.compile(r"[0-9a-f]{64}")  # secrets.token_hex(32): 256 random bits
MAX_AGE_S = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chromium caps at 400 days)


def owner_token() -> str:
    """This browser's token: the cookie's when it has a well-formed one, else a fresh one."""
    token = st.session_state.get(_TOKEN)
    if token is None:
        sent = str(st.context.cookies.get(COOKIE) or "")
        token = sent if _FORMAT.fullmatch(sent) else secrets.token_hex(32)
        st.session_state[_TOKEN] = token
    return str(token)


def remember_owner() -> None:
    """Have the browser keep this session's token, unless it sent that very cookie already."""
    token = owner_token()
    if st.context.cookies.get(COOKIE) == token:
        return
    # The token is 64 hex digits (checked or generated above): nothing here comes from input.
    st.html(
        "<script>document.cookie = "
        f"'{COOKIE}={token}; Path=/; Max-Age={MAX_AGE_S}; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>",
        unsafe_allow_javascript=True,
    )
