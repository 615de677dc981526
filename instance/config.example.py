# Copy to instance/config.py and edit. Environment variables MICROSITE_<NAME> override these.
# SECRET_KEY = "paste the output of: python3 -c 'import secrets; print(secrets.token_hex(32))'"
# SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://user:password@127.0.0.1:5432/bluewater"
# SITE_URL = "https://www.bluewater-psychiatry.example"
# SESSION_COOKIE_SECURE = True
# CLINIC_NAME = "Bluewater Psychiatry"
# CLINIC_PHONE = "+1 207 555 0142"
# CLINIC_TIMEZONE = "America/New_York"
