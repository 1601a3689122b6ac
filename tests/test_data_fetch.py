"""Finding and downloading files, against a local HTTP server on 127.0.0.1."""

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from anynet.data import ChecksumWarning, DataError, fetch, load
from anynet.data.fetch import fetch_file, file_url
from anynet.data.registry import FileInfo

GOOD = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))  # idx1 labels [1, 2, 3]
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
NAME = "tiny-labels-idx1-ubyte.gz"
REAL_DATA = os.environ.get("ANYNET_DATA_DIR")  # read before the fixtures below unset it


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves tmp_path/www at http://127.0.0.1:<port>; yields (root dir, base url, hits)."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []
    handler = type("H", (_Handler,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data dir, a fresh cache, no URL override."""
    monkeypatch.delenv("ANYNET_DATA_DIR", raising=False)
    monkeypatch.delenv("ANYNET_DATA_URL", raising=False)
    monkeypatch.setenv("ANYNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _serve(root, content=GOOD, folder="fake", name=NAME):
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / name).write_bytes(content)


def test_download_then_cache_hit(server, isolated):
    root, base, hits = server
    _serve(root)
    info = FileInfo(NAME, "https://example.invalid/" + NAME, GOOD_SHA, len(GOOD))
    path = fetch_file(info, "fake", progress=False, base_url=base)
    assert path == isolated / "fake" / NAME and path.read_bytes() == GOOD
    assert hits == [f"/fake/{NAME}"]
    again = fetch_file(info, "fake", progress=False, base_url=base)
    assert again == path and len(hits) == 1  # cache hit: no second request
    assert fetch_file(info, "fake", download=False) == path


def test_corrupt_download_leaves_nothing(server, isolated):
    root, base, _ = server
    _serve(root, content=GOOD[:-3] + b"bad")
    info = FileInfo(NAME, "unused", GOOD_SHA)
    with pytest.raises(DataError, match=r"corrupt.*Nothing was saved"):
        fetch_file(info, "fake", progress=False, base_url=base)
    assert not (isolated / "fake").exists() or list((isolated / "fake").iterdir()) == []


def test_wrong_checksum_in_cache_is_downloaded_again(server, isolated):
    root, base, hits = server
    _serve(root)
    bad = isolated / "fake" / NAME
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"stale bytes")
    info = FileInfo(NAME, "unused", GOOD_SHA)
    with pytest.raises(DataError, match=r"cache.*fails its sha256.*download=False"):
        fetch_file(info, "fake", download=False)
    assert fetch_file(info, "fake", progress=False, base_url=base).read_bytes() == GOOD
    assert len(hits) == 1


def test_wrong_registry_checksum(server, isolated):
    root, base, _ = server
    _serve(root)
    info = FileInfo(NAME, "unused", "0" * 64)
    with pytest.raises(DataError, match="corrupt"):
        fetch_file(info, "fake", progress=False, base_url=base)
    assert list(isolated.rglob("*")) in ([], [isolated / "fake"])


def test_404(server):
    _, base, _ = server
    info = FileInfo("missing.gz", "unused", GOOD_SHA)
    with pytest.raises(DataError, match=r"missing\.gz.*/fake/missing\.gz.*404"):
        fetch_file(info, "fake", progress=False, base_url=base)


def test_offline_error_says_where_to_put_files(tmp_path, isolated):
    """Offline: a short message (missing files, where anynet looked, the failed URL, what to
    set), one connection attempt, and no cache folder created."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as err:
        fetch("mnist", data_dir=tmp_path / "mine", progress=False, base_url=f"http://127.0.0.1:{port}")
    msg = str(err.value)
    for fn in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert fn in msg
    assert "4 of 4 files missing" in msg and str(tmp_path / "mine") in msg and "DIR/mnist/" in msg
    assert f"http://127.0.0.1:{port}/mnist/train-images-idx3-ubyte.gz failed: cannot connect" in msg
    assert "--data-dir DIR" in msg and "ANYNET_DATA_DIR" in msg and "ANYNET_CACHE_DIR" in msg
    assert len(msg.splitlines()) <= 3 and "HTTPConnection" not in msg and "Max retries" not in msg
    assert not isolated.exists()
    with pytest.raises(DataError, match=r"gzip\.zip"):
        fetch("emnist-letters", download=False)


def test_404_leaves_no_folder_and_stops_after_one_request(server, isolated):
    _, base, hits = server
    with pytest.raises(DataError, match=r"/mnist/train-images-idx3-ubyte\.gz failed: HTTP 404") as err:
        fetch("mnist", progress=False, base_url=base)
    assert len(hits) == 1 and len(str(err.value).splitlines()) <= 3
    assert not isolated.exists()


def test_download_progress_is_one_line_in_logs(server, isolated, capsys):
    """Not on a terminal, a download prints one line when done: no bar redrawn with \\r."""
    root, base, _ = server
    _serve(root)
    info = FileInfo(NAME, "unused", GOOD_SHA, len(GOOD))
    fetch_file(info, "fake", progress=True, base_url=base)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"downloaded {NAME} (") and "\r" not in captured.err
    assert "Downloading data from" not in captured.err + captured.out


def test_url_override_forms(monkeypatch):
    info = FileInfo("a.gz", "https://host/a.gz")
    assert file_url(info, "mnist") == "https://host/a.gz"
    assert file_url(info, "mnist", "http://m/x/") == "http://m/x/mnist/a.gz"
    monkeypatch.setenv("ANYNET_DATA_URL", "http://m/{file}?f={folder}")
    assert file_url(info, "mnist") == "http://m/a.gz?f=mnist"


def test_data_dir_layouts_and_order(tmp_path, monkeypatch):
    info = FileInfo(NAME, "unused", GOOD_SHA)
    arg, env = tmp_path / "arg", tmp_path / "env"
    (env / "fake").mkdir(parents=True)
    (env / "fake" / NAME).write_bytes(GOOD)  # <dir>/<folder>/<file>
    monkeypatch.setenv("ANYNET_DATA_DIR", str(env))
    assert fetch_file(info, "fake", download=False) == env / "fake" / NAME
    arg.mkdir()
    (arg / NAME).write_bytes(GOOD)  # flat <dir>/<file>, and the argument wins over the env
    assert fetch_file(info, "fake", data_dir=arg, download=False) == arg / NAME
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / NAME[:-3]).write_bytes(gzip.decompress(GOOD))  # an uncompressed copy is accepted
    assert fetch_file(info, "fake", data_dir=raw, download=False) == raw / NAME[:-3]


