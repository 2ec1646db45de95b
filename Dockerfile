FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=3000
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY app.py alembic.ini announce.example.toml announce.tom[l] ./
COPY workflow ./workflow
COPY blocks ./blocks
COPY migrations ./migrations

RUN useradd --create-home --uid 1000 app && mkdir -p /data && chown app /data
USER app

EXPOSE 3000
# `python app.py` migrates the database, then serves HTTP (waitress) and runs the worker.
CMD ["python", "app.py"]
