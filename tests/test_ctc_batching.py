"""The CTC backend in batches: windows of concurrent requests (and of one long request) run
as one pass, padded with an attention mask where the model takes one (w2v-BERT), stacked only
when of one length where it does not (wav2vec2's group norm would hear the padding), and each
request gets the words it gets alone.

One difference is measured and bounded: w2v-BERT's adapter convolution reads one frame past
the end of a window, and in a padded batch that frame is padding the mask does not cover (its
residual branch is not masked). So the last output frame (40 ms) of a window shorter than the
longest in its batch may differ, and with it the last word of a request; every other frame is
the same within float rounding. Trained models hear the VAD's 200 ms of silence there and say
blank, which the difference does not change.
"""

import numpy as np
import pytest

from services.core.audio import AudioLimits, AudioSpec, decode
from services.core.backend import SAMPLE_RATE, DecodeOptions
from services.core.batching import Batcher, BatchLimits
from services.core.cancellation import Cancellation
from services.core.fanout import Fanout
from tests.ctc_support import TINY_CASES, model_dir, settings
from tests.support import clip

# Padding changes the shapes torch multiplies, so the last digits of a log-probability may
# move; they are rounded away before a word's confidence reaches a response.
CONFIDENCE_TOLERANCE = 1e-4
CUTS_S = ((0.0, 3.1), (1.0, 6.2), (2.0, 8.2), (0.5, 6.7), (0.0, 20.0))


class Sizes:
    def __init__(self):
        self.sizes: list[int] = []

    def batch_ran(self, kind, size, waits_s):
        self.sizes.append(size)


@pytest.fixture(scope="module")
def speech(audio_dir) -> np.ndarray:
    samples = decode(clip("en/long_concat_en.flac"), AudioSpec(), AudioLimits(10**9, 10**4))
    return samples.samples


def backend(case, tiny_models, batcher):
    made = case.module.Backend(
        settings(case, model_dir(case, tiny_models), chunk_seconds=4.0, stride_seconds=1.0)
    )
    made.attach(batcher)
    made.load()
    return made


@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_requests_in_one_batch_get_the_words_they_get_alone(case, tiny_models, speech):
    cuts = [speech[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in CUTS_S]
    cuts.append(cuts[1].copy())  # two of one length: they batch even without padding
    alone = backend(case, tiny_models, Batcher(BatchLimits(1, 0.0, 1)))
    expected = [alone.transcribe(cut, DecodeOptions(), Cancellation()) for cut in cuts]
    sizes = Sizes()
    batcher = Batcher(BatchLimits(8, 0.3, 1), sizes)
    batched = backend(case, tiny_models, batcher)
    cancellation = Cancellation()

    def one(cut):
        with batcher.producing(object()):
            return batched.transcribe(cut, DecodeOptions(), cancellation)

    answers = Fanout(len(cuts), 0).map(one, cuts, len(cuts), cancellation)
    last_may_differ = batched._model.takes_padding
    for want, got in zip(expected, answers, strict=True):
        mine = [w for segment in got.segments for w in segment.words]
        theirs = [w for segment in want.segments for w in segment.words]
        if last_may_differ:
            mine, theirs = mine[:-1], theirs[: len(mine) - 1]
        else:
            assert [s.text for s in got.segments] == [s.text for s in want.segments]
        assert [(w.text, w.start, w.end) for w in mine] == [
            (w.text, w.start, w.end) for w in theirs
        ]
        for a, b in zip(mine, theirs, strict=True):
            assert a.confidence == pytest.approx(b.confidence, abs=CONFIDENCE_TOLERANCE)
    assert max(sizes.sizes) >= 2
    if not batched._model.takes_padding:
        assert max(sizes.sizes) < len(cuts)  # only windows of one length shared a pass


@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_a_padded_batch_gives_each_window_its_own_frames(case, tiny_models, speech):
    made = backend(case, tiny_models, Batcher(BatchLimits(1, 0.0, 1)))
    reader = made._reader
    windows = [reader(speech[: int(s * SAMPLE_RATE)]) for s in (1.3, 2.9, 4.0)]
    alone = [made._model.log_probs(w) for w in windows]
    together = made._model.log_probs_batch(windows)
    for one, batched in zip(alone, together, strict=True):
        assert batched.shape == one.shape
        # All but the last frame; the longest window has no padding, so all of it.
        kept = len(one) if len(one) == len(together[-1]) else len(one) - 1
        # Relative too: the tiny models' scaled logits reach -1e4, where float32 keeps 3 decimals.
        assert np.allclose(batched[:kept], one[:kept], rtol=1e-6, atol=CONFIDENCE_TOLERANCE)
