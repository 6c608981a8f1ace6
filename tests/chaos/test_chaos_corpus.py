"""The ingest fuzz seed corpus (``tests/chaos/corpus/``) replayed against a real `tagless serve`:
hostile requests kept as files (numbers such as ``1e400`` and ``NaN``, duplicate keys, bad,
truncated and bomb gzip, deep nesting, broken encodings). Every answer is a 200 or a JSON
4xx/503 (never another 5xx), a refused request stores nothing, each file's answer is the one
``expected.json`` records, and the server serves and delivers afterwards.

Add a file to grow the corpus: ``<track|batch>--<what>.json`` is sent as JSON, ``.gz`` with
``Content-Encoding: gzip``; ``make golden`` (``TAGLESS_REGEN_GOLDEN=1``) records its answer
in ``expected.json``, to review.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import aiohttp
import pytest

from tests.chaos.rig import report, rig
from tests.process.harness import ACKED, AUTHORIZATION, Sent, read_only

CORPUS = Path(__file__).with_name("corpus")
EXPECTED_FILE = CORPUS / "expected.json"
REGENERATE = os.environ.get("TAGLESS_REGEN_GOLDEN") == "1"


def stored(path: Path) -> set[str]:
    with contextlib.closing(read_only(path)) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM events")}


@pytest.mark.slow
async def test_the_seed_corpus_answers_match_their_golden_file_and_store_nothing_half(
    tmp_path: Path,
) -> None:
    """Each corpus file gets its recorded answer: 200 with its events stored, or a JSON error
    (4xx, or a documented 503) with nothing stored; afterwards the server still acknowledges
    and delivers a plain event."""
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".gz") and "--" in p.name)
    expected = json.loads(EXPECTED_FILE.read_text())
    if not REGENERATE:
        assert set(expected) == {p.name for p in files}, "expected.json and the corpus differ"
    answers: dict[str, list[object]] = {}
    async with rig(tmp_path, ["hook"]) as r:
        await r.server.start()
        async with aiohttp.ClientSession() as session:
            for path in files:
                endpoint = path.name.split("--", 1)[0]
                headers = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
                if path.suffix == ".gz":
                    headers["Content-Encoding"] = "gzip"
                before = stored(r.config.db_path)
                async with session.post(
                    f"{r.config.ingest_url}/v1/{endpoint}", data=path.read_bytes(), headers=headers
                ) as answer:
                    body = await answer.read()
                    kind = answer.content_type
                added = stored(r.config.db_path) - before
                if added:  # what it stored is what the history says was sent
                    r.history.submitted(Sent(tuple(added), 0.0, 0.0, ACKED, answer.status))
                code = json.loads(body)["error"]["code"] if answer.status != 200 else None
                answers[path.name] = [answer.status, code]
                assert answer.status < 500 or answer.status == 503, (path.name, answer.status)
                assert kind == "application/json", (path.name, kind)
                if answer.status != 200:
                    assert not added, f"{path.name}: refused with {answer.status} but stored"
                else:
                    assert added, f"{path.name}: answered 200 but nothing stored"
        assert await r.post([f"{r.run}-after"]) == "acked", "the server stopped acknowledging"
        drained, code, verdict = await r.finish(60.0)
        assert drained, "the plain event after the corpus was not delivered"
        report(
            "ingest seed corpus",
            "\n".join(
                f"  {name}: {status} {error or ''}" for name, (status, error) in answers.items()
            ),
            verdict.summary(),
        )
        assert code == 0, r.server.tail()
        verdict.assert_ok()
        if REGENERATE:
            lines = [f" {json.dumps(name)}: {json.dumps(a)}" for name, a in answers.items()]
            EXPECTED_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
        assert answers == expected or REGENERATE, "answers differ from expected.json (make golden)"
