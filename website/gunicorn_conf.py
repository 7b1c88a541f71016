"""gunicorn settings for the website (Heroku or any host)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Heroku's router gives up after 30 s: answer or fail well before that.
timeout = 20
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# gunicorn >= 25 opens a control socket in ~/.gunicorn by default: two sites on
# one host (or a test next to a running site) would fight over it.
control_socket_disable = True
