"""A staff member's moves in the console, shared by the staff scenarios and the screenshots.

Accounts are made the way a clinic makes them, with `flask staff create` (the password on
standard input); signing in and setting up the authenticator go through the pages, the code
computed from the secret the enrolment page shows as text, as an authenticator app would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
from playwright.sync_api import Page, expect

PASSWORD = "harbor-kettle-lantern-42"  # noqa: S105 - a throwaway password for test accounts
RECOVERY_CODE_RE = re.compile(r"^[a-z0-9-]{14}$")


@dataclass(frozen=True)
class StaffMember:
    email: str
    name: str
    role: str


ADMIN = StaffMember("avery.admin@clinic.test", "Avery Admin", "admin")
FRONT_DESK = StaffMember("dana.desk@clinic.test", "Dana Desk", "frontdesk")
# The demo schedule's first clinician (flask seed-demo): a clinician account belongs to the
# clinician with its email.
CLINICIAN = StaffMember("a.okafor@bluewater-psychiatry.example", "Dr. Amara Okafor", "clinician")


@dataclass(frozen=True)
class SignedIn:
    member: StaffMember
    totp_secret: str
    state: dict  # Playwright storage state: the console's session cookie


def create_account(server, member: StaffMember) -> None:
    server.flask(
        *("staff", "create", member.email, "--name", member.name, "--role", member.role),
        input=PASSWORD + "\n",
    )


def enter_password(page: Page, member: StaffMember, password: str = PASSWORD) -> None:
    """The first sign-in step, from the sign-in page."""
    page.goto("/staff/login")
    page.get_by_label("Email address").fill(member.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def current_code(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def read_secret(page: Page) -> str:
    """The key the enrolment page shows for typing into an app instead of scanning."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator app")
    return page.locator("#totp-secret").inner_text().strip()


def read_recovery_codes(page: Page) -> list[str]:
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    codes = [code.strip() for code in page.locator(".recovery-codes code").all_inner_texts()]
    assert len(codes) == 10, codes
    assert all(RECOVERY_CODE_RE.match(code) for code in codes), codes
    return codes


def enrol(page: Page) -> tuple[str, list[str]]:
    """On the enrolment page: the secret, a code from it, the recovery codes, then onwards to
    the console. Returns (secret, recovery codes)."""
    secret = read_secret(page)
    page.get_by_label("6-digit code").fill(current_code(secret))
    page.get_by_role("button", name="Confirm").click()
    codes = read_recovery_codes(page)
    page.get_by_role("link", name=re.compile("^I have saved them")).click()
    page.wait_for_url(re.compile(r"/staff/day/\d{4}-\d{2}-\d{2}$"))
    return secret, codes


WEEKS_AHEAD = 3  # the first free time is in the week the picker opens on, or the next


def week_with(page: Page, text: str):
    """From a console page, the Week view, then following weeks until a booking shows `text`;
    that booking's link in the grid."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Week").click()
    page.wait_for_url(re.compile(r"/staff/week/\d{4}-\d{2}-\d{2}$"))
    entry = page.locator(".cal-col a", has_text=text)
    for _ in range(WEEKS_AHEAD):
        if entry.count():
            break
        with page.expect_navigation():
            page.get_by_role("link", name=re.compile("^Next week")).click()
    expect(entry.first).to_be_visible()
    return entry.first
