// The page: pick an input (a bundled prompt, an upload, or a recording), a mode, a length and a seed; start a job
// (POST /v1/jobs), poll its progress (GET /v1/jobs/{id}), then play and show the prompt and the result.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = ["done", "failed", "cancelled"];
let info = null;      // GET /v1/info
let recorded = null;  // a File: the last recording, as a 16-bit WAV
let recorder = null;  // the recording in progress
let job = null;       // the job in progress

function checked(name) { return document.querySelector(`input[name=${name}]:checked`).value; }
function bundle() { return info.models.find((m) => m.name === $("models").value); }

async function start() {
  const response = await fetch("/v1/info");
  info = await response.json();
  for (const m of info.models) $("models").add(new Option(m.name, m.name));
  $("models-row").hidden = info.models.length < 2;
  $("seconds").max = info.limits.max_seconds;
  $("prompt-seconds").max = info.limits.max_prompt_seconds;
  $("models").addEventListener("change", onModels);
  $("prompt").addEventListener("change", onInput);
  $("upload").addEventListener("change", onInput);
  for (const r of document.querySelectorAll("input[name=source]")) r.addEventListener("change", onInput);
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", onMode);
  $("record").addEventListener("click", toggleRecording);
  $("new-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 100000); });
  $("request").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("acoustic").addEventListener("change", onAcoustic);
  onModels();
  onMode();
  document.body.dataset.ready = "true";
}

function onModels() {
  const select = $("prompt");
  select.innerHTML = "";
  for (const p of bundle().prompts) select.add(new Option(`${p.speaker || p.file} (${p.seconds} s)`, p.file));
  const stages = bundle().acoustic;  // the bundle's acoustic stages, the default first
  for (const option of $("acoustic").options) option.hidden = !stages.includes(option.value);
  $("acoustic").value = stages[0];
  $("acoustic-row").hidden = stages.length < 2;
  onAcoustic();
  onInput();
}

function onAcoustic() {  // the acoustic-only baseline of the chosen stage, where the bundle has it
  $("acoustic-only-row").hidden = checked("mode") !== "continue" || !bundle().acoustic_only.includes($("acoustic").value);
}

function onInput() {
  const source = checked("source");
  for (const div of document.querySelectorAll(".source")) div.hidden = div.dataset.source !== source;
  const prompt = bundle().prompts.find((p) => p.file === $("prompt").value);
  $("prompt-text").textContent = prompt && prompt.text ? `“${prompt.text}”` : "";
  const preview = $("input-preview");
  if (source === "bundled" && prompt) preview.src = prompt.url;
  else if (source === "upload" && $("upload").files.length) preview.src = URL.createObjectURL($("upload").files[0]);
  else if (source === "record" && recorded) preview.src = URL.createObjectURL(recorded);
  else preview.removeAttribute("src");
}

function onMode() {
  const mode = checked("mode");
  for (const el of document.querySelectorAll("[data-for]")) el.hidden = !el.dataset.for.split(" ").includes(mode);
  onAcoustic();
  document.querySelector("section.card").classList.toggle("unused", mode === "generate");
  $("seconds").value = Math.min(Number($("seconds").value) || 3, info.limits.max_seconds);
}

// --- recording: 16-bit mono WAV from the microphone, through an AudioWorklet ---------------------------------

async function toggleRecording() {
  if (recorder) { stopRecording(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/recorder-worklet.js");
    const node = new AudioWorkletNode(context, "recorder");
    const silent = context.createGain();
    silent.gain.value = 0;
    context.createMediaStreamSource(stream).connect(node).connect(silent).connect(context.destination);
    const longest = Math.max(info.limits.max_prompt_seconds, info.limits.max_seconds);
    recorder = { stream, context, chunks: [], samples: 0 };
    node.port.onmessage = (event) => {
      if (!recorder) return;
      recorder.chunks.push(event.data);
      recorder.samples += event.data.length;
      const seconds = recorder.samples / context.sampleRate;
      $("record-status").textContent = `recording: ${seconds.toFixed(1)} s`;
      if (seconds >= longest) stopRecording();
    };
    $("record").textContent = "Stop";
    $("record").classList.add("recording");
  } catch (error) {
    showError(`cannot record: ${error.message}`);
  }
}

function stopRecording() {
  const { stream, context, chunks, samples } = recorder;
  recorder = null;
  for (const track of stream.getTracks()) track.stop();
  const all = new Float32Array(samples);
  let at = 0;
  for (const chunk of chunks) { all.set(chunk, at); at += chunk.length; }
  recorded = new File([wavFile(all, context.sampleRate)], "recording.wav", { type: "audio/wav" });
  context.close();
  $("record").textContent = "Record again";
  $("record").classList.remove("recording");
  $("record-status").textContent = `recorded ${(samples / context.sampleRate).toFixed(1)} s`;
  onInput();
}

function wavFile(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, samples[i])) * 32767, true);
  return view.buffer;
}

