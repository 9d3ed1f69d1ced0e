"""Every length, count and size a user can pass, bounded, with the reason for each bound; and the checks that
refuse a value outside them before any work starts (README.md, "### Limits", is the same table).

    seconds = check_number("seconds", seconds, 0, MAX_GENERATE_SECONDS, above_low=True)
    # AudiolmError: seconds: must be at most 600 (got 1e+09)

NaN and infinities are refused everywhere (`nan > 0` is False but so is `nan <= 0`: a one-sided test lets it through).
"""

from __future__ import annotations

import math
from pathlib import Path

from audiolm.errors import AudiolmError, FileError

# Generation: continue, generate, resynth, eval.
MAX_GENERATE_SECONDS = 600.0  # new audio per call (and a resynth input): about 10 minutes of CPU time for 10 minutes of audio
MIN_PROMPT_SECONDS = 0.5  # a voice to keep needs some syllables: 25 codec frames; shorter prompts continue nothing
MAX_PROMPT_SECONDS = 30.0  # a prompt is tokenized whole; the LMs look back one 4 s window, so more only costs time
MAX_TEMPERATURE = 10.0  # at 10 the draw is already close to uniform over the vocabulary
MAX_TOP_K = 65536  # token ids are uint16, so no vocabulary is larger (a loaded bundle's own vocabulary is checked too)
MAX_GUIDANCE = 10.0  # classifier-free guidance weight of the parallel stage: past a few the draws leave speech
MAX_PARALLEL_ITERATIONS = 256  # forward passes per level of the parallel stage: SoundStorm uses 16 for level 1, more buys nothing
MAX_THREADS = 256  # CPU threads for one generation: more than any machine here has cores
MAX_SEED = 2**32 - 1  # random, numpy and torch all take a 32-bit seed

# Audio files a command reads whole (a prompt is cut to --prompt-seconds instead: only that part is read).
MAX_AUDIO_FILE_SECONDS = 3600.0  # audio info / convert / plot decode the whole file to float32: 1.4 GB per hour of 48 kHz stereo
MAX_ENCODE_SECONDS = 1800.0  # codec encode / decode and semantic tokenize run in one pass: about 1 GB of memory per 15 minutes
MAX_AUDIO_FILE_BYTES = 2 * 1024**3  # on disk, for any audio file read whole: catches many-channel, high-rate files
MAX_CODES_FILE_BYTES = 64 * 1024**2  # a .codes file: 30 minutes of 12 levels at 75 Hz is 3 MB
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192000  # rates audio convert / plot resample to
MIN_LUFS, MAX_LUFS = -70.0, 0.0  # --normalize: below -70 LUFS is silence (EBU R128 gating), above 0 clips
MAX_PLOT_FILES = 16  # one 2.2-inch panel per file in one figure
MAX_DETECT_SECONDS = 600.0  # detect scores the first 10 minutes of a file: the longest generation whole; the mark is everywhere

# Corpora, tokens and training.
MAX_WORKERS = 256  # processes, each with its own models and audio in memory
MAX_HOURS = 10_000.0  # synthesized corpora: far more than any model here trains on; stops a typo (1e6) from starting a months-long job
MAX_SPEAKERS = 10_000  # more than the synthesis engines can make (about 2,400), so no buildable corpus is refused
MIN_CLIP_SECONDS, MAX_CLIP_SECONDS = 4.0, 300.0  # piano clips, rendered whole in memory
MAX_HELD_OUT_FRACTION = 0.4  # valid and test each, of speakers: at least 20% always stays for training
MAX_SHARD_SIZE = 100_000  # utterances per token shard, built in memory before it is written
MAX_AUDIO_SHARD_CUTS = 100_000  # cuts per audio shard (data shar): one worker's unit of work, redone whole after a kill
MAX_CUT_SECONDS = 3600.0  # data shar's pieces, each read into memory as float32 when written: 230 MB per hour
MAX_CODEBOOKS = 64  # codec levels (a loaded codec's own count is checked too)
MAX_BITRATE_KBPS = 1000.0  # above every codec's full bitrate; a higher value would only mean "all levels"
MAX_KMEANS_K = 4096  # clusters: the paper uses 1024, and fitting costs K x frames x dim per iteration
MAX_KMEANS_FRAMES = 1_000_000  # frames held in memory as float32 while fitting: 3 GB at 768 dims
MAX_KMEANS_HOURS = 100.0  # audio held in memory as int16 while fitting: 115 MB per hour
MAX_ENCODER_LAYER = 256  # no encoder has more layers (a loaded encoder's own count is checked too)
MAX_INTERLEAVE = 8  # each shifted copy runs the encoder once more
MAX_TRAIN_STEPS = 10_000_000  # --stop-after; the largest preset trains 1,000,000 steps
MAX_WORLD_SIZE = 65_536  # --world-size of a dry run: GPUs, far more than any run here uses
MAX_EVAL_ITEMS = 1000  # eval --prompts, --resynth, --pairs: each item is a generation or a synthesis
MAX_BUNDLE_PROMPTS = 100  # prompt files cut into a bundle

