"""A miniature Hugging Face Hub on 127.0.0.1, for tests that must not reach the real one.

It speaks the part of the Hub HTTP API that `huggingface_hub` (1.3x to 2.x) uses to create a model repo, commit to it
and download from it, so `push_to_hub`, `from_pretrained` and `pipeline` run unmodified against it:

    GET  /api/whoami-v2                                    who the token belongs to
    POST /api/repos/create                                 new repo (409, with its `url`, if it exists)
    GET  /api/models/{repo}[/revision/{rev}]               id, sha, siblings
    POST /api/models/{repo}/branch/{branch}                new branch
    GET  /api/models/{repo}/tree/{rev}[/{path}]            file listing (snapshot downloads)
    POST /api/models/{repo}/preupload/{rev}                "regular" or "lfs" for each file to commit
    POST /{repo}.git/info/lfs/objects/batch                Git LFS batch API: where to PUT, then verify
    POST /api/models/{repo}/commit/{rev}                   ndjson commit: header, file, lfsFile, deletedFile lines
    POST /api/validate-yaml                                model card metadata check
    HEAD/GET /{repo}/resolve/{rev}/{path}                  a file, with X-Repo-Commit, quoted ETag, Range support

Storage is in memory: repos hold commits (each a full `path -> Blob` map) and branches pointing at them. A file goes
through LFS when it looks binary (a NUL byte in the 512-byte sample the client sends) or has `lfs_threshold` bytes
or more; LFS objects are PUT to this server itself (the Hub hands out storage URLs instead). Errors carry the Hub's
typed `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).

For tests: `requests` logs every call and `unhandled` every call it could not serve; `fail()` injects an error
status or a download cut halfway, a wrong token gets the Hub's 401, and `stopped()` takes the server down a while.
"""