// --- a job: submit, poll, show ---------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  if (recorder) stopRecording();
  const mode = checked("mode");
  const form = new FormData();
  form.append("mode", mode);
  form.append("models", $("models").value);
  if (mode !== "generate") {
    const source = checked("source");
    if (source === "bundled") form.append("prompt", $("prompt").value);
    else if (source === "upload" && $("upload").files.length) form.append("audio", $("upload").files[0]);
    else if (source === "record" && recorded) form.append("audio", recorded);
    else { showError(source === "record" ? "record something first" : "choose a file first"); return; }
  }
  if (mode !== "resynth") form.append("seconds", $("seconds").value);
  if (mode === "continue") {
    form.append("prompt_seconds", $("prompt-seconds").value);
    if ($("acoustic-only").checked && !$("acoustic-only-row").hidden) form.append("acoustic_only", "true");
  }
  form.append("seed", $("seed").value);
  form.append("acoustic", $("acoustic").value);
  showError(null);
  $("results").hidden = true;
  setBusy(true);
  let response, body;
  try {
    response = await fetch("/v1/jobs", { method: "POST", body: form });
    body = await response.json();
  } catch (error) {
    body = { error: `the server did not answer (${error.message})` };
  }
  if (!response || !response.ok) {
    const retry = response && response.headers.get("Retry-After");
    showError(body.error + (retry ? ` (retry in ${retry} s)` : ""));
    setBusy(false);
    return;
  }
  job = body;
  render(job);
  poll(job.id);
}

async function poll(id) {
  if (!job || job.id !== id) return;
  try {
    const response = await fetch(`/v1/jobs/${id}`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error);
    job = body;
  } catch (error) {
    showError(`lost the job: ${error.message}`);
    setBusy(false);
    return;
  }
  render(job);
  if (FINISHED.includes(job.state)) finish(job);
  else setTimeout(() => poll(id), 300);
}

function render(j) {
  $("progress-card").hidden = false;
  $("progress").value = j.progress;
  const current = j.steps.indexOf(j.step);
  const list = $("steps");
  list.innerHTML = "";
  j.steps.forEach((step, i) => {
    const li = document.createElement("li");
    li.textContent = j.step_names[step];
    li.className = j.state === "done" || i < current ? "done" : i === current && j.state === "running" ? "active" : "";
    list.appendChild(li);
  });
  const status = {
    queued: `waiting for a worker: ${j.queue_position} ahead (${j.elapsed.toFixed(1)} s)`,
    running: `${j.step ? j.step_names[j.step] : "starting"}… ${j.elapsed.toFixed(1)} s`,
    done: `done in ${j.elapsed.toFixed(1)} s`,
    failed: "failed", cancelled: "stopped",
  }[j.state];
  $("status").textContent = status;
}

function finish(j) {
  setBusy(false);
  job = null;
  if (j.state !== "done") { showError(j.error); return; }
  const files = j.files;
  const hasPrompt = "prompt.wav" in files;
  $("prompt-result").hidden = !hasPrompt;
  $("prompt-title").textContent = j.mode === "resynth" ? "Input" : "Prompt";
  if (hasPrompt) {
    $("prompt-audio").src = files["prompt.wav"];
    $("prompt-spectrogram").src = files["prompt.png"];
  }
  $("result-audio").src = files["result.wav"];
  $("result-spectrogram").src = files["result.png"];
  $("download").href = files["result.wav"];
  $("download").download = `${j.mode}-seed${$("seed").value}.wav`;
  const r = j.result;
  $("result-info").textContent = j.mode === "continue"
    ? `${r.seconds.toFixed(2)} s: the prompt's ${r.prompt_seconds.toFixed(2)} s, then new audio`
    : `${r.seconds.toFixed(2)} s`;
  $("results").hidden = false;
  $("results").dataset.job = j.id;
  verdict(files["result.wav"], r.models);
}

async function verdict(url, models) {  // the detector's verdict on the result, as POST /v1/detect gives it
  const line = $("result-detect");
  line.dataset.result = url;
  line.textContent = "detector: …";
  let text;
  try {
    const form = new FormData();
    form.append("audio", new File([await (await fetch(url)).blob()], "result.wav", { type: "audio/wav" }));
    form.append("models", models);
    const response = await fetch("/v1/detect", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error);
    const generated = body.generated === null ? "none in this bundle" : `P(generated) = ${body.generated.toFixed(2)}`;
    text = `detector: ${generated}; watermark: ${body.watermark ? "yes" : "no"} (score ${body.watermark_score.toFixed(1)})`;
  } catch (error) {
    text = `detector: no verdict (${error.message})`;
  }
  if (line.dataset.result === url) line.textContent = text;  // not a later result's line
}

async function cancel() {
  if (job) await fetch(`/v1/jobs/${job.id}`, { method: "DELETE" });
}

function setBusy(busy) {
  $("generate").disabled = busy;
  $("cancel").hidden = !busy;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

start().catch((error) => showError(`cannot reach the server: ${error.message}`));
