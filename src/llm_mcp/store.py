"""SQLite in $LLM_MCP_HOME/llm-mcp.db: the adapters the server knows, training jobs, a request
log (sizes and times only), and — only when the operator turns it on — recorded conversations
with the feedback clients give on them.

The schema is a list of named migrations, applied in order and recorded in `_migrations`; a
migration is never edited once shipped, only new ones appended.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

MIGRATIONS: list[tuple[str, str]] = [
    ("001_adapters", """
        CREATE TABLE adapters (
            name TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            base TEXT,            -- the base model spec from the card
            card TEXT,            -- adapter_card.json as written by training
            created TEXT NOT NULL
        )"""),
    ("002_jobs", """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,       -- the adapter it makes
            status TEXT NOT NULL,     -- queued, running, completed, failed, cancelled, interrupted
            progress TEXT,            -- JSON: step, total_steps, loss, eta_s
            config TEXT NOT NULL,     -- JSON: dataset, output, overrides, resume
            pid INTEGER,
            log_path TEXT,
            error TEXT,
            created TEXT NOT NULL,
            started TEXT,
            ended TEXT
        )"""),
    ("003_requests", """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            api TEXT NOT NULL,        -- mcp or openai
            model TEXT NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            seconds REAL
        )"""),
    ("004_conversations", """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,      -- the request id the reply carried (chatcmpl-…)
            ts TEXT NOT NULL,
            api TEXT NOT NULL,        -- mcp or openai
            base TEXT NOT NULL,       -- the base model's name
            adapter TEXT,             -- null: the base model answered
            messages TEXT NOT NULL,   -- JSON: the request's messages as the client sent them
            tools TEXT NOT NULL,      -- JSON: the request's tools, normalised (name, description, parameters)
            content TEXT NOT NULL,    -- the reply's text
            tool_calls TEXT NOT NULL, -- JSON: the reply's calls as {name, arguments}
            correct INTEGER,          -- feedback: 1 right, 0 wrong, null none yet
            corrected_calls TEXT,     -- JSON: the calls it should have made (with correct = 0)
            note TEXT,
            feedback_ts TEXT
        )"""),
    ("005_conversations_ts", "CREATE INDEX conversations_ts ON conversations (ts)"),
    ("006_vllm_registrations", """
        CREATE TABLE vllm_registrations (
            server TEXT NOT NULL,     -- the vLLM server's URL and the base it serves (url#base)
            name TEXT NOT NULL,       -- the adapter's llm-mcp name (vLLM's lora_name is NAME@<weights digest>)
            path TEXT NOT NULL,       -- the folder vLLM was given
            registered TEXT NOT NULL,
            PRIMARY KEY (server, name)
        )"""),
]

TERMINAL = ("completed", "failed", "cancelled", "interrupted")


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC; times in this form compare as strings


def now() -> str:
    return ago(0)


def ago(days: float) -> str:
    """The time `days` before now, in the store's form."""
    return time.strftime(TIME_FORMAT, time.gmtime(time.time() - days * 86400))


