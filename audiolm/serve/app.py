"""The HTTP API and the page: `create_app(models, settings)` -> a FastAPI app; uvicorn serves it (cli/serve.py).

    bundles = load_bundles(["speech"])                 # once, before the server starts; shared by every request
    app = create_app(bundles, ServeSettings(workers=1, queue=4))

Every endpoint reads its multipart form through forms.py, reads uploads with the CLI's readers (so a bad file gets the
CLI's sentence, naming the file as the client named it), and runs the model work in the scheduler's bounded pool
(jobs.py). Errors are JSON `{"error": "<one line>"}`: 413 for a body over --max-upload-mb, 422 for a bad field or
file, 503 with Retry-After when the server is full or a request runs past --timeout, 404 for unknown paths and jobs.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from audiolm import __version__, limits
from audiolm.errors import AudiolmError, FileError
from audiolm.serve import forms
from audiolm.serve.jobs import STEPS, Busy, Job, Scheduler, watch_models
from audiolm.serve.settings import ServeSettings

log = logging.getLogger("audiolm.serve")
STATIC = Path(__file__).resolve().parent / "static"
WAV, PNG, CODES = "audio/wav", "image/png", "application/octet-stream"
RESULT_FILES = {"result.wav": WAV, "prompt.wav": WAV, "result.png": PNG, "prompt.png": PNG}


@dataclass
class Bundle:
    """A loaded model bundle, the prompts it ships (`prompts/prompts.json`) and its generated-speech detector."""

    name: str
    audiolm: object  # audiolm.generation.pipeline.AudioLM
    folder: Path | None = None
    prompts: list[dict] = field(default_factory=list)
    detector: object = None  # audiolm.detector.model.Detector; None when the bundle has no detector/

    def prompt_path(self, file: str) -> Path:
        for prompt in self.prompts:
            if prompt["file"] == file:
                return self.folder / "prompts" / file
        names = ", ".join(p["file"] for p in self.prompts) or "none"
        raise AudiolmError(f"prompt: {self.name} has no bundled prompt {file!r} (it has {names})")


def load_bundles(names: list[str]) -> dict[str, Bundle]:
    """Load each bundle (a folder, or `speech` / `piano`) once, named by its folder's name, with its detector."""
    from audiolm.detector.model import load_bundled_detector
    from audiolm.generation.pipeline import AudioLM, bundle_folder

    bundles: dict[str, Bundle] = {}
    for name in names:
        folder = bundle_folder(name)
        key = folder.name or str(folder)
        if key in bundles:
            raise AudiolmError(f"--models: two bundles named {key!r}")
        bundles[key] = Bundle(key, AudioLM.load(folder), folder, read_prompts(folder), load_bundled_detector(folder))
    return bundles


def read_prompts(folder: Path) -> list[dict]:
    """The prompts a bundle ships: `prompts/prompts.json` entries whose file exists (none when there is no list)."""
    listing = folder / "prompts" / "prompts.json"
    try:
        entries = json.loads(listing.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [{k: entry[k] for k in ("file", "speaker", "text", "seconds") if k in entry} for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("file"), str) and "/" not in entry["file"]
            and (folder / "prompts" / entry["file"]).is_file()]


# --- errors and limits ------------------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


