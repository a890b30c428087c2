"""The flow bench_callbacks.py runs the app with: it answers with the same document as the
bare and hand-written routes, so the comparison measures the framework, not a handler."""

from __future__ import annotations

from bxml import Response, SpeakSentence
from callbacks import CallbackEvent, Flow

bench = Flow("bench", default=True)


@bench.on("answer")
def answer(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("Hello from the benchmark"))
