# Production image: gunicorn serves Django, whitenoise serves the collected static files.
# The same image runs the Celery worker and beat (see docker-compose.yml).
FROM python:3.11-slim

# PIP_CONSTRAINT: xstatic-bootstrap builds from an sdist that needs setuptools<81 (see constraints.txt).
# DEBUG=0: the settings default to development mode, so the image sets production mode itself.
# A container started without SECRET_KEY and ALLOWED_HOSTS then stops with an error naming them.
ENV DEBUG=0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/app/constraints.txt

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, because settings find templates/, static/ and locale/ beside the packages.
RUN pip install --no-deps -e .

# DEBUG=0 selects the hashed, compressed static storage; the key and hosts exist only for this step.
RUN DEBUG=0 SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost python manage.py collectstatic --no-input

# Uploaded import files go to /app/media, a volume that web and worker share.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin spm \
    && mkdir -p /app/media \
    && chown spm /app/media
USER spm

EXPOSE 8000
CMD ["gunicorn", "spm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
