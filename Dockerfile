# Reserve Monitor: one image for every `reserve-monitor` command.
#   docker build -t reserve-monitor:0.1.0 .
#   docker run reserve-monitor:0.1.0                   # a worker (the default command)
#   docker run reserve-monitor:0.1.0 simulate --live   # or any other subcommand
# deploy/docker-compose.yml builds and runs it with Kafka and the monitoring stack.

# -- build: the project's wheel with its core compiled, and every dependency as a wheel
FROM python:3.11.14-slim-bookworm AS build
# a C compiler for the compiled core (docs/developers.md, "The compiled core"); it stays
# in this stage, with mypy
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY connectors ./connectors
COPY deploy/compile_core.py ./deploy/compile_core.py
# mypyc type-checks the core against what it imports, so the dependencies come first; a
# core that does not compile fails the build (the image would run 20-30% slower); the
# project's wheel then carries the compiled modules and their stamp
RUN pip install --no-cache-dir ".[compile]" \
 && python deploy/compile_core.py \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

# -- run: the installed wheels, no sources, no build tools
FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# BuildKit (Docker's default builder) mounts the wheels for the install: they stay out of the image
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels reserve-monitor
# an unprivileged user of its own; the worker writes nothing to disk (its state is in Kafka)
RUN groupadd --system --gid 10001 monitor \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/monitor monitor
USER 10001:10001
WORKDIR /home/monitor
EXPOSE 6066
ENTRYPOINT ["reserve-monitor"]
CMD ["worker"]