# audiolm serve: the default of each setting (a flag of the command), then the most a flag may set it to.
SERVE_UPLOAD_MB = 16.0  # one request's body: a minute of 48 kHz stereo 16-bit WAV is 11 MB; larger is 413 before it is read
MAX_SERVE_UPLOAD_MB = MAX_AUDIO_FILE_BYTES / 1024**2  # the CLI's own bound on a file read whole
SERVE_SECONDS = 20.0  # new audio per request (and a resynth input): ~15 s of one core on the bundled models; longer: the CLI
SERVE_PROMPT_SECONDS = 10.0  # --prompt-seconds a request may ask for; the LMs look back 4 s, so more only costs time
SERVE_INPUT_SECONDS = 120.0  # codec encode / decode inputs, read whole in one pass: about 130 MB of activations
SERVE_WORKERS = 1  # generations at once: each is CPU-bound, so more than cores / threads only slows every one of them
MAX_SERVE_WORKERS = 64
SERVE_QUEUE = 4  # requests waiting for a worker; more are refused at once with 503 and Retry-After, never buffered
MAX_SERVE_QUEUE = 1000
SERVE_TIMEOUT = 120.0  # seconds from acceptance (queue wait included) to the answer; a generation past it is stopped
MAX_SERVE_TIMEOUT = 3600.0
SERVE_REQUESTS = 32  # requests in flight at once (uploads being read included); more get 503: bounds the memory uploads take
MAX_SERVE_REQUESTS = 10000
SERVE_RESULTS = 16  # finished page jobs kept for their page to fetch (about 1.5 MB each at 20 s), the oldest dropped first
MAX_SERVE_RESULTS = 1000
SERVE_RESULT_SECONDS = 600.0  # how long a finished page job is kept


def _show(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _span(low: float, high: float, above_low: bool) -> str:
    return f"above {_show(low)} and at most {_show(high)}" if above_low else f"from {_show(low)} to {_show(high)}"


def check_number(name: str, value: float, low: float, high: float, *, above_low: bool = False) -> float:
    """`value` if it is a finite number in [low, high] (or (low, high] with `above_low`), else `AudiolmError`
    naming `name` and the bound, e.g. `--seconds: must be at most 600 (got 1e+09)`."""
    try:
        finite = math.isfinite(value)
    except TypeError:
        raise AudiolmError(f"{name}: must be a number {_span(low, high, above_low)} (got {value!r})") from None
    if not finite:
        raise AudiolmError(f"{name}: must be a finite number {_span(low, high, above_low)} (got {_show(float(value))})")
    if value > high:
        raise AudiolmError(f"{name}: must be at most {_show(high)} (got {_show(value)})")
    if above_low and not value > low:
        raise AudiolmError(f"{name}: must be above {_show(low)} (got {_show(value)})")
    if value < low:
        raise AudiolmError(f"{name}: must be at least {_show(low)} (got {_show(value)})")
    return value


def check_count(name: str, value: int, low: int, high: int) -> int:
    """`value` if it is a whole number in [low, high], else `AudiolmError` naming `name` and the bound."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            raise AudiolmError(f"{name}: must be a whole number {_span(low, high, False)} (got {_show(value)})")
        check_number(name, value, low, high)  # NaN, infinities and non-numbers: the same words as for floats
        value = int(value)
    return int(check_number(name, value, low, high))


def check_file_bytes(path: str | Path, max_bytes: int) -> None:
    """Refuse a file larger than `max_bytes` on disk before it is opened (a missing file is left to its reader)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return
    if size > max_bytes:
        raise FileError(path, f"file is {size / 1024**2:,.0f} MB, more than the {max_bytes / 1024**2:,.0f} MB limit for files read whole")
