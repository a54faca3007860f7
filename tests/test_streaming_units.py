"""The stream's endpointing and decode scheduling, on probabilities and decodes made here."""

import asyncio

import numpy as np
import pytest

from services.core.backend import DecodeOptions, Segment, Transcript
from services.core.endpointer import WINDOW, Endpointer, EndpointSettings
from services.core.errors import Overloaded
from services.core.streaming import Interim, SpeechBegan, StreamSession, StreamSettings


def test_sure_speech_ends_before_its_decaying_trail():
    endpointer = Endpointer(EndpointSettings(threshold=0.5, end_silence_ms=300))
    endpointer.update([0.9] * 5)  # speech starts, sure
    endpointer.update([0.4] * 3)  # the trail: still speech, no longer sure
    assert endpointer.in_speech
    assert endpointer.last_voiced == 5 * WINDOW
    assert endpointer.quiet == 3 * WINDOW and endpointer.pause == 0
    endpointer.update([0.1])
    assert endpointer.quiet == 4 * WINDOW and endpointer.pause == WINDOW


class ScriptedVad:
    """Speech probabilities as the test sets them, one per whole window pushed."""

    def __init__(self):
        self.probability = 0.9

    def push(self, samples: np.ndarray) -> list[float]:
        return [self.probability] * (len(samples) // WINDOW)


def test_a_decode_result_is_taken_when_it_is_done_not_at_the_next_message():
    async def scenario() -> list:
        events: list = []

        async def decode(audio, options) -> Transcript:
            await asyncio.sleep(0.05)
            return Transcript((Segment("hello there", 0.0, len(audio) / 16000, 0.9),), "en")

        settings = StreamSettings(EndpointSettings(), interim_interval_s=0.3)
        options = DecodeOptions(language="en")
        session = StreamSession(decode, options, settings, events.append, True, False)
        session._vad = ScriptedVad()
        for _ in range(3):  # 0.96 s of speech: the utterance starts, an interim decode too
            await session.push(np.zeros(10 * WINDOW, dtype=np.float32))
        await asyncio.sleep(0.3)  # no audio meanwhile
        seen = list(events)
        await session.cancel()
        return seen

    events = asyncio.run(scenario())
    assert isinstance(events[0], SpeechBegan)
    assert any(isinstance(e, Interim) and e.text == "hello there" for e in events), events


def test_a_decode_failing_between_messages_fails_the_next_message():
    async def scenario():
        calls = 0

        async def decode(audio, options) -> Transcript:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            if calls > 1:
                raise Overloaded("every inference slot is taken", 1.0)
            return Transcript((Segment("hello", 0.0, 0.3, 0.9),), "en")

        settings = StreamSettings(EndpointSettings(), interim_interval_s=0.3, max_utterance_s=1.0)
        options = DecodeOptions(language="en")
        session = StreamSession(decode, options, settings, lambda event: None, True, False)
        session._vad = ScriptedVad()
        for _ in range(4):  # 1.28 s of speech while the first decode runs
            await session.push(np.zeros(10 * WINDOW, dtype=np.float32))
        # The first decode ends with no message coming: the utterance is over its limit, so
        # its forced final is decoded then, and that decode fails.
        await asyncio.sleep(0.3)
        try:
            with pytest.raises(Overloaded):
                await session.push(np.zeros(WINDOW, dtype=np.float32))
        finally:
            await session.cancel()
        return calls

    assert asyncio.run(scenario()) == 2