class Store:
    """One connection shared by the server's threads (serialised by a lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self.migrate()

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; → their names."""
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
            done = {r[0] for r in self._db.execute("SELECT name FROM _migrations")}
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                self._db.execute("BEGIN")
                self._db.execute(sql)
                self._db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))
                self._db.execute("COMMIT")
                applied.append(name)
            return applied

    def _rows(self, sql: str, args: tuple = ()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args)]

    def _run(self, sql: str, args: tuple = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # ---- adapters
    def put_adapter(self, name: str, path: Path, card: dict) -> None:
        self._run("INSERT OR REPLACE INTO adapters VALUES (?, ?, ?, ?, ?)",
                  (name, str(path), card.get("base_model", {}).get("spec"), json.dumps(card), now()))

    def adapters(self) -> list[dict]:
        return [_adapter(r) for r in self._rows("SELECT * FROM adapters ORDER BY name")]

    def adapter(self, name: str) -> dict | None:
        rows = self._rows("SELECT * FROM adapters WHERE name = ?", (name,))
        return _adapter(rows[0]) if rows else None

    def delete_adapter(self, name: str) -> None:
        self._run("DELETE FROM adapters WHERE name = ?", (name,))

    # ---- adapters registered with a vLLM server (serve --engine vllm): replayed when it restarts
    def put_registration(self, server: str, name: str, path: Path) -> None:
        self._run("INSERT OR REPLACE INTO vllm_registrations VALUES (?, ?, ?, ?)", (server, name, str(path), now()))

    def registrations(self, server: str) -> list[dict]:
        return self._rows("SELECT name, path, registered FROM vllm_registrations WHERE server = ? ORDER BY name",
                          (server,))

    def delete_registration(self, server: str, name: str) -> None:
        self._run("DELETE FROM vllm_registrations WHERE server = ? AND name = ?", (server, name))

    # ---- jobs
    def add_job(self, job_id: str, name: str, config: dict, log_path: Path) -> dict:
        self._run("INSERT INTO jobs (id, name, status, config, log_path, created) VALUES (?, ?, 'queued', ?, ?, ?)",
                  (job_id, name, json.dumps(config), str(log_path), now()))
        return self.job(job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        for key in ("progress", "config"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def job(self, job_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, status: str | None = None) -> list[dict]:
        if status:
            return [_job(r) for r in self._rows("SELECT * FROM jobs WHERE status = ? ORDER BY rowid", (status,))]
        return [_job(r) for r in self._rows("SELECT * FROM jobs ORDER BY rowid")]

    # ---- request log
    def log_request(self, api: str, model: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        self._run("INSERT INTO requests (ts, api, model, prompt_tokens, completion_tokens, seconds) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (now(), api, model, prompt_tokens, completion_tokens, seconds))

    def requests(self, limit: int = 100) -> list[dict]:
        return self._rows("SELECT * FROM requests ORDER BY id DESC LIMIT ?", (limit,))

    # ---- recorded conversations (serve --record-conversations)
    def add_conversation(self, row: dict, keep_days: float, keep_rows: int = 100_000) -> None:
        """Store one request and its reply (`row`: the table's columns up to tool_calls; JSON
        columns as Python values), then keep only the newest `keep_rows` of the last `keep_days`.
        JSON is stored ASCII-escaped: a client's lone surrogate cannot fail the insert."""
        json_cols = ("messages", "tools", "tool_calls")
        values = {k: json.dumps(v) if k in json_cols else v for k, v in row.items()}
        values.setdefault("ts", now())
        cols = ", ".join(values)
        self._run(f"INSERT INTO conversations ({cols}) VALUES ({', '.join('?' * len(values))})",
                  tuple(values.values()))
        self.delete_conversations(before=ago(keep_days))
        self._run("DELETE FROM conversations WHERE rowid <= (SELECT MAX(rowid) FROM conversations) - ?",
                  (keep_rows,))

    def set_feedback(self, request_id: str, correct: bool, corrected_calls: list[dict] | None,
                     note: str | None) -> None:
        self._run("UPDATE conversations SET correct = ?, corrected_calls = ?, note = ?, feedback_ts = ? "
                  "WHERE id = ?", (int(correct), None if corrected_calls is None else json.dumps(
                      corrected_calls), note, now(), request_id))

    def conversation(self, request_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM conversations WHERE id = ?", (request_id,))
        return _conversation(rows[0]) if rows else None

    def conversations(self, since: str | None = None, adapter: str | None = None) -> list[dict]:
        """Oldest first; `adapter` "base" selects the base model's replies."""
        sql, args = "SELECT * FROM conversations WHERE ts >= ?", [since or ""]
        if adapter == "base":
            sql += " AND adapter IS NULL"
        elif adapter:
            sql, args = sql + " AND adapter = ?", [*args, adapter]
        return [_conversation(r) for r in self._rows(sql + " ORDER BY ts, rowid", tuple(args))]

    def delete_conversations(self, before: str | None = None) -> int:
        """Delete those recorded before `before` (an ISO time; None: all) → how many."""
        where, args = (" WHERE ts < ?", (before,)) if before else ("", ())
        with self._lock:
            return self._db.execute("DELETE FROM conversations" + where, args).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _adapter(row: dict) -> dict:
    return {**row, "card": json.loads(row["card"]) if row.get("card") else {}}


def _conversation(row: dict) -> dict:
    out = {**row, **{k: json.loads(row[k]) for k in ("messages", "tools", "tool_calls")}}
    out["corrected_calls"] = json.loads(row["corrected_calls"]) if row["corrected_calls"] else None
    out["correct"] = None if row["correct"] is None else bool(row["correct"])
    return out


def _job(row: dict) -> dict:
    return {**row, "progress": json.loads(row["progress"]) if row.get("progress") else None,
            "config": json.loads(row["config"])}


def open_store(home: Path | None = None) -> Store:
    from llm_mcp.config import home_dir

    return Store((home or home_dir()) / "llm-mcp.db")
