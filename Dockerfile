# docqa's image. Every process runs from it with its own command (see compose.yaml): the web
# server (the default), the files and answers workers, beat, and the one-shot migrate.
# The install steps are the Makefile's: the hashed locks through uv, then docqa itself.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=docqa.settings \
    DOCQA_VAR_DIR=/var/lib/docqa \
    DOCQA_STATIC_ROOT=/opt/docqa/static

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/docqa docqa \
 && mkdir -p /var/lib/docqa/media /var/lib/docqa/beat \
 && chown -R docqa:docqa /var/lib/docqa

WORKDIR /opt/docqa/src

# The locks alone first, so that a change of code does not reinstall every package.
COPY requirements/ requirements/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt \
 && uv pip sync --quiet --python /opt/venv/bin/python --require-hashes requirements/run.txt

# docqa itself, as a wheel would install it (templates, static files and catalogues inside the
# package), then the static files collected into the image, outside the data volume. The
# secret key here only lets settings load; it is not kept anywhere.
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY docqa/ docqa/
COPY templates/ templates/
COPY static/ static/
RUN uv pip install --quiet --python /opt/venv/bin/python --no-deps --no-build-isolation . \
 && cd / && rm -rf /opt/docqa/src \
 && DJANGO_SECRET_KEY=build-time-only-settings-need-one-0123456789 \
    python -m django collectstatic --noinput --verbosity 0

WORKDIR /home/docqa
USER docqa
# The database (SQLite, if no DATABASE_URL), uploads under media/, beat's schedule.
VOLUME ["/var/lib/docqa"]
EXPOSE 8000

# WEB_CONCURRENCY (uvicorn's own variable) runs that many web processes in the container.
CMD ["uvicorn", "docqa.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--lifespan", "off", "--timeout-graceful-shutdown", "5"]
