"""The face and eye detection function: a small HTTP server that the e-computer
``lambdaroute computer --executor face --function URL`` calls, one request per lambda call.

It answers as serverlessonedge's ``edgecomputerfacerec`` does (docs/real-computers.md):

- ``POST /function/facerec0`` and ``POST /function/eyerec0`` (OpenFaaS-style paths), the encoded
  image (JPEG or PNG) as the body: 200 and ``{"objects":[{"h":93.0,"w":93.0,"x":177.0,"y":67.0}]}``
  (pixels, floats, keys in the original's order);
- an image OpenCV cannot decode: 400 and ``Could not read image (size N bytes)``;
- another lambda: 404 and ``Unsupported lambda: NAME (supported lambdas: eyerec0,facerec0)``;
- ``GET /healthz``: 200 ``ok`` once the cascades are loaded (the testbed waits for it).

Detection is the original's: grey, histogram equalised, ``detectMultiScale`` with scale 1.1,
2 neighbours, ``CASCADE_SCALE_IMAGE``, objects of at least 30x30 pixels, with OpenCV's Haar
cascades ``haarcascade_frontalface_default.xml`` (faces) and
``haarcascade_eye_tree_eyeglasses.xml`` (eyes). The cascades come from a package, never from the
network: ``cv2.data.haarcascades`` of the ``opencv-python-headless`` 4.x wheel (what ``make``
installs), else Debian's ``opencv-data`` (``/usr/share/opencv4/haarcascades``), else ``--cascades``.

Run: ``python -m lambdaroute.facerec --listen 127.0.0.1:8090``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODELS", "Detector", "FaceServer", "cascade_dir", "format_objects", "main"]

log = logging.getLogger("lambdaroute.facerec")

#: The original's ``--models`` default: lambda -> cascade file.
DEFAULT_MODELS = {
    "facerec0": "haarcascade_frontalface_default.xml",
    "eyerec0": "haarcascade_eye_tree_eyeglasses.xml",
}
DEBIAN_CASCADES = Path("/usr/share/opencv4/haarcascades")
#: The largest image accepted, bytes (the computer's default request cap).
MAX_BODY = 16 << 20


def cascade_dir(explicit: str | None = None) -> Path:
    """Where the cascades are: ``explicit``, else the OpenCV wheel's, else Debian's; raises
    naming every place tried and the fix."""
    tried = []
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    else:
        try:
            import cv2

            data = getattr(cv2, "data", None)
            if data is not None and getattr(data, "haarcascades", None):
                candidates.append(Path(data.haarcascades))
        except ImportError:
            pass
        candidates.append(DEBIAN_CASCADES)
    for c in candidates:
        tried.append(str(c))
        if all((c / f).is_file() for f in DEFAULT_MODELS.values()):
            return c
    raise FileNotFoundError(
        "no Haar cascades in " + ", ".join(tried) + ": install opencv-python-headless<5 (make venv does) "
        "or Debian's opencv-data, or give --cascades DIR")


def format_objects(rects: Any) -> str:
    """``{"objects":[{"h":..,"w":..,"x":..,"y":..}]}`` with floats, as the original writes it."""
    objects = [{"h": float(h), "w": float(w), "x": float(x), "y": float(y)} for (x, y, w, h) in rects]
    return json.dumps({"objects": objects}, separators=(",", ":"))


class Detector:
    """The cascades of each lambda, one set per thread (a CascadeClassifier is not shared
    between threads)."""

    def __init__(self, models: dict[str, Path]) -> None:
        import cv2

        self._cv2 = cv2
        self.models = models
        self._local = threading.local()
        for lam, path in models.items():
            if cv2.CascadeClassifier(str(path)).empty():
                raise ValueError(f"{lam}: {path} is not a cascade OpenCV can load")

    def _cascade(self, lam: str) -> Any:
        cascades = getattr(self._local, "cascades", None)
        if cascades is None:
            cascades = self._local.cascades = {}
        if lam not in cascades:
            cascades[lam] = self._cv2.CascadeClassifier(str(self.models[lam]))
        return cascades[lam]

    def detect(self, lam: str, data: bytes) -> str | None:
        """The objects of ``lam`` in the encoded image ``data``; None if it cannot be decoded."""
        import numpy as np

        cv2 = self._cv2
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            return None
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        rects = self._cascade(lam).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=2,
                                                    flags=cv2.CASCADE_SCALE_IMAGE, minSize=(30, 30))
        return format_objects(rects)


class _Handler(BaseHTTPRequestHandler):
    server: FaceServer
    protocol_version = "HTTP/1.1"  # keep-alive: the computer reuses its connections
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms per call, measured).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _answer(self, code: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/healthz":
            self._answer(200, "ok")
        else:
            self._answer(404, f"no such path {self.path}: POST /function/<lambda>, GET /healthz")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._answer(413, f"Could not read image (size {length} bytes): larger than {MAX_BODY} bytes")
            return
        data = self.rfile.read(length) if length else b""
        prefix = "/function/"
        lam = self.path[len(prefix):].split("?")[0] if self.path.startswith(prefix) else ""
        detector = self.server.detector
        if lam not in detector.models:
            supported = ",".join(sorted(detector.models))
            self._answer(404, f"Unsupported lambda: {lam} (supported lambdas: {supported})")
            return
        t = time.perf_counter()
        out = detector.detect(lam, data)
        if out is None:
            self._answer(400, f"Could not read image (size {len(data)} bytes)")
            return
        log.info("%s: %s in %.1f ms", lam, out, (time.perf_counter() - t) * 1000)
        self._answer(200, out, "application/json")


class FaceServer(ThreadingHTTPServer):
    """The function's HTTP server; ``server_address`` tells where it listens (port 0 picks one)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], detector: Detector) -> None:
        self.detector = detector
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8090; got {text!r}")
    return host or "127.0.0.1", int(port)


