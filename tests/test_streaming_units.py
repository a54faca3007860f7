"""The stream's endpointing and decode scheduling, on probabilities and decodes made here."""

import asyncio

import numpy as np
import pytest

from services.core.backend import DecodeOptions, Segment, Transcript
from services.core.endpointer import WINDOW, Endpointer, EndpointSettings
from services.core.errors import Overloaded
from services.core.streaming import Final, Interim, SpeechBegan, StreamSession, StreamSettings


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


def test_weak_speech_longer_than_the_trail_is_decoded_for_the_final():
    async def scenario() -> tuple[list, list[int]]:
        events: list = []
        heard: list[int] = []

        async def decode(audio, options) -> Transcript:
            heard.append(len(audio))
            await asyncio.sleep(0.01)
            return Transcript((Segment(str(len(audio)), 0.0, 1.0, 0.9),), "en")

        settings = StreamSettings(EndpointSettings())
        options = DecodeOptions(language="en")
        session = StreamSession(decode, options, settings, events.append, False, False)
        vad = session._vad = ScriptedVad()
        chunk = np.zeros(10 * WINDOW, dtype=np.float32)  # 320 ms
        await session.push(chunk)  # sure speech: the utterance starts
        for probability in (0.4, 0.4, 0.4, 0.0, 0.0):  # 960 ms of weak speech, then silence
            vad.probability = probability
            await session.push(chunk)
            await asyncio.sleep(0.05)
        await session.cancel()
        return events, heard

    events, heard = asyncio.run(scenario())
    final = next(e for e in events if isinstance(e, Final))
    # The first early final heard 640 ms; the weak speech after it went on far past the
    # trail, so the final is a decode of all 1280 ms.
    assert heard[0] == 2 * 10 * WINDOW
    assert int(final.segments[0].text) == 4 * 10 * WINDOW
