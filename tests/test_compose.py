"""docker-compose.yml validates (Debian's docker-compose runs `config` without a Docker
engine; `make test-install` installs it on CI) and has the shape the deployment needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (`make test-install` installs it when root)",
)
ENV_EXAMPLE = REPO / ".env.example"


def _config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # a clean environment: nothing from the caller's shell (e.g. a CI password) leaks in
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [COMPOSE, "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"),
         *args, "config"],
        capture_output=True, text=True, env=clean, timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = _config({}, "--env-file", str(ENV_EXAMPLE))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services(config: dict) -> None:
    assert set(config["services"]) == {
        "elasticsearch", "kibana-password", "kibana", "dozor-setup", "scheduler", "mailpit",
        "redis", "worker"}


def test_health_checks_and_start_order(config: dict) -> None:
    services = config["services"]
    for name in ("elasticsearch", "kibana", "mailpit", "redis"):
        assert services[name]["healthcheck"]["test"], name

    def needs(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[service]["depends_on"].items()}

    assert needs("kibana-password") == {"elasticsearch": "service_healthy"}
    assert needs("kibana") == {"kibana-password": "service_completed_successfully"}
    assert needs("dozor-setup") == {"elasticsearch": "service_healthy",
                                    "kibana": "service_healthy"}
    assert needs("scheduler")["dozor-setup"] == "service_completed_successfully"
    assert services["dozor-setup"]["command"] == ["dozor", "setup"]
    assert services["dozor-setup"]["restart"] == "no"
    assert services["dozor-setup"]["environment"]["KIBANA_URL"] == "http://kibana:5601"
    assert services["scheduler"]["command"][:4] == ["dozor", "schedule", "--redis",
                                                    "redis://redis:6379/0"]
    # workers on the shared frontier, scaled with --scale worker=N
    assert services["worker"]["command"] == ["dozor", "worker"]
    assert services["worker"]["environment"]["DOZOR_REDIS_URL"] == "redis://redis:6379/0"
    assert needs("worker") == {"dozor-setup": "service_completed_successfully",
                               "mailpit": "service_healthy", "redis": "service_healthy"}
    assert needs("scheduler")["redis"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]


def test_security_on_with_the_password_from_the_env_file(config: dict) -> None:
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))
    es = config["services"]["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true"
    assert es["discovery.type"] == "single-node"
    assert es["ELASTIC_PASSWORD"] == example["ELASTIC_PASSWORD"]
    for service in ("dozor-setup", "scheduler", "worker"):
        env = config["services"][service]["environment"]
        assert env["ELASTIC_PASSWORD"] == example["ELASTIC_PASSWORD"]
        assert env["ELASTICSEARCH_URL"] == "http://elasticsearch:9200"
    assert config["services"]["kibana"]["environment"]["ELASTICSEARCH_PASSWORD"] == example[
        "KIBANA_PASSWORD"]
    # the workers match and mail the alerts
    worker = config["services"]["worker"]["environment"]
    assert (worker["DOZOR_SMTP_HOST"], worker["DOZOR_SMTP_PORT"]) == ("mailpit", "1025")


def test_no_default_passwords() -> None:
    """Without a .env (or with an empty password) the file refuses to resolve."""
    for missing in ("ELASTIC_PASSWORD", "KIBANA_PASSWORD", "KIBANA_ENCRYPTION_KEY"):
        env = {"ELASTIC_PASSWORD": "x", "KIBANA_PASSWORD": "y", "KIBANA_ENCRYPTION_KEY": "z" * 32,
               missing: ""}
        result = _config(env)
        assert result.returncode != 0
        assert missing in result.stderr


def test_named_volumes_and_local_ports_only(config: dict) -> None:
    named = set(config["volumes"])
    assert named == {"esdata", "kibanadata", "dozordata", "mailpitdata", "redisdata"}
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            assert source in named, f"{name}: {volume} is not a named volume"
        for port in service.get("ports", []):
            host_ip = port.split(":")[0] if isinstance(port, str) else port.get("host_ip")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond localhost"


def test_images_build_what_the_deployment_needs(config: dict) -> None:
    es_build = config["services"]["elasticsearch"]["build"]
    es_dockerfile = Path(es_build["context"]) / "Dockerfile"
    assert "elasticsearch-plugin install --batch analysis-ukrainian" in es_dockerfile.read_text()
    dozor_build = config["services"]["scheduler"]["build"]
    dozor_dockerfile = Path(dozor_build["context"]) / dozor_build["dockerfile"]
    assert "dozor models install ru uk" in dozor_dockerfile.read_text()
    assert config["services"]["dozor-setup"]["image"] == config["services"]["scheduler"]["image"]
    script = REPO / "docker" / "elasticsearch" / "set-kibana-password.sh"
    assert os.access(script, os.X_OK)


def test_no_env_file_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", ".env", "*.env"], cwd=REPO,
                             capture_output=True, text=True).stdout.split()
    assert tracked == []
    required = set(re.findall(r"\$\{([A-Z_]+):\?",
                              (REPO / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))
    assert required and required <= documented


def test_pinned_images_memory_lock_and_vm_max_map_count_documented(config: dict) -> None:
    services = config["services"]
    es = services["elasticsearch"]
    assert es["environment"]["bootstrap.memory_lock"] == "true"
    assert es["ulimits"]["memlock"] == {"soft": -1, "hard": -1}
    assert re.fullmatch(r"dozor-elasticsearch:9\.3\.\d+", es["image"])
    assert re.fullmatch(r"docker\.elastic\.co/kibana/kibana:9\.3\.\d+", services["kibana"]["image"])
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", services["mailpit"]["image"])
    assert "vm.max_map_count" in (REPO / "README.md").read_text()
    assert "vm.max_map_count" in (REPO / "docker-compose.yml").read_text()


def _run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(["sh", str(REPO / "docker" / "elasticsearch" / name), *args],
                          capture_output=True, text=True, env=clean, timeout=60)


def test_placeholder_secrets_are_refused_at_start() -> None:
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))
    secrets = {k: example[k] for k in ("ELASTIC_PASSWORD", "KIBANA_PASSWORD",
                                      "KIBANA_ENCRYPTION_KEY")}
    refused = _run_script("refuse-placeholders.sh", secrets, "echo", "started")
    assert refused.returncode == 2 and "placeholder" in refused.stderr
    assert "started" not in refused.stdout
    real = {k: f"real-{k.lower()}-secret" for k in secrets}
    ran = _run_script("refuse-placeholders.sh", real, "echo", "started")
    assert ran.returncode == 0 and ran.stdout.strip() == "started"


def test_kibana_password_step_retries_until_elasticsearch_takes_it() -> None:
    """A cluster just turned healthy may refuse at first (503): the step tries again."""
    import http.server
    import threading

    answers = [503, 503, 200]
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.path)
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"ELASTIC_PASSWORD": "e", "KIBANA_PASSWORD": "k",
               "ELASTICSEARCH_URL": f"http://127.0.0.1:{server.server_address[1]}",
               "KIBANA_PASSWORD_RETRY_SECONDS": "0"}
        result = _run_script("set-kibana-password.sh", env)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert seen == ["/_security/user/kibana_system/_password"] * 3
    assert "kibana_system password set" in result.stdout
