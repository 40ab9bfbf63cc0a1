"""Settings that would hang a run, switch a guard off or do nothing are refused at load,
naming the field; an unusable data or WARC directory stops `dozor run` before it
starts, with one line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crawler.runner import _settings
from pipelines.config.config import Config
from pipelines.config.settings import Settings
from pipelines.config.yamlfile import load_yaml
from pipelines.errors import ConfigError
from tests.support.crawl_harness import REPO, write_sources
from tests.support.httpserver import NewsServer


@pytest.mark.parametrize(("section", "field", "value", "bound"), [
    ("crawl", "concurrent_requests_per_domain", 0, "greater than or equal to 1"),
    ("crawl", "download_maxsize", 0, "greater than or equal to 65536"),
    ("crawl", "download_timeout", -5, "greater than or equal to 1"),
    ("crawl", "max_age_days", -1, "greater than or equal to 1"),
    ("crawl", "retry_times", -1, "greater than or equal to 0"),
    ("crawl", "batch_size", 0, "greater than or equal to 1"),
    ("crawl", "sitemap_depth", 0, "greater than or equal to 1"),
    ("crawl", "source_budget", 0, "greater than or equal to 1"),
    ("crawl", "download_delay", -0.5, "greater than or equal to 0"),
    ("crawl", "download_delay", 61, "less than or equal to 60"),
    ("crawl", "download_delay", "soon", "a valid number"),
])
def test_out_of_range_crawl_settings_are_refused(tmp_path: Path, section: str, field: str,
                                                 value: object, bound: str) -> None:
    path = tmp_path / "dozor.yaml"
    path.write_text(yaml.safe_dump({section: {field: value}}))
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, Settings)
    assert f"{section} → {field}: Input should be {bound}" in str(caught.value)


def test_the_download_delay_reaches_scrapy(tmp_path: Path) -> None:
    path = tmp_path / "dozor.yaml"
    path.write_text("crawl:\n  download_delay: 0.3\n")
    config = Config.from_env({"DOZOR_DATA_DIR": str(tmp_path), "DOZOR_CONFIG": str(path)})
    # the Scrapy settings `dozor run` and `dozor worker` crawl with
    assert _settings(config, False, None).getfloat("DOWNLOAD_DELAY") == 0.3
    # none set: none, as before the setting existed
    path.write_text("crawl:\n  retry_times: 1\n")
    unset = Config.from_env({"DOZOR_DATA_DIR": str(tmp_path), "DOZOR_CONFIG": str(path)})
    assert _settings(unset, False, None).getfloat("DOWNLOAD_DELAY") == 0


def test_unknown_languages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dozor.yaml"
    path.write_text(yaml.safe_dump({"languages": ["ru", "klingon", "uk"]}))
    with pytest.raises(ConfigError, match="languages: Value error, unknown language code"
                                          r"\(s\) 'klingon'; known: af, ar"):
        load_yaml(path, Settings)
    path.write_text(yaml.safe_dump({"languages": []}))
    with pytest.raises(ConfigError, match="languages: List should have at least 1 item"):
        load_yaml(path, Settings)
    path.write_text(yaml.safe_dump({"languages": ["ru", "de", "pl"]}))
    assert load_yaml(path, Settings).languages == ["ru", "de", "pl"]


def _dozor(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DOZOR_", "ELASTIC"))}
    return subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO,
                          env={**full, **env}, capture_output=True, text=True, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_run_with_a_hanging_setting_fails_before_crawling(tmp_path: Path,
                                                            news_server: NewsServer) -> None:
    config = tmp_path / "dozor.yaml"
    config.write_text(yaml.safe_dump({"crawl": {"concurrent_requests_per_domain": 0}}))
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "local", "feeds": [news_server.url("/rss.xml")]}])
    proc = _dozor(["run", "--sources", str(sources), "--db", str(tmp_path / "d.db")],
                  {"DOZOR_DATA_DIR": str(tmp_path / "data"), "DOZOR_CONFIG": str(config),
                   "DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"})
    assert proc.returncode == 2, proc.stderr
    assert "crawl → concurrent_requests_per_domain: Input should be greater than or equal " \
           "to 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert news_server.requests == []


def test_an_unusable_warc_directory_stops_the_run_at_start(tmp_path: Path,
                                                           news_server: NewsServer) -> None:
    blocker = tmp_path / "warc-is-a-file"
    blocker.write_text("not a directory")
    sources = write_sources(tmp_path / "sources.yaml",
                            [{"name": "local", "feeds": [news_server.url("/rss.xml")]}])
    proc = _dozor(["run", "--sources", str(sources), "--db", str(tmp_path / "d.db")],
                  {"DOZOR_DATA_DIR": str(tmp_path / "data"), "DOZOR_WARC_DIR": str(blocker),
                   "DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"})
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc)
    assert f"the WARC archive directory {blocker} is not usable" in line
    assert news_server.requests == []  # failed before the first request


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "data-is-a-file"
    blocker.write_text("not a directory")
    proc = _dozor(["alerts", "list"], {"DOZOR_DATA_DIR": str(blocker)})
    assert proc.returncode == 2, proc.stderr
    assert f"data directory {blocker} (DOZOR_DATA_DIR) is not usable" in _one_error_line(proc)
