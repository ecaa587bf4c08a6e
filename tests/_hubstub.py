"""A minimal local stand-in for the Hugging Face Hub HTTP API (tests only).

Serves, on 127.0.0.1 only, just what ``huggingface_hub`` needs for ``create_repo`` + ``upload_folder`` /
``push_to_hub`` (regular, non-LFS uploads) and for ``hf_hub_download`` / ``from_pretrained``: repo creation, YAML
validation, preupload, NDJSON commits, model info, tree listing and ``resolve`` (HEAD/GET). Files live in memory.
The server is bounded: requests over ``max_body`` bytes are refused and it shuts itself down after ``lifetime``
seconds even if the test forgets to stop it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # Python >= 3.11
    from typing import Self


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    def __init__(self, lifetime: float = 300.0, max_body: int = 64 * 1024 * 1024, namespace: str = "tester"):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.max_body = max_body
        self.namespace = namespace
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                hub._route(self, "GET")

            def do_HEAD(self):
                hub._route(self, "HEAD")

            def do_POST(self):
                hub._route(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------------------------
    def files(self, repo_id: str) -> dict[str, bytes]:
        return dict(self.repos[repo_id]["files"])

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None,
              head: bool = False, ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _json(self, h, status: int, obj, headers: dict | None = None, head: bool = False) -> None:
        self._send(h, status, json.dumps(obj).encode(), headers, head)

    def _not_found(self, h, code: str, msg: str, head: bool = False, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": msg}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._json(h, 404, {"error": msg}, headers, head)

    def _body(self, h) -> bytes | None:
        n = int(h.headers.get("Content-Length") or 0)
        if n > self.max_body:
            self._json(h, 413, {"error": "payload too large for the local hub stand-in"})
            return None
        return h.rfile.read(n) if n else b""

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = unquote(urlsplit(h.path).path)
        with self.lock:
            self.requests.append((method, path))
        parts = [p for p in path.split("/") if p]
        head = method == "HEAD"
        try:
            if method == "POST":
                body = self._body(h)
                if body is None:
                    return
                if parts == ["api", "repos", "create"]:
                    return self._create(h, json.loads(body or b"{}"))
                if parts == ["api", "validate-yaml"]:
                    return self._json(h, 200, {"errors": [], "warnings": []})
                if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "preupload":
                    return self._preupload(h, "/".join(parts[2:4]), json.loads(body))
                if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "commit":
                    return self._commit(h, "/".join(parts[2:4]), body)
                return self._json(h, 404, {"error": f"unsupported POST {path}"})
            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                repo_id = "/".join(parts[2:4])
                if repo_id not in self.repos:
                    return self._not_found(h, "RepoNotFound", f"Repository {repo_id} not found", head)
                if len(parts) >= 6 and parts[4] == "tree":
                    return self._tree(h, repo_id, "/".join(parts[6:]), head)
                return self._info(h, repo_id, head)
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(h, "/".join(parts[:2]), "/".join(parts[4:]), head)
            return self._json(h, 404, {"error": f"unsupported {method} {path}"}, head=head)
        except Exception as exc:  # noqa: BLE001 - report to the client instead of hanging
            return self._json(h, 500, {"error": repr(exc)}, head=head)

    def _create(self, h, payload: dict) -> None:
        repo_id = f"{payload.get('organization') or self.namespace}/{payload['name']}"
        with self.lock:
            self.repos.setdefault(repo_id, {"files": {}, "sha": "0" * 40})
        self._json(h, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _preupload(self, h, repo_id: str, payload: dict) -> None:
        if repo_id not in self.repos:
            return self._not_found(h, "RepoNotFound", f"Repository {repo_id} not found")
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                 for f in payload.get("files", [])]
        self._json(h, 200, {"files": files, "commitOid": self.repos[repo_id]["sha"]})

    def _commit(self, h, repo_id: str, body: bytes) -> None:
        if repo_id not in self.repos:
            return self._not_found(h, "RepoNotFound", f"Repository {repo_id} not found")
        with self.lock:
            repo = self.repos[repo_id]
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "file":
                    data = value["content"].encode()
                    repo["files"][value["path"]] = base64.b64decode(data) if value.get("encoding") == "base64" else data
                elif key == "deletedFile":
                    repo["files"].pop(value["path"], None)
                elif key == "lfsFile":
                    raise ValueError("the local hub stand-in does not accept LFS uploads")
            digest = hashlib.sha1()
            for p in sorted(repo["files"]):
                digest.update(p.encode() + b"\0" + repo["files"][p])
            repo["sha"] = digest.hexdigest()
        self._json(h, 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{repo['sha']}", "commitOid": repo["sha"],
                            "pullRequestUrl": None, "success": True})

    def _info(self, h, repo_id: str, head: bool) -> None:
        repo = self.repos[repo_id]
        self._json(h, 200, {
            "id": repo_id, "modelId": repo_id, "sha": repo["sha"], "private": False, "disabled": False,
            "gated": False, "tags": [], "downloads": 0, "likes": 0, "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(repo["files"].items())],
        }, head=head)

    def _tree(self, h, repo_id: str, prefix: str, head: bool) -> None:
        files = self.repos[repo_id]["files"]
        prefix = prefix.strip("/")
        under = [p for p in files if not prefix or p.startswith(prefix + "/")]
        if prefix and not under:
            return self._not_found(h, "EntryNotFound", f"{prefix} does not exist", head, self.repos[repo_id]["sha"])
        entries, dirs = [], set()
        for p in sorted(under):
            rest = p[len(prefix) + 1 :] if prefix else p
            if "/" in rest:
                d = (prefix + "/" if prefix else "") + rest.split("/")[0]
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": "0" * 40, "size": 0})
            else:
                entries.append({"type": "file", "path": p, "oid": git_blob_sha(files[p]), "size": len(files[p])})
        self._json(h, 200, entries, head=head)

    def _resolve(self, h, repo_id: str, filename: str, head: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._not_found(h, "RepoNotFound", f"Repository {repo_id} not found", head)
        data = repo["files"].get(filename)
        if data is None:
            return self._not_found(h, "EntryNotFound", f"{filename} does not exist", head, repo["sha"])
        headers = {"X-Repo-Commit": repo["sha"], "ETag": f'"{git_blob_sha(data)}"', "Accept-Ranges": "none"}
        self._send(h, 200, data, headers, head, ctype="application/octet-stream")
