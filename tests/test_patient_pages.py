"""What a patient meets on the booking pages and error pages: clear headings that match the
situation, errors first and linked, no time chosen for them, one crisis message, our own words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from booking_helpers import VALID_DETAILS, open_form, slot_key_for, submit
from sqlalchemy import func, select
from test_pages import outline
from tests_support import PAGE_PATHS

from microsite import create_app
from microsite.cli import content as content_cli
from microsite.extensions import db
from microsite.models import Booking
from microsite.views import picker

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST, the first bookable time


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(name="Dr. Rivera"), make_consultation_type()


def booking_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Booking))


def main_html(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


# --- step 1: the type ------------------------------------------------------------------------


def test_each_type_offers_two_buttons_and_no_third_link(client, clinic):
    _, consultation_type = clinic
    page = outline(client.get("/book/").get_data(as_text=True))
    wanted = f"type={consultation_type.id}"
    to_type = [(href, text) for href, text in page.main_links if wanted in href]
    assert to_type == [
        (
            f"/book/first-available?type={consultation_type.id}",
            f"See the first free time for {consultation_type.name}",
        ),
        (f"/book/?type={consultation_type.id}", f"Choose a day for {consultation_type.name}"),
    ]


def test_first_free_time_opens_the_picker_without_jumping_past_the_days(client, clinic):
    _, consultation_type = clinic
    response = client.get(f"/book/first-available?type={consultation_type.id}")
    assert response.status_code == 303
    assert "#" not in response.headers["Location"]


# --- step 2: the picker ----------------------------------------------------------------------


def test_picker_days_link_without_anchors_and_empty_days_are_not_links(client, clinic):
    _, consultation_type = clinic
    html = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    strip = html.split('class="date-strip"', 1)[1].split("</ul>", 1)[0]
    day_links = re.findall(r'<a class="date[^"]*" href="([^"]+)"', strip)
    # Tuesday to Friday: Monday is inside the 12 h notice, the weekend has no hours.
    assert len(day_links) == 4
    assert all("#" not in href for href in day_links)
    assert "Saturday, December 5: No free times" in strip
    saturday = strip.split("Sat<", 1)[0].rsplit("<li>", 1)[1]
    assert "<a " not in saturday
    assert 'aria-current="date"' in strip
    assert "Tuesday, December 1: 15 free times" in strip  # 9:00 to 16:00, every 30 min


def test_picker_can_link_its_times_and_days_elsewhere(app, client, clinic):
    """A reschedule page reuses the picker with its own URLs."""
    _, consultation_type = clinic
    with app.test_request_context("/"):
        view = picker.build(
            consultation_type,
            clinician_id=None,
            week=None,
            day=None,
            links=picker.PickerLinks(
                page=lambda clinician_id, **args: f"/reschedule?week={args.get('week', '')}",
                choose=lambda key: f"/elsewhere/{key}",
                filter_action="/reschedule",
            ),
        )
    assert view.times[0].url == f"/elsewhere/{slot_key_for(TUESDAY_9AM)}"
    assert view.days[1].url == "/reschedule?week=2026-11-30"
    assert view.nav["next_week"] == "/reschedule?week=2026-12-07"
    assert view.nav["filter_action"] == "/reschedule"
    assert view.nav["first_available"] == "/reschedule?week="  # the picker opens there


# --- step 3: the form and its failures -------------------------------------------------------


def test_form_shows_the_crisis_numbers_once_and_optional_once(client, clinic):
    _, consultation_type = clinic
    response, _ = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    html = main_html(response.get_data(as_text=True))
    assert html.count('href="tel:988"') == 1
    assert html.count('href="tel:911"') == 1
    assert html.lower().count("not for emergencies") == 1  # the box the patient ticks
    note = html.split('for="note"', 1)[1].split("</textarea>", 1)[0]
    assert note.lower().count("optional") == 1


def test_a_form_sent_too_quickly_asks_to_check_and_book_again(
    app_config, database_url, frozen_clock, make_clinician, make_consultation_type
):
    app_config["BOOKING_MIN_FILL_SECONDS"] = 3
    app = create_app(app_config)
    with app.app_context():
        make_clinician()
        consultation_type = make_consultation_type()
        response = submit(app.test_client(), consultation_type.id, slot_key_for(TUESDAY_9AM))
        page = outline(response.get_data(as_text=True))
    assert response.status_code == 422
    assert page.h1s == ["Please check your details"]
    assert page.title.startswith("Error: Please check your details")
    assert "press “Book this consultation” again" in page.text
    assert "choose another time" not in page.text.lower()
    # The time is still theirs: it is shown, not swapped for a list of others.
    assert "Tuesday, December 1, 2026 at 9:00 AM EST" in page.text
    assert 'name="slot" type="radio"' not in response.get_data(as_text=True)


def test_invalid_details_put_a_linked_summary_first_and_error_in_the_title(client, clinic):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), full_name="")
    html = response.get_data(as_text=True)
    page = outline(html)
    assert response.status_code == 422
    assert page.title.startswith("Error: Your details")
    content = main_html(html)
    assert content.index('id="error-summary"') < content.index("<h1")
    assert ("#full_name", "Enter your full name.") in page.main_links
    assert "js/error-summary.js" in html


def test_a_clean_form_has_no_error_title_and_no_focus_script(client, clinic):
    _, consultation_type = clinic
    response, _ = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    html = response.get_data(as_text=True)
    assert outline(html).title.startswith("Your details")
    assert "error-summary" not in html


def test_taken_time_offers_others_with_none_chosen_and_keeps_the_details(app, clinic):
    clinician, consultation_type = clinic
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    first, second = app.test_client(), app.test_client()
    _, hidden_a = open_form(first, consultation_type.id, key)
    _, hidden_b = open_form(second, consultation_type.id, key)
    first.post("/book/details", data={**hidden_a, **VALID_DETAILS})
    response = second.post("/book/details", data={**hidden_b, **VALID_DETAILS})
    html = response.get_data(as_text=True)
    page = outline(html)
    assert response.status_code == 409
    assert page.title.startswith("Error: That time was just taken")
    assert len(re.findall(r'type="radio"[^>]*name="slot"', html)) > 1
    assert " checked" not in html.split('class="alternatives', 1)[1].split("</fieldset>", 1)[0]
    assert "Your details below are kept." in page.text

    # Pressing Book again without choosing books nothing and points at the list.
    again = {**hidden_b, **VALID_DETAILS, "slot": "", "near": key}
    retry = second.post("/book/details", data=again)
    retry_html = retry.get_data(as_text=True)
    assert retry.status_code == 422
    assert outline(retry_html).h1s == ["Please choose a time"]
    assert ("#slot", "Choose one of the times.") in outline(retry_html).main_links
    assert 'id="slot"' in retry_html
    assert 'value="jane.patient@example.com"' in retry_html
    assert booking_count() == 1


def test_opening_the_form_for_a_taken_time_does_not_claim_details_were_kept(
    client, clinic, make_booking
):
    clinician, consultation_type = clinic
    make_booking(clinician, consultation_type, TUESDAY_9AM)
    response, _ = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    page = outline(response.get_data(as_text=True))
    assert response.status_code == 409
    assert "Here are the nearest free times." in page.text
    assert "kept" not in page.text


def test_a_time_never_offered_is_a_422_with_a_matching_heading(client, clinic):
    _, consultation_type = clinic
    saturday = slot_key_for(TUESDAY_9AM + timedelta(days=4))
    response, _ = open_form(client, consultation_type.id, saturday)
    page = outline(response.get_data(as_text=True))
    assert response.status_code == 422
    assert page.h1s == ["Please choose another time"]
    assert page.title.startswith("Error: Please choose another time")


# --- error pages and URLs --------------------------------------------------------------------


def test_a_body_too_large_gets_our_own_words(client, clinic):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), note="x" * 70_000)
    page = outline(response.get_data(as_text=True))
    assert response.status_code == 413
    assert page.h1s == ["That was more than we can accept"]
    assert "Nothing was booked." in page.text
    assert "Request Entity Too Large" not in page.text
    assert "The data value transmitted exceeds" not in page.text


def test_wrong_method_gets_our_own_words(client):
    page = outline(client.post("/about").get_data(as_text=True))
    assert page.h1s == ["That does not work on this page"]
    assert "Method Not Allowed" not in page.text


@pytest.mark.parametrize("path", [p for p in PAGE_PATHS if p != "/"])
def test_a_page_with_a_trailing_slash_redirects_to_the_page(client, path):
    # A forged Host never gets this far (400: tests/test_hosts.py); the Location is relative.
    response = client.get(path + "/?from=menu")
    assert response.status_code in {301, 308}
    assert response.headers["Location"] == f"{path}?from=menu"


def test_the_booking_page_without_its_slash_redirects_relatively(client):
    response = client.get("/book")
    assert response.status_code in {301, 308}
    assert response.headers["Location"] == "/book/"


def test_an_unknown_path_with_a_slash_is_still_404(client):
    assert client.get("/no-such-page/").status_code == 404


# --- content ---------------------------------------------------------------------------------


def test_safety_page_speaks_to_patients_in_treatment(client):
    page = outline(client.get("/safety").get_data(as_text=True))
    assert "for any purpose" not in page.text
    assert "your dose is decided with your doctor" in page.text


def test_content_check_lists_every_placeholder_with_file_and_line(app):
    result = app.test_cli_runner().invoke(args=["content", "check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(re.match(r"microsite/content/faq\.md:\d+: ", line) for line in lines)
    assert any(line.startswith("microsite/templates/booking/confirmed.html:") for line in lines)
    assert any("CLINIC_PHONE = '+1 207 555 0142' is a demo value" in line for line in lines)
    first = next(line for line in lines if line.startswith("microsite/content/faq.md:"))
    number = int(first.split(":")[1])
    with open(app.root_path + "/content/faq.md", encoding="utf-8") as faq:
        assert faq.read().splitlines()[number - 1].strip() == "!!! placeholder"


def test_content_check_passes_when_nothing_is_left(tmp_path):
    (tmp_path / "page.md").write_text("Title: t\nDescription: d\nHeading: h\n\nReal text.\n")
    (tmp_path / "page.html").write_text('<div class="admonition note">fine</div>\n')
    config = tmp_path / "config.py"
    config.write_text('    "CLINIC_PHONE": "+1 207 555 0142",\n')
    assert content_cli.markdown_placeholders(tmp_path, tmp_path) == []
    assert content_cli.template_placeholders(tmp_path, tmp_path) == []
    real = {key: f"real {key.lower()}" for key in content_cli.DEMO_SETTINGS}
    assert content_cli.demo_settings(real, config, tmp_path) == []
    demo = {**real, "CLINIC_PHONE": "+1 207 555 0142"}
    [finding] = content_cli.demo_settings(demo, config, tmp_path)
    assert (finding.path, finding.line) == ("config.py", 1)