def error_response(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware bounding what a request may take before an endpoint sees it: at most `max_requests` in flight
    (503 with Retry-After beyond; /health is never refused) and bodies of at most `max_bytes` (413: from Content-Length
    before anything is read, or as soon as a chunked body passes it)."""

    def __init__(self, app, max_bytes: int, max_requests: int) -> None:
        self.app, self.max_bytes, self.max_requests = app, max_bytes, max_requests
        self.in_flight = 0

    def too_large(self) -> str:
        return f"request body is larger than the server's {self.max_bytes / 1024**2:.4g} MiB limit (--max-upload-mb)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:
            message = f"server busy: {self.in_flight} requests in flight (at most {self.max_requests}, --max-requests); retry later"
            await error_response(503, message, retry_after=1)(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await error_response(413, self.too_large())(scope, receive, send)
            return
        received = 0

        async def bounded_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.too_large())
            return message

        self.in_flight += 1
        try:
            await self.app(scope, bounded_receive, send)
        finally:
            self.in_flight -= 1


# --- reading inputs -----------------------------------------------------------------------------------------------


def client_name(filename: str) -> str:
    """An upload's name as the client gave it, fit for a one-line message: its last path part, printable, at most 80."""
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(c for c in name if c.isprintable())[:80]
    return name or "upload"


def save_upload(upload: forms.Uploaded, folder: Path) -> Path:
    suffix = "".join(c for c in Path(client_name(upload.filename)).suffix if c.isalnum() or c == ".")[:10]
    path = folder / f"upload{suffix}"
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path


def read_named(read: Callable[[Path], object], path: Path, name: str):
    """`read(path)`, with a `FileError` about `path` (a temporary copy) renamed to the file the client sent."""
    try:
        return read(path)
    except FileError as error:
        if error.path == path:
            raise FileError(name, error.problem) from None
        raise


def wav_bytes(wav: torch.Tensor, sample_rate: int, path: Path) -> bytes:
    """`wav [C, L]` as 16-bit PCM WAV bytes, written as the CLI writes it."""
    from audiolm.audio.io import save_audio

    save_audio(path, wav.cpu(), sample_rate)
    return path.read_bytes()


def png_bytes(name: str, wav: torch.Tensor, sample_rate: int, path: Path) -> bytes:
    from audiolm.audio.plot import plot_spectrograms

    plot_spectrograms({name: wav.cpu()}, sample_rate, path)
    return path.read_bytes()


@dataclass
class Output:
    files: dict[str, bytes]  # "result.wav", "prompt.wav", "result.png", "prompt.png", "result.codes"
    info: dict


# --- the app ----------------------------------------------------------------------------------------------------


def create_app(models: dict[str, Bundle], settings: ServeSettings | None = None) -> FastAPI:
    """The API and the page over `models` (loaded bundles by name; the first is the default), bounded by `settings`."""
    settings = settings or ServeSettings()
    if not models:
        raise AudiolmError("--models: no model bundle to serve")
    names = list(models)
    scheduler = Scheduler(settings.workers, settings.queue, settings.cpu_threads, settings.timeout)
    page_jobs: OrderedDict[str, Job] = OrderedDict()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler.start()
        hooks = [hook for bundle in models.values() for hook in watch_models(bundle.audiolm)]
        try:
            yield
        finally:
            await run_in_threadpool(scheduler.stop)
            for hook in hooks:
                hook.remove()

    app = FastAPI(title="audiolm", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="AudioLM over HTTP: continue a prompt, generate, resynthesize, the codec, and the detector. Each "
                              "generation endpoint takes a multipart form and answers a 16-bit PCM WAV; /v1/detect answers "
                              'JSON; errors are `{"error": "<one line>"}`. The page at / uses the job endpoints.')
    app.state.settings, app.state.scheduler, app.state.models = settings, scheduler, models
    app.add_middleware(Guard, max_bytes=settings.upload_bytes, max_requests=settings.requests)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)

    @app.exception_handler(AudiolmError)
    async def bad_input(request: Request, error: AudiolmError):
        return error_response(422, str(error))

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy):
        return error_response(503, str(error), retry_after=error.retry_after)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge):
        return error_response(413, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return error_response(error.status_code, error.detail if isinstance(error.detail, str) else repr(error.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error: {type(error).__name__}: {error}")

    def bundle_of(options) -> Bundle:
        return models[options.models]

    async def read_form(request: Request, fields: list[forms.Field]):
        form = await request.form(max_files=4, max_fields=64, max_part_size=64 * 1024)
        return forms.parse_form(form, fields)

    # --- generation ----------------------------------------------------------------------------------------------

    fields = {"continue": forms.continue_fields(settings, names), "generate": forms.generate_fields(settings, names),
              "resynth": forms.resynth_fields(settings, names)}

    async def read_audio(mode: str, options, bundle: Bundle, folder: Path) -> torch.Tensor | None:
        """The input of `mode` as `[1, 1, L]` (None for generate): an upload or a bundled prompt, read as the CLI reads it."""
        from audiolm.cli.generate import check_resynth_input, read_prompt, read_resynth_input

        if mode == "generate":
            return None
        if options.audio is not None and options.prompt is not None:
            raise AudiolmError("give audio (an upload) or prompt (a bundled prompt's name), not both")
        if options.audio is None and options.prompt is None:
            raise AudiolmError("audio: required (or prompt: the name of one of the bundle's prompts)")
        if options.audio is not None:
            name = client_name(options.audio.filename)
            path = await run_in_threadpool(save_upload, options.audio, folder)
        else:
            path = bundle.prompt_path(options.prompt)
            name = options.prompt
        rate = bundle.audiolm.sample_rate
        if mode == "continue":
            return await run_in_threadpool(read_named, lambda p: read_prompt(p, rate, options.prompt_seconds), path, name)

        def read_whole(p: Path) -> torch.Tensor:
            check_resynth_input(p, settings.max_seconds)
            return read_resynth_input(p, rate)

        return await run_in_threadpool(read_named, read_whole, path, name)

    def steps_of(mode: str, options, bundle: Bundle, page: bool) -> list[str]:
        audiolm = bundle.audiolm
        acoustic = audiolm.acoustic_stage(options.acoustic)  # a bundle without that stage: 422 before any work
        acoustic_steps = ["parallel"] if acoustic == "parallel" else ["coarse"] + (["fine"] if audiolm.fine is not None else [])
        first = {"continue": ["tokenize", "encode"] + ([] if getattr(options, "acoustic_only", False) else ["semantic"]),
                 "generate": ["semantic"], "resynth": ["tokenize", "encode"]}[mode]
        return first + acoustic_steps + ["decode"] + (["plot"] if page else [])

    async def submit_generation(mode: str, options, folder: Path, page: bool) -> Job:
        from audiolm.cli.generate import acoustic_options, build_sampling

        bundle = bundle_of(options)
        audiolm = bundle.audiolm
        limits.check_count("top_k", options.top_k, 0, max(audiolm.vocabularies.values()))  # the bundle's own bound
        sampling = build_sampling(options, audiolm)
        steps = steps_of(mode, options, bundle, page)
        scheduler.check_capacity()  # full: refused before any audio is read
        wav = await read_audio(mode, options, bundle, folder)

        def work(job: Job) -> Output:  # in a worker thread
            acoustic = acoustic_options(options)
            if mode == "continue":
                out = audiolm.continue_audio(wav, options.seconds, options.seed, sampling, acoustic_only=options.acoustic_only,
                                             **acoustic)
            elif mode == "generate":
                out = audiolm.generate(options.seconds, options.seed, sampling, **acoustic)
            else:
                out = audiolm.resynthesize(wav, options.seed, sampling, **acoustic)
            rate = out.sample_rate
            files = {"result.wav": wav_bytes(out.wav[0], rate, folder / "result.wav")}
            info = {"mode": mode, "models": bundle.name, "seconds": round(out.wav.shape[-1] / rate, 3),
                    "prompt_seconds": round(out.prompt_seconds, 3), "acoustic": out.acoustic, "watermark": out.watermarked,
                    "seconds_per_stage": {k: round(v, 3) for k, v in out.seconds_per_stage.items()}}
            if page:
                if wav is not None:
                    files["prompt.wav"] = wav_bytes(wav[0], rate, folder / "prompt.wav")
                job.enter("plot")
                label = f"result (new audio from {out.prompt_seconds:.2f} s)" if mode == "continue" else "result"
                files["result.png"] = png_bytes(label, out.wav[0], rate, folder / "result.png")
                if wav is not None:
                    files["prompt.png"] = png_bytes("prompt" if mode == "continue" else "input", wav[0], rate, folder / "prompt.png")
            return Output(files, info)

        return scheduler.submit(mode, steps, work, folder)

    async def failure(request: Request, job: Job) -> JSONResponse | None:
        """Wait for `job`: None once it is done, else the error to answer (503 past the time limit)."""
        if not await scheduler.wait(job, request):
            return error_response(503, scheduler.time_limit_message(), retry_after=scheduler.retry_after())
        if job.state != "done":
            return error_response(job.status, job.error, retry_after=scheduler.retry_after() if job.status == 503 else None)
        return None

    async def answer(request: Request, job: Job, file: str, media_type: str, download: str) -> Response:
        """Wait for `job` and answer its `file`, or its error."""
        error = await failure(request, job)
        if error is not None:
            return error
        output: Output = job.result
        headers = {"Content-Disposition": f'attachment; filename="{download}"'}
        for key in ("seconds", "prompt_seconds", "acoustic", "watermark"):
            if key in output.info:
                value = output.info[key]
                headers[f"X-Audiolm-{key.replace('_', '-').title()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return Response(output.files[file], media_type=media_type, headers=headers)

    def generation_endpoint(mode: str, summary: str):
        async def endpoint(request: Request) -> Response:
            options = await read_form(request, fields[mode])
            job = await in_folder(lambda folder: submit_generation(mode, options, folder, page=False))
            return await answer(request, job, "result.wav", WAV, f"{mode}.wav")

        app.add_api_route(f"/v1/{mode}", endpoint, methods=["POST"], summary=summary, response_class=Response,
                          openapi_extra=forms.openapi_body(fields[mode]), responses=_audio_responses(WAV))

    generation_endpoint("continue", "Continue a prompt, keeping its voice: the prompt's part (codec-decoded), then the new audio")
    generation_endpoint("generate", "Unconditional generation")
    generation_endpoint("resynth", "The input's words (semantic tokens), a new voice drawn by the seed")

    # --- the codec ---------------------------------------------------------------------------------------------------

    encode_fields, decode_fields = forms.encode_fields(settings, names), forms.decode_fields(settings, names)

    @app.post("/v1/codec/encode", summary="Audio -> a .codes file (the format `audiolm codec encode` writes)", response_class=Response,
              openapi_extra=forms.openapi_body(encode_fields), responses=_audio_responses(CODES))
    async def codec_encode(request: Request) -> Response:
        from audiolm.cli.codec import codebooks, read_encode_input
        from audiolm.codec.codes_file import save_codes

        options = await read_form(request, encode_fields)
        codec = bundle_of(options).audiolm.codec
        n = codebooks(codec, None, options.bitrate)
        name = client_name(options.audio.filename)

        async def start(folder: Path) -> Job:
            scheduler.check_capacity()
            path = await run_in_threadpool(save_upload, options.audio, folder)
            wav = await run_in_threadpool(read_named, lambda p: read_encode_input(p, codec, settings.max_input_seconds), path, name)

            def work(job: Job) -> Output:
                with torch.inference_mode():
                    codes = codec.encode(wav[None], n)  # [1, K, T]
                out = save_codes(folder / "result.codes", codes, codec, wav.shape[-1])
                return Output({"result.codes": out.read_bytes()}, {"seconds": round(wav.shape[-1] / codec.sample_rate, 3)})

            return scheduler.submit("encode", ["encode"], work, folder)

        job = await in_folder(start)
        return await answer(request, job, "result.codes", CODES, f"{Path(name).stem}.codes")

    @app.post("/v1/codec/decode", summary="A .codes file -> audio", response_class=Response,
              openapi_extra=forms.openapi_body(decode_fields), responses=_audio_responses(WAV))
    async def codec_decode(request: Request) -> Response:
        from audiolm.cli.codec import decode_codes, read_codes

        options = await read_form(request, decode_fields)
        codec = bundle_of(options).audiolm.codec
        name = client_name(options.codes.filename)

        async def start(folder: Path) -> Job:
            scheduler.check_capacity()
            path = await run_in_threadpool(save_upload, options.codes, folder)
            stored = await run_in_threadpool(read_named, lambda p: read_codes(p, settings.max_input_seconds), path, name)
            await run_in_threadpool(read_named, lambda p: stored.check(codec, p), path, name)  # another codec's codes: 422 now

            def work(job: Job) -> Output:
                wav = decode_codes(stored, name, codec)
                return Output({"result.wav": wav_bytes(wav[0], codec.sample_rate, folder / "result.wav")},
                              {"seconds": round(wav.shape[-1] / codec.sample_rate, 3)})

            return scheduler.submit("decode", ["decode"], work, folder)

        job = await in_folder(start)
        return await answer(request, job, "result.wav", WAV, f"{Path(name).stem}.wav")

    # --- the detector ------------------------------------------------------------------------------------------------

    detect_fields = forms.detect_fields(settings, names)
    detect_seconds = min(settings.max_input_seconds, limits.MAX_DETECT_SECONDS)

    @app.post("/v1/detect", summary="Was this audio generated? The bundle's detector and the watermark: one line of `audiolm detect`",
              openapi_extra=forms.openapi_body(detect_fields), responses=_detect_responses())
    async def detect(request: Request) -> JSONResponse:
        from audiolm.audio.io import load_audio
        from audiolm.detector.score import score_file
        from audiolm.watermark import SAMPLE_RATE

        options = await read_form(request, detect_fields)
        detector = bundle_of(options).detector
        name = client_name(options.audio.filename)

        async def start(folder: Path) -> Job:
            scheduler.check_capacity()
            path = await run_in_threadpool(save_upload, options.audio, folder)
            wav = await run_in_threadpool(read_named, lambda p: load_audio(p, SAMPLE_RATE, duration=detect_seconds), path, name)

            def work(job: Job) -> dict:
                job.enter("detect")
                return {"path": name, **score_file(wav, detector)}

            # Through the pool, not inline: a minute of audio costs about a second of CPU and 150 MB (the watermark's
            # whitening, the CNN over every window at once), both growing with the input up to --max-input-seconds, so
            # it keeps to --workers, --threads, --queue and --timeout like the generations.
            return scheduler.submit("detect", ["detect"], work, folder)

        job = await in_folder(start)
        error = await failure(request, job)
        return error if error is not None else JSONResponse(job.result)

    # --- the page's jobs: submit, poll, fetch ----------------------------------------------------------------------------

    job_fields = forms.job_fields(settings, names)

    def prune() -> None:
        """Drop finished page jobs past --result-seconds, then the oldest beyond --results."""
        now = time.monotonic()
        finished = [job for job in page_jobs.values() if job.done.is_set()]
        for job in finished:
            if now - job.finished_at > settings.result_seconds:
                page_jobs.pop(job.id, None)
        finished = [job for job in page_jobs.values() if job.done.is_set()]
        for job in finished[: max(0, len(finished) - settings.results)]:
            page_jobs.pop(job.id, None)

    def describe(job: Job) -> dict:
        body = {"id": job.id, "mode": job.mode, "state": job.state, "step": job.step, "steps": job.steps,
                "step_names": {s: STEPS[s] for s in job.steps}, "progress": round(job.progress(), 3),
                "queue_position": scheduler.position(job),
                "elapsed": round((job.finished_at or time.monotonic()) - job.accepted, 2), "error": job.error}
        if job.state == "done":
            output: Output = job.result
            body["result"] = output.info
            body["files"] = {name: f"/v1/jobs/{job.id}/{name}" for name in output.files}
        return body

    @app.post("/v1/jobs", status_code=202, summary="Start a generation for the page: answers its id at once; poll GET /v1/jobs/{id}",
              openapi_extra=forms.openapi_body(job_fields))
    async def create_job(request: Request) -> JSONResponse:
        form = await request.form(max_files=4, max_fields=64, max_part_size=64 * 1024)
        mode = forms.parse_form(_only(form, "mode"), [job_fields[0]]).mode
        options = forms.parse_form(_without(form, "mode"), fields[mode])
        prune()
        job = await in_folder(lambda folder: submit_generation(mode, options, folder, page=True))
        page_jobs[job.id] = job
        return JSONResponse(describe(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    def find(job_id: str) -> Job:
        prune()
        job = page_jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept {settings.result_seconds:g} s)")
        return job

    @app.get("/v1/jobs/{job_id}", summary="A page job's state, step and progress; its files once done")
    async def job_status(job_id: str) -> JSONResponse:
        return JSONResponse(describe(find(job_id)))

    @app.delete("/v1/jobs/{job_id}", summary="Cancel a page job (it stops at its next model call) or drop its result")
    async def cancel_job(job_id: str) -> JSONResponse:
        job = find(job_id)
        job.cancel("cancelled by the client")
        if job.done.is_set():
            page_jobs.pop(job.id, None)
        return JSONResponse(describe(job))

    @app.get("/v1/jobs/{job_id}/{name}", summary="A finished page job's file: result.wav, prompt.wav, result.png, prompt.png",
             response_class=Response)
    async def job_file(job_id: str, name: str) -> Response:
        job = find(job_id)
        if job.state != "done" or name not in job.result.files:
            raise HTTPException(404, f"job {job_id!r} has no {name!r}" + ("" if job.state == "done" else f" (it is {job.state})"))
        return Response(job.result.files[name], media_type=RESULT_FILES.get(name, CODES), headers={"Cache-Control": "no-store"})

    # --- health, info, prompts, the page ----------------------------------------------------------------------------------

    @app.get("/health", summary="Liveness and load")
    async def health() -> dict:
        running = scheduler.running
        return {"status": "ok", "models": names, "running": running, "waiting": len(scheduler.pending) - running,
                "capacity": settings.capacity}

    @app.get("/v1/info", summary="The bundles (their prompts and acoustic stages) and the limits a request must keep to")
    async def info() -> dict:
        described = []
        for bundle in models.values():
            audiolm = bundle.audiolm
            stages = [s for s in ("parallel", "ar") if (audiolm.parallel if s == "parallel" else audiolm.coarse) is not None]
            described.append({"name": bundle.name, "sample_rate": audiolm.sample_rate, "acoustic": stages,
                              "detector": bundle.detector is not None,
                              "acoustic_only": [s for s in stages if (audiolm.parallel_acoustic if s == "parallel" else audiolm.acoustic)
                                                is not None],
                              "prompts": [{**p, "url": f"/v1/models/{bundle.name}/prompts/{p['file']}"} for p in bundle.prompts]})
        return {"models": described, "modes": list(forms.MODES), "limits": settings.public()}

    @app.get("/v1/models/{name}/prompts/{file}", summary="A bundled prompt's audio", response_class=FileResponse)
    async def prompt_file(name: str, file: str):
        if name not in models:
            raise HTTPException(404, f"no model bundle {name!r}")
        try:
            path = models[name].prompt_path(file)
        except AudiolmError as error:
            raise HTTPException(404, str(error)) from None
        return FileResponse(path, media_type=WAV)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


async def in_folder(start: Callable[[Path], Awaitable[Job]]) -> Job:
    """`await start(folder)` with a new temporary folder for the job's files: `start` hands it to `Scheduler.submit`, which
    deletes it when the job ends (a job stopped by its time limit may still write there after its answer went out); a
    request refused before that leaves nothing behind."""
    folder = Path(tempfile.mkdtemp(prefix="audiolm-serve-"))
    try:
        return await start(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _only(form, key: str):
    from starlette.datastructures import FormData

    return FormData([(k, v) for k, v in form.multi_items() if k == key])


def _without(form, key: str):
    from starlette.datastructures import FormData

    return FormData([(k, v) for k, v in form.multi_items() if k != key])


def _audio_responses(media_type: str) -> dict:
    return {200: {"content": {media_type: {}}}, **_error_responses()}


def _error_responses() -> dict:
    error = {"content": {"application/json": {"example": {"error": "seconds: must be at most 20 (got 100)"}}}}
    return {413: {"description": "body over --max-upload-mb", **error}, 422: {"description": "a bad field or file", **error},
            503: {"description": "busy (Retry-After) or past --timeout", **error}}


def _detect_responses() -> dict:
    from audiolm.watermark import THRESHOLD

    schema = {"type": "object", "required": ["path", "generated", "watermark", "watermark_score"], "properties": {
        "path": {"type": "string", "description": "the file's name, as the client sent it"},
        "generated": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                      "description": "the detector's P(generated by this bundle's models); null when the bundle has no detector/"},
        "watermark": {"type": "boolean", "description": "carries the inaudible mark that generations put on their results"},
        "watermark_score": {"type": "number", "description": "the mark's largest correlation with the key sequence, in standard "
                            f"deviations (watermark: above {THRESHOLD:.2f})"}}}
    example = {"path": "clip.wav", "generated": 0.9731, "watermark": True, "watermark_score": 38.412}
    return {200: {"content": {"application/json": {"schema": schema, "example": example}}}, **_error_responses()}


def _mount_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from the files fastapi-offline ships, so it works with no network."""
    import fastapi_offline

    assets = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="audiolm API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True})
