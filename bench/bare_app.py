"""The yardstick: a bare Flask "hello world", served by gunicorn exactly like the microsite.

POST is accepted too, so the booking benchmark's own wrk script (same body, same cookie) can be
pointed at it: the ratio then compares the booking work alone, not wrk's or gunicorn's costs.
"""

from flask import Flask

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def hello() -> str:
    return "Hello, World!"