def _models(text: str) -> dict[str, str]:
    out = {}
    for pair in text.split(","):
        lam, sep, file = pair.partition("=")
        if not sep or not lam or not file:
            raise argparse.ArgumentTypeError(f"expected LAMBDA=FILE[,LAMBDA=FILE]; got {pair!r}")
        out[lam] = file
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lambdaroute.facerec", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 8090), metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:8090; port 0 picks a free one)")
    p.add_argument("--cascades", metavar="DIR", help="folder of the cascade files (default: the OpenCV "
                   "wheel's cv2.data.haarcascades, else /usr/share/opencv4/haarcascades)")
    p.add_argument("--models", type=_models, default=None, metavar="LAMBDA=FILE[,...]",
                   help="cascade file of each lambda (default: the original's "
                        "facerec0=haarcascade_frontalface_default.xml,eyerec0=haarcascade_eye_tree_eyeglasses.xml)")
    p.add_argument("--opencv-threads", type=int, default=None, metavar="N",
                   help="threads OpenCV may use per detection (default: OpenCV's)")
    p.add_argument("--port-file", metavar="FILE", help="write the port listened on to FILE once ready")
    p.add_argument("--log", default=os.environ.get("LAMBDAROUTE_LOG", "info"), help="log level (default info)")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        folder = cascade_dir(args.cascades)
        models = {lam: folder / f for lam, f in (args.models or DEFAULT_MODELS).items()}
        for lam, path in models.items():
            if not path.is_file():
                raise FileNotFoundError(f"{lam}: no cascade file {path}")
        detector = Detector(models)
    except ImportError as e:
        print(f"facerec: cannot import OpenCV ({e}): install opencv-python-headless<5 (make venv does)",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"facerec: {e}", file=sys.stderr)
        return 2
    if args.opencv_threads is not None:
        detector._cv2.setNumThreads(args.opencv_threads)
    try:
        server = FaceServer(args.listen, detector)
    except OSError as e:
        print(f"facerec: cannot listen on {args.listen[0]}:{args.listen[1]}: {e}", file=sys.stderr)
        return 2
    if args.port_file:
        Path(args.port_file).write_text(str(server.server_address[1]), encoding="utf-8")
    log.info("face function on %s (cascades %s; lambdas %s)", server.url, folder, ",".join(sorted(models)))

    import signal

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log.info("face function stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
