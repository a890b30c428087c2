"""Flows the kit's own tests drive: a voicemail (Record, transcription), a slow menu (a long
Gather timeout and several prompts), a reminder placed by the app (machine detection), a
screened transfer (the agent's leg gathers a key) and two callers bridged."""

from __future__ import annotations

from flask import current_app

from bxml import Bridge, Gather, Hangup, Pause, PlayAudio, Record, Response, SpeakSentence
from callbacks import CallbackEvent, Flow

VOICEMAIL = "+12025550160"
SLOW_MENU = "+12025550161"
SCREENED = "+12025550162"
SCREENER = "+12025550163"
MEET = "+12025550164"

voicemail = Flow("kit-voicemail", numbers=[VOICEMAIL])
slow_menu = Flow("kit-slow-menu", numbers=[SLOW_MENU])
reminder = Flow("kit-reminder")
screened = Flow("kit-screened", numbers=[SCREENED])
meet = Flow("kit-meet", numbers=[MEET])


@voicemail.on("initiate")
def leave_a_message(event: CallbackEvent) -> Response:
    return Response(
        voicemail.tag({"step": "recording"}),
        SpeakSentence("Leave a message after the tone."),
        Record(
            record_complete_url=voicemail.url("recordComplete"),
            transcribe=True,
            transcription_available_url=voicemail.url("transcriptionAvailable"),
            max_duration=60,
            **voicemail.credentials(),
        ),
    )


@voicemail.on("recordComplete")
def thanks(event: CallbackEvent) -> Response:
    return Response(voicemail.tag({"step": "done"}), SpeakSentence("Thanks, goodbye."), Hangup())


@slow_menu.on("initiate")
def slow_greeting(event: CallbackEvent) -> Response:
    return Response(
        Gather(
            SpeakSentence("Welcome."),
            PlayAudio("https://example.com/hold-music.mp3"),
            SpeakSentence("Press 1 to continue."),
            gather_url=slow_menu.url("gather"),
            max_digits=1,
            first_digit_timeout=30,
            **slow_menu.credentials(),
        ),
    )


@slow_menu.on("gather")
def slow_choice(event: CallbackEvent) -> Response:
    if event.digits == "1":
        return Response(SpeakSentence("You pressed one. Goodbye."), Hangup())
    return Response(SpeakSentence("Nothing pressed. Goodbye."), Hangup())


@reminder.on("answer")
def remind(event: CallbackEvent) -> Response:
    detected = event.machine_detection_result or {}
    if detected.get("value") == "answering-machine":
        return Response(SpeakSentence("Sorry we missed you."), Hangup())
    return Response(
        reminder.tag({**event.state, "reminded": True}),
        SpeakSentence(f"Reminder: your appointment is at {event.state.get('at', 'noon')}."),
        Pause(duration=float(event.state.get("hold", 0.1))),
    )


@reminder.on("machineDetectionComplete")
def detected(event: CallbackEvent) -> Response:
    return Response()


@screened.on("initiate")
def screen(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("Please hold."), screened.transfer(SCREENER))


@screened.on("transferAnswer")
def ask_the_agent(event: CallbackEvent) -> Response:
    return Response(
        Gather(
            SpeakSentence("Press 1 to accept the call."),
            gather_url=screened.url("gather"),
            max_digits=1,
            first_digit_timeout=10,
            **screened.credentials(),
        ),
    )


@screened.on("gather")
def agent_chose(event: CallbackEvent) -> Response:
    if event.digits == "1":
        return Response(SpeakSentence("Accepted."))
    return Response(SpeakSentence("Declined."), Hangup())


@meet.on("initiate")
def meet_up(event: CallbackEvent) -> Response:
    """The first caller waits; the next one is bridged with them (this app's waiting list)."""
    waiting: list[str] = current_app.extensions.setdefault("kit-meet-waiting", [])
    if not waiting:
        waiting.append(str(event.call_id))
        return Response(SpeakSentence("Please wait for the other party."), Pause(duration=60))
    return Response(SpeakSentence("Connecting you."), Bridge(waiting.pop()))
