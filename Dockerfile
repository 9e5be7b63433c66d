# Image for the api, worker and migrate services of docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml alembic.ini ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pulse ./pulse
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps -e .
ENV PULSE_API_HOST=0.0.0.0
EXPOSE 8000
CMD ["pulse", "api"]
