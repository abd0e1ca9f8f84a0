"""The face and eye detection function (lambdaroute.facerec) and the face computer in front of it.

The test image is scikit-image's astronaut photograph (``skimage.data.astronaut()``, NASA, public
domain), 512x512, shipped as ``data/images/astronaut.jpg`` (JPEG quality 100, as the original's
checks used): one face at x 177, y 67, 93x93 pixels, and two eyes in that face's crop, with the
original's detection parameters. The end-to-end tests run the release binary (computer, router,
table tool, client) on 127.0.0.1 with free ports; nothing is mocked.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import cv2  # `make venv` installs opencv-python-headless<5: never skipped
import numpy as np

from lambdaroute.facerec import DEFAULT_MODELS, Detector, FaceServer, cascade_dir, format_objects
from lambdaroute.testbed.experiment import find_binary

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "data" / "images" / "astronaut.jpg"
FACE = {"h": 93.0, "w": 93.0, "x": 177.0, "y": 67.0}


@pytest.fixture(scope="module")
def detector() -> Detector:
    folder = cascade_dir()
    return Detector({lam: folder / f for lam, f in DEFAULT_MODELS.items()})


@pytest.fixture(scope="module")
def server(detector: Detector) -> Iterator[FaceServer]:
    srv = FaceServer(("127.0.0.1", 0), detector)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def crop(image: bytes, obj: dict[str, float], ext: str = ".png") -> bytes:
    m = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = (int(obj[k]) for k in ("x", "y", "w", "h"))
    ok, buf = cv2.imencode(ext, m[y:y + h, x:x + w])
    assert ok
    return buf.tobytes()


def test_one_face_in_the_astronaut_and_two_eyes_inside_its_crop(detector: Detector) -> None:
    image = ASTRONAUT.read_bytes()
    faces = json.loads(detector.detect("facerec0", image) or "")["objects"]
    assert faces == [FACE]
    eyes = json.loads(detector.detect("eyerec0", crop(image, FACE)) or "")["objects"]
    assert len(eyes) == 2
    for e in eyes:  # inside the face crop
        assert e["x"] >= 0 and e["y"] >= 0 and e["x"] + e["w"] <= FACE["w"] and e["y"] + e["h"] <= FACE["h"], e
    # The left and right eye, side by side in the upper half of the face.
    left, right = sorted(eyes, key=lambda e: e["x"])
    assert left["x"] + left["w"] <= right["x"] + 5 and max(left["y"], right["y"]) < FACE["h"] / 2


def test_the_answer_is_written_as_the_original_writes_it() -> None:
    assert format_objects([(177, 67, 93, 93)]) == '{"objects":[{"h":93.0,"w":93.0,"x":177.0,"y":67.0}]}'
    assert format_objects([]) == '{"objects":[]}'


def test_the_function_answers_png_too_refuses_garbage_and_unknown_lambdas_and_keeps_serving(server: FaceServer) -> None:
    image = ASTRONAUT.read_bytes()
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR))[1].tobytes()
    assert post(f"{server.url}/function/facerec0", png) == (200, json.dumps({"objects": [FACE]}, separators=(",", ":")))
    assert post(f"{server.url}/function/facerec0", b"garbage") == (400, "Could not read image (size 7 bytes)")
    assert post(f"{server.url}/function/eyerec0", b"") == (400, "Could not read image (size 0 bytes)")
    assert post(f"{server.url}/function/nope", image) == (
        404, "Unsupported lambda: nope (supported lambdas: eyerec0,facerec0)")
    code, body = post(f"{server.url}/function/facerec0", image)
    assert code == 200 and json.loads(body)["objects"] == [FACE]
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert resp.read() == b"ok"


def test_no_cascades_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="install opencv-python-headless<5"):
        cascade_dir(str(tmp_path))


# ----- the face computer (lambdaroute computer --executor face), a router, the client -----

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert proc.poll() is None, f"exited {proc.returncode}: {proc.stdout.read().decode() if proc.stdout else ''}"
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([find_binary(), "--log", "warn", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def client(tmp_path: Path, name: str, *args: str) -> list[dict[str, str]]:
    out = tmp_path / f"{name}.csv"
    done = subprocess.run([find_binary(), "--log", "warn", "client", "--duration", "0", "--output", str(out), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    with out.open() as f:
        return list(csv.DictReader(f))


def test_a_router_in_front_of_the_face_computer(server: FaceServer, processes: list[subprocess.Popen[bytes]],
                                                tmp_path: Path) -> None:
    cport, uport, rport, tport = free_port(), free_port(), free_port(), free_port()
    computer = start(processes, "computer", "--executor", "face", "--function", server.url,
                     "--listen", f"127.0.0.1:{cport}", "--util-listen", f"127.0.0.1:{uport}")
    router = start(processes, "router", "--listen", f"127.0.0.1:{rport}", "--table-listen", f"127.0.0.1:{tport}")
    wait_port(cport, computer)
    wait_port(rport, router)
    wait_port(tport, router)
    for lam in ("facerec0", "eyerec0", "clambda0"):
        subprocess.run([find_binary(), "table", "--router", f"127.0.0.1:{tport}", "change", "--lambda", lam,
                        "--destination", f"127.0.0.1:{cport}", "--final"], check=True, capture_output=True)
    png = tmp_path / "astronaut.png"
    cv2.imwrite(str(png), cv2.imread(str(ASTRONAUT)))

    # Two images in turn, each followed by one eyerec0 call per face: 3 images, 6 calls.
    rows = client(tmp_path, "faces", "--router", f"127.0.0.1:{rport}", "--lambda", "facerec0",
                  "--image", f"{ASTRONAUT},{png}", "--eyes", "--max-calls", "3")
    assert [(r["lambda"], r["status"], r["objects"]) for r in rows] == [
        ("facerec0", "OK", "1"), ("eyerec0", "OK", "2")] * 3
    assert {r["responder"] for r in rows} == {f"127.0.0.1:{cport}"}
    assert {r["hops"] for r in rows} == {"2"}  # client -> router -> computer

    # Straight to the computer: the original's errors, and the computer keeps serving.
    rows = client(tmp_path, "nope", "--router", f"127.0.0.1:{cport}", "--lambda", "nope", "--max-calls", "1")
    assert rows[0]["status"] == "Unsupported lambda: nope (supported lambdas: eyerec0,facerec0)"
    rows = client(tmp_path, "text", "--router", f"127.0.0.1:{cport}", "--lambda", "facerec0", "--max-calls", "1",
                  "--sizes", "7")
    assert rows[0]["status"] == "Could not read image (size 0 bytes)"  # the image travels in datain only
    rows = client(tmp_path, "dummy", "--router", f"127.0.0.1:{rport}", "--lambda", "clambda0", "--max-calls", "2")
    assert [r["status"] for r in rows] == ["OK", "OK"]
    rows = client(tmp_path, "again", "--router", f"127.0.0.1:{rport}", "--lambda", "facerec0",
                  "--image", str(ASTRONAUT), "--max-calls", "1")
    assert [(r["status"], r["objects"]) for r in rows] == [("OK", "1")]
    assert computer.poll() is None and router.poll() is None