import base64
import hashlib
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        """What the Hub reports as the file's ETag: the LFS sha256, or the git blob id of a regular file."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]


@dataclass
class Repo:
    id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch name or a full commit id -> its commit."""
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)

    def history(self, branch: str = "main") -> list[Commit]:
        """Commits reachable from `branch`, newest first."""
        out, oid = [], self.branches.get(branch)
        while oid is not None:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    status: int
    times: int
    truncate: bool


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class HubServer:
    """The Hub, in memory, on `self.url` once started. Use as a context manager or call `start()` / `stop()`."""

    def __init__(self, user: str = "alice", token: str = "hf_test_token", lfs_threshold: int = 10 * 2**20):
        self.user, self.token, self.lfs_threshold = user, token, lfs_threshold
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, once PUT
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.unhandled: list[str] = []  # requests with no route, or that broke the hub
        self.upload_modes: dict[tuple[str, str], str] = {}  # (repo, path) -> how its last commit carried it
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @contextmanager
    def stopped(self):
        """The server is down (connections refused) inside the block, and back on the same port after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- test hooks ----------------------------------------------------------------------------------------------------

    def fail(self, method: str, path_regex: str, status: int = 500, times: int = 1, truncate: bool = False) -> None:
        """The next `times` requests `method path` (path matched by `re.search`) fail: with `status`, or, with
        `truncate`, with a 200 whose body stops halfway (the connection drops)."""
        with self._lock:
            self._faults.append(Fault(method, re.compile(path_regex), status, times, truncate))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.pattern.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def client_env(self, hf_home) -> dict[str, str]:
        """Environment for a client process of this hub, with its own cache in `hf_home`. huggingface_hub reads it
        once, when imported, so a client is a fresh process started with it. Xet is off: files the hub sends to
        LFS then go through the LFS batch API, which this hub implements, rather than Xet storage, which it lacks."""
        return {
            "HF_ENDPOINT": self.url, "HF_TOKEN": self.token, "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": f"{hf_home}/hub", "HF_MODULES_CACHE": f"{hf_home}/modules", "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of `repo_id` at `revision`, as bytes."""
        commit = self.repos[repo_id].resolve(revision)
        return {path: blob.data for path, blob in commit.files.items()}

    # -- state changes -----------------------------------------------------------------------------------------------

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self._lock:
            repo = self.repos[repo_id] = Repo(repo_id, private)
            self._commit(repo, "main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES, lfs=False)}, [])
            return repo

    def _commit(self, repo: Repo, branch: str, message: str, added: dict[str, Blob], deleted: list[str]) -> Commit:
        parent = repo.branches.get(branch)
        files = dict(repo.commits[parent].files) if parent else {}
        for path in deleted:
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        files.update(added)
        seed = f"{repo.id}\0{parent}\0{message}\0{time.time_ns()}\0" + "\0".join(
            f"{p}={b.etag}" for p, b in sorted(files.items())
        )
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, message, files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


def _chunked_body(rfile) -> bytes:
    body = b""
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return body
        body += rfile.read(size)
        rfile.readline()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's client expects
    hub: HubServer

    def log_message(self, *args):  # quiet: the hub keeps its own log
        pass

    # Every method goes through `_handle`, which reads the whole body first (the client reuses connections).
    def do_GET(self):
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _handle(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.body = _chunked_body(self.rfile)
        else:
            self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.parts = [unquote(p) for p in url.path.strip("/").split("/")]
        status = 500
        try:
            fault = self.hub._take_fault(self.command, url.path)
            if fault is not None and not fault.truncate:
                raise HubError(fault.status, f"injected failure of {self.command} {url.path}")
            self._check_token()
            status = self._route(fault)
        except HubError as err:
            status = err.status
            self._send_error(err)
        except Exception as err:  # a bug of this hub, or a request it misread: answer, and let the tests see it
            self.hub.unhandled.append(f"{self.command} {self.path}: {err!r}")
            self._send_error(HubError(500, f"test hub error: {err!r}"))
        finally:
            with self.hub._lock:
                self.hub.requests.append((self.command, url.path, status))

    def _check_token(self):
        auth = self.headers.get("Authorization")
        self.authenticated = auth == f"Bearer {self.hub.token}"
        if auth is not None and not self.authenticated:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _need_write(self):
        if not self.authenticated:
            raise HubError(401, "You must be authenticated to write to a repo")

    # -- responses -----------------------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _json(self, payload, status: int = 200, headers: dict | None = None, content_type="application/json"):
        return self._send(status, json.dumps(payload).encode(), headers, content_type)

    def _send_error(self, err: HubError):
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        self._json({"error": err.message}, err.status, headers)

    # -- routing -------------------------------------------------------------------------------------------------------

    def _route(self, fault: Fault | None) -> int:
        p, method = self.parts, self.command
        if p[:2] == ["api", "whoami-v2"] and method == "GET":
            if not self.authenticated:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": self.hub.user, "orgs": [],
                               "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if p[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo()
        if p[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._json({"errors": [], "warnings": []})
        if len(p) >= 4 and p[:2] == ["api", "models"]:
            return self._model_api(f"{p[2]}/{p[3]}", p[4:])
        if len(p) == 6 and p[1].endswith(".git") and p[2:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            return self._lfs_batch(f"{p[0]}/{p[1].removesuffix('.git')}")
        if len(p) in (2, 3) and p[0] == "_lfs":
            return self._lfs_object(p[1], verify=len(p) == 3)
        if len(p) >= 5 and p[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"{p[0]}/{p[1]}", p[3], "/".join(p[4:]), fault)
        self.hub.unhandled.append(f"{method} {self.path}")
        raise HubError(404, f"no route for {method} {self.path}")

    def _repo(self, repo_id: str) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self.authenticated):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _create_repo(self) -> int:
        self._need_write()
        payload = json.loads(self.body)
        if payload.get("type", "model") != "model":
            raise HubError(400, "this test hub only hosts model repos")
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        with self.hub._lock:
            if repo_id in self.hub.repos:
                return self._json({"error": "You already created this model repo", "url": url}, 409)
            private = payload.get("private") or payload.get("visibility") == "private"
            self.hub.create_repo(repo_id, private=bool(private))
        return self._json({"url": url, "name": repo_id})

    def _model_api(self, repo_id: str, rest: list[str]) -> int:
        method = self.command
        if rest[:1] == ["branch"] and len(rest) == 2 and method == "POST":
            return self._create_branch(repo_id, rest[1])
        if not rest and method == "GET":
            return self._info(repo_id, "main")
        if rest[:1] == ["revision"] and len(rest) == 2 and method == "GET":
            return self._info(repo_id, rest[1])
        if rest[:1] == ["tree"] and len(rest) >= 2 and method == "GET":
            return self._tree(repo_id, rest[1], "/".join(rest[2:]))
        if rest[:1] == ["preupload"] and len(rest) == 2 and method == "POST":
            return self._preupload(repo_id, rest[1])
        if rest[:1] == ["commit"] and len(rest) == 2 and method == "POST":
            return self._commit(repo_id, rest[1])
        self.hub.unhandled.append(f"{method} {self.path}")
        raise HubError(404, f"no route for {method} {self.path}")

    def _info(self, repo_id: str, revision: str) -> int:
        with self.hub._lock:
            repo = self._repo(repo_id)
            commit = self._commit_at(repo, revision)
            siblings = [{"rfilename": path} for path in sorted(commit.files)]
        return self._json({"id": repo_id, "modelId": repo_id, "sha": commit.oid, "private": repo.private,
                           "siblings": siblings, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z"})

    def _create_branch(self, repo_id: str, branch: str) -> int:
        self._need_write()
        payload = json.loads(self.body or b"{}")
        with self.hub._lock:
            repo = self._repo(repo_id)
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: {branch}")
            repo.branches[branch] = self._commit_at(repo, payload.get("startingPoint") or "main").oid
        return self._json({})

    def _tree(self, repo_id: str, revision: str, prefix: str) -> int:
        recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
        with self.hub._lock:
            commit = self._commit_at(self._repo(repo_id), revision)
        base = f"{prefix}/" if prefix else ""
        entries, folders = [], set()
        for path, blob in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base):]
            if "/" in rest and not recursive:
                folders.add(base + rest.split("/")[0])
                continue
            if recursive:
                parts = path.split("/")
                folders.update("/".join(parts[:i]) for i in range(len(base.split("/")), len(parts)))
            entry = {"type": "file", "oid": blob.git_oid, "size": len(blob.data), "path": path}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders) if f]
        if prefix and not entries:
            raise HubError(404, f"{prefix} does not exist in {revision}", "EntryNotFound", commit.oid)
        return self._json(entries)

    def _preupload(self, repo_id: str, revision: str) -> int:
        self._need_write()
        with self.hub._lock:
            commit = self._commit_at(self._repo(repo_id), revision)
        files = []
        for f in json.loads(self.body)["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["size"] >= self.hub.lfs_threshold or b"\0" in sample
            existing = commit.files.get(f["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return self._json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_id: str) -> int:
        self._need_write()
        with self.hub._lock:
            self._repo(repo_id)
        payload = json.loads(self.body)
        if payload.get("operation") != "upload":
            raise HubError(400, "this test hub only takes LFS uploads")
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs_objects:
                href = f"{self.hub.url}/_lfs/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
            objects.append(entry)
        return self._json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_object(self, oid: str, verify: bool) -> int:
        if verify and self.command == "POST":
            if oid not in self.hub.lfs_objects:
                raise HubError(404, f"LFS object {oid} was never uploaded")
            return self._json({})
        if self.command != "PUT" or verify:
            raise HubError(405, f"{self.command} is not allowed on LFS objects")
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"LFS object content does not hash to {oid}")
        with self.hub._lock:
            self.hub.lfs_objects[oid] = self.body
        return self._send(200)

    def _commit(self, repo_id: str, revision: str) -> int:
        self._need_write()
        if self.query.get("create_pr"):
            raise HubError(400, "this test hub does not do pull requests")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with its header line")
        header, added, deleted, modes = lines[0]["value"], {}, [], {}
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                added[value["path"]] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                data = self.hub.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubError(422, f"LFS file {value['path']} ({value['oid']}) was not uploaded first")
                added[value["path"]] = Blob(data, lfs=True)
            elif key == "deletedFile":
                deleted.append(value["path"])
            else:
                raise HubError(400, f"this test hub cannot commit {key!r} operations")
            modes[value["path"]] = {"file": "regular", "lfsFile": "lfs"}.get(key, "deleted")
        with self.hub._lock:
            repo = self._repo(repo_id)
            head = self._commit_at(repo, revision)
            if revision not in repo.branches:
                raise HubError(400, f"can only commit to a branch, not {revision}")
            if header.get("parentCommit") not in (None, head.oid):
                raise HubError(412, f"{revision} is at {head.oid}, not {header['parentCommit']}")
            commit = self.hub._commit(repo, revision, header["summary"], added, deleted)
            self.hub.upload_modes.update({(repo_id, path): mode for path, mode in modes.items()})
        return self._json({"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                           "commitUrl": f"{self.hub.url}/{repo_id}/commit/{commit.oid}"})

    def _resolve(self, repo_id: str, revision: str, path: str, fault: Fault | None) -> int:
        with self.hub._lock:
            commit = self._commit_at(self._repo(repo_id), revision)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.oid)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.etag}"', "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        data, status = blob.data, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and self.command == "GET":
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            data, status = data[start:], 206
        if fault is not None and fault.truncate and self.command == "GET":
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return status
        return self._send(status, data, headers, content_type="application/octet-stream")


__all__ = ["Blob", "Commit", "HubServer", "Repo"]