def test_data_dir_checksum_mismatch_warns(tmp_path):
    other = gzip.compress(gzip.decompress(GOOD), mtime=1)  # same content, other gzip header
    assert hashlib.sha256(other).hexdigest() != GOOD_SHA
    (tmp_path / NAME).write_bytes(other)
    info = FileInfo(NAME, "unused", GOOD_SHA)
    with pytest.warns(ChecksumWarning, match="fails its checksum"):
        assert fetch_file(info, "fake", data_dir=tmp_path, download=False) == tmp_path / NAME


def test_load_mnist_over_http(server, isolated):
    """End to end: the real MNIST files served locally, downloaded, verified, loaded, cached."""
    if not REAL_DATA or not (Path(REAL_DATA) / "mnist").is_dir():
        pytest.skip("ANYNET_DATA_DIR is not set; no real MNIST files to serve")
    root, base, hits = server
    shutil.copytree(Path(REAL_DATA) / "mnist", root / "mnist")  # into tmp_path, not the repo
    ds = load("mnist", progress=False, base_url=base)
    assert len(hits) == 4 and len(ds.train) == 60000 and len(ds.test) == 10000
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == sorted(
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
    )
    again = load("mnist", progress=False, base_url=base)
    assert len(hits) == 4
    np.testing.assert_array_equal(again.test.labels, ds.test.labels)
