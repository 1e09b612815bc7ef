// The genlab playground: a page that talks to this server's /v1 API exactly as any client would
// (same JSON, same Bearer key), so what works here works from curl or the OpenAI SDK.
// Plain JS, no build step and no CDN: the page must work offline, next to a model on a laptop.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "genlab.apiKey";
// Which panel each endpoint gets: the server's model cards say the endpoint, not a task list we'd
// have to keep in sync, so a new task served at an existing endpoint appears here without changes.
const PANELS = {
  "/v1/completions": "text-panel",
  "/v1/images/generations": "image-panel",
  "/v1/classifications": "classify-panel",
  "/v1/audio/generations": "audio-panel",
};

const models = new Map(); // model id -> its card from /v1/models
let conversation = []; // the chat panel's messages so far: {role, content}, sent whole with every turn
let inFlight = null; // the AbortController of the request being answered, if any

// ---- talking to the server ----

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// Every genlab error is {"error": {"message", ...}}; anything else (a proxy's HTML page, a dropped
// connection) still gets a readable line rather than a JSON parse error.
async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
  } catch { /* not JSON: keep the status line */ }
  return new Error(message);
}

async function post(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  return response;
}

// A JSON answer and its latency: from the request to the whole answer read.
async function ask(path, body, signal) {
  const started = performance.now();
  const response = await post(path, body, signal);
  const answer = await response.json();
  return { answer, latency: performance.now() - started };
}

// Server-sent events from a fetch body. EventSource would be simpler but can only GET, and
// /v1/completions is a POST; this reads the stream as it arrives, so text shows token by token.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (data) yield data;
    }
  }
}

// ---- formatting ----

function formatCount(n) {
  for (const [size, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (n >= size) return `${(n / size).toPrecision(3).replace(/\.?0+$/, "")}${unit}`;
  }
  return String(n);
}

function formatFlops(flops) {
  const units = ["", "k", "M", "G", "T", "P", "E"];
  let i = 0;
  while (flops >= 1000 && i < units.length - 1) { flops /= 1000; i += 1; }
  return `${flops.toFixed(flops < 10 && i > 0 ? 1 : 0)} ${units[i]}FLOP`;
}

function formatMs(ms) {
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// ---- page state ----

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function showStats({ latency, cost, usage, firstToken }) {
  $("latency").textContent = latency == null ? "–"
    : formatMs(latency) + (firstToken == null ? "" : ` (first token ${formatMs(firstToken)})`);
  const flops = cost?.flops == null ? "" : ` · ${formatFlops(cost.flops)}`; // music answers count no FLOPs
  $("cost").textContent = cost ? `${formatMs(cost.seconds * 1000)}${flops}` : "–";
  $("usage").textContent = usage ? `${usage.prompt_tokens} in · ${usage.completion_tokens} out` : "–";
  $("usage-wrap").hidden = !usage;
}

// Show one kind of result (output, images, bars, clips, speech or music) and clear the previous answer's numbers.
function showResult(kind) {
  $("result").hidden = false;
  for (const id of ["output", "images", "bars", "clips", "speech", "music"]) $(id).hidden = id !== kind;
  showStats({});
}

function setBusy(busy, streaming = false) {
  // The model picker stays live: switching models mid-answer aborts the answer (selectModel).
  $("generate").disabled = $("classify").disabled = busy;
  $("stop").disabled = !streaming;
}

function numberField(id) {
  const text = $(id).value.trim();
  return text === "" ? undefined : Number(text); // empty: let the server use its default
}

// ---- models ----

async function loadModels() {
  const picker = $("model");
  picker.disabled = true;
  try {
    const response = await fetch("/v1/models", { headers: authHeaders() });
    if (!response.ok) throw await failure(response);
    const previous = picker.value;
    models.clear();
    picker.replaceChildren();
    for (const card of (await response.json()).data) {
      models.set(card.id, card);
      picker.append(new Option(`${card.id} — ${card.task}, ${formatCount(card.parameters)} parameters`, card.id));
    }
    if (models.has(previous)) picker.value = previous;
    picker.disabled = false;
    showError("");
    selectModel();
  } catch (error) {
    picker.replaceChildren(new Option("no models (see the error below)", ""));
    showError(error.message);
  }
}

function selectModel() {
  inFlight?.abort(); // an answer for the previous model has nowhere to go
  const card = models.get($("model").value);
  if (!card) return;
  // A chat model: a conversation, not a prompt; a speaking model: a sentence, not labels; a music model: pieces
  // heard and seen, not its tokens.
  const panel = card.chat ? "chat-panel" : card.speech ? "speech-panel" : card.music ? "music-panel"
    : PANELS[card.endpoint];
  for (const id of [...Object.values(PANELS), "chat-panel", "speech-panel", "music-panel"]) {
    $(id).hidden = id !== panel;
  }
  $("generate").hidden = card.endpoint === "/v1/classifications";
  $("generate").textContent = card.chat ? "Send" : card.speech ? "Speak" : "Generate";
  $("classify").hidden = card.endpoint !== "/v1/classifications";
  $("stop").hidden = !streams(card);
  musicOptions(card);
  resetChat();
  $("model-info").textContent = describe(card);
  $("result").hidden = true;
  showError("");
  const picker = { "/v1/images/generations": "label", "/v1/audio/generations": "audio-label" }[card.endpoint];
  if (picker) {
    // Omitting the label asks for every class in turn; an unconditional model has no other choice.
    const options = [new Option(card.labels ? "every class" : "unconditional", "")];
    for (const name of card.labels ?? []) options.push(new Option(name, name));
    $(picker).replaceChildren(...options);
    $(picker).disabled = !card.labels;
  }
}

function streams(card) {
  return card.endpoint === "/v1/completions" && !card.music;
}

// A field per option the card lists, showing its default: the server checks the values (an unknown mode is
// its error line), so the page needs to know no task's options.
function musicOptions(card) {
  $("music-options").replaceChildren(...Object.entries(card.music ?? {}).map(([name, value]) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "text";
    input.size = 8;
    input.dataset.option = name;
    input.value = String(value);
    label.append(name.replace(/_/g, " "), " ", input);
    return label;
  }));
}

function describe(card) {
  const parts = [card.task, `${card.parameters.toLocaleString("en")} parameters`];
  if (card.context) parts.push(`context ${card.context} tokens`);
  if (card.labels) parts.push(`${card.labels.length} labels`);
  const validation = card.quality?.validation ?? {};
  for (const metric of ["loss", "perplexity", "accuracy", "macro_f1"]) {
    if (typeof validation[metric] === "number") parts.push(`${metric} ${validation[metric].toFixed(3)}`);
  }
  const route = card.chat ? "/v1/chat/completions" : card.speech ? "/v1/audio/speech"
    : card.music ? "/v1/music/generations" : card.endpoint;
  parts.push(`POST ${route}`);
  return parts.join(" · ");
}

// ---- the endpoints ----

async function complete(card, signal) {
  const prompt = $("prompt").value;
  const output = $("output");
  const completion = $("completion");
  const started = performance.now();
  const response = await post("/v1/completions", {
    model: card.id, prompt, stream: true, stream_options: { include_usage: true },
    temperature: numberField("temperature"), top_p: numberField("top-p"),
    frequency_penalty: numberField("frequency-penalty"),
    max_tokens: numberField("max-tokens"), seed: numberField("text-seed"),
  }, signal);
  showResult("output");
  $("prompt-echo").textContent = prompt;
  completion.replaceChildren();
  output.dataset.state = "streaming"; // shows the caret; tests wait for "done"
  let firstToken = null;
  let final = {};
  try {
    for await (const data of serverSentEvents(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message); // a failure after the 200 arrives in-stream
      const piece = chunk.choices?.[0]?.text;
      if (piece) {
        firstToken ??= performance.now() - started;
        completion.append(piece); // a new text node: no re-render of what is already there
        output.scrollTop = output.scrollHeight;
      }
      if (chunk.usage) final = { usage: chunk.usage, cost: chunk.genlab };
    }
    output.dataset.state = "done";
  } catch (error) {
    output.dataset.state = error.name === "AbortError" ? "stopped" : "error";
    if (error.name !== "AbortError") throw error;
  } finally {
    showStats({ latency: performance.now() - started, firstToken, ...final });
  }
}

function resetChat() {
  conversation = [];
  $("chat-log").replaceChildren();
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text; // textContent: a model's words are never markup
  $("chat-log").append(div);
  return div;
}

// One turn: the whole conversation (and the system prompt) goes to /v1/chat/completions, the answer streams
// into a new bubble and joins the conversation; a failed turn leaves the conversation as it was.
async function chat(card, signal) {
  const content = $("chat-message").value.trim();
  if (!content) throw new Error("type a message first");
  const system = $("chat-system").value.trim();
  const messages = [...(system ? [{ role: "system", content: system }] : []), ...conversation,
    { role: "user", content }];
  const started = performance.now();
  const asked = bubble("user", content);
  const answer = bubble("assistant", "");
  answer.dataset.state = "streaming";
  let firstToken = null;
  let final = {};
  try {
    const response = await post("/v1/chat/completions", {
      model: card.id, messages, stream: true, stream_options: { include_usage: true },
      temperature: numberField("chat-temperature"), max_tokens: numberField("chat-max-tokens"),
    }, signal);
    for await (const data of serverSentEvents(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        firstToken ??= performance.now() - started;
        answer.append(piece);
        $("chat-log").scrollTop = $("chat-log").scrollHeight;
      }
      if (chunk.usage) final = { usage: chunk.usage, cost: chunk.genlab };
    }
  } catch (error) {
    asked.remove();
    answer.remove();
    throw error;
  }
  answer.dataset.state = "done";
  conversation.push({ role: "user", content }, { role: "assistant", content: answer.textContent });
  $("chat-message").value = "";
  showResult("none");
  showStats({ latency: performance.now() - started, firstToken, ...final });
}

async function generateImages(card, signal) {
  const label = $("label").value;
  const text = $("image-text").value.trim(); // a line of text, for runs that draw it (a font-style run)
  const prompt = $("image-prompt").value.trim(); // a caption, for text-conditioned runs
  const { answer, latency } = await ask("/v1/images/generations", {
    model: card.id, n: numberField("n"), seed: numberField("seed"), label: label || undefined,
    text: text || undefined, prompt: prompt || undefined,
  }, signal);
  showResult("images");
  $("images").replaceChildren(...answer.data.map((image) => {
    const figure = document.createElement("figure");
    const img = text ? new Image() : new Image(84, 84); // 28x28 scaled 3x; a line of text at its own size
    img.src = `data:image/png;base64,${image.b64_json}`;
    img.alt = image.label == null ? "generated image" : `generated ${image.label}`;
    figure.append(img);
    if (image.label != null) {
      const caption = document.createElement("figcaption");
      caption.textContent = image.label;
      figure.append(caption);
    }
    return figure;
  }));
  showStats({ latency, cost: answer.genlab });
}

async function classify(card, signal) {
  const body = { model: card.id, input: $("classify-text").value };
  const { answer, latency } = await ask("/v1/classifications", body, signal);
  const { label: predicted, scores } = answer.data[0];
  const probability = new Map(scores.map((s) => [s.label, s.probability]));
  // The card's label order, not the answer's likeliest-first order, so that bars stay in place
  // from one text to the next and the eye compares lengths rather than hunting for names.
  const labels = card.labels ?? scores.map((s) => s.label);
  showResult("bars");
  $("bars").replaceChildren(...labels.map((label) => {
    const p = probability.get(label) ?? 0;
    const row = document.createElement("div");
    row.className = label === predicted ? "bar predicted" : "bar";
    row.innerHTML = '<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span>'
      + '<span class="bar-value"></span>';
    row.querySelector(".bar-label").textContent = label; // textContent: labels come from training data
    row.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector(".bar-value").textContent = `${(p * 100).toFixed(1)}%`;
    return row;
  }));
  showStats({ latency, cost: answer.genlab, usage: answer.usage });
}

async function generateAudio(card, signal) {
  const label = $("audio-label").value;
  const text = $("audio-text").value.trim();
  const { answer, latency } = await ask("/v1/audio/generations", {
    model: card.id, n: numberField("audio-n"), seed: numberField("audio-seed"),
    label: text ? undefined : label || undefined, text: text || undefined,
  }, signal);
  showResult("clips");
  $("clips").replaceChildren(...answer.data.map((clip) => {
    const figure = document.createElement("figure");
    const audio = new Audio(`data:audio/wav;base64,${clip.b64_json}`);
    audio.controls = true;
    const caption = document.createElement("figcaption");
    caption.textContent = `${clip.words} · ${clip.seconds.toFixed(2)} s`;
    figure.append(audio, caption);
    return figure;
  }));
  showStats({ latency, cost: answer.genlab });
}

// The sentence said by /v1/audio/speech: the answer is the WAV itself, so its cost comes in headers and
// the player gets a blob URL (the previous one released, or every sentence would stay in memory).
async function speak(card, signal) {
  const input = $("speech-text").value; // as typed: the server's refusal (empty, too long, unsayable) is the line shown
  const started = performance.now();
  const response = await post("/v1/audio/speech", { model: card.id, input, voice: "allison", response_format: "wav" },
    signal);
  const wav = await response.blob();
  const latency = performance.now() - started;
  const audio = $("speech-audio");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(wav);
  showResult("speech");
  $("speech-info").textContent = `${formatCount(wav.size)}B WAV`;
  audio.addEventListener("loadedmetadata", () => {
    $("speech-info").textContent = `${audio.duration.toFixed(2)} s · ${formatCount(wav.size)}B WAV`;
  }, { once: true });
  const seconds = Number(response.headers.get("X-Genlab-Seconds"));
  const flops = Number(response.headers.get("X-Genlab-Flops"));
  showStats({ latency, cost: response.headers.has("X-Genlab-Seconds") ? { seconds, flops } : null });
}

// Pieces from /v1/music/generations: the piano roll to look at, the WAV in the player, the MIDI to download.
async function compose(card, signal) {
  const options = {};
  for (const input of $("music-options").querySelectorAll("input")) {
    const text = input.value.trim();
    if (text !== "") options[input.dataset.option] = text; // as typed: the server converts and checks
  }
  const { answer, latency } = await ask("/v1/music/generations", {
    model: card.id, n: numberField("music-n"), seed: numberField("music-seed"), options,
  }, signal);
  showResult("music");
  $("music-roll").src = `data:image/png;base64,${answer.png}`;
  $("music-audio").src = `data:audio/wav;base64,${answer.wav}`;
  $("music-midi").href = `data:audio/midi;base64,${answer.mid}`;
  $("music-info").textContent = `${answer.pieces} piece${answer.pieces > 1 ? "s" : ""}`;
  $("music-audio").addEventListener("loadedmetadata", () => {
    $("music-info").textContent += ` · ${$("music-audio").duration.toFixed(1)} s`;
  }, { once: true });
  showStats({ latency, cost: answer.genlab });
}

const HANDLERS = {
  "/v1/completions": complete,
  "/v1/images/generations": generateImages,
  "/v1/classifications": classify,
  "/v1/audio/generations": generateAudio,
};

async function submit(event) {
  event.preventDefault();
  const card = models.get($("model").value);
  if (!card || inFlight) return;
  const controller = new AbortController();
  inFlight = controller;
  showError("");
  setBusy(true, streams(card));
  try {
    const handler = card.chat ? chat : card.speech ? speak : card.music ? compose : HANDLERS[card.endpoint];
    await handler(card, controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") {
      $("result").hidden = true; // the error box replaces the answer: no stale result next to it
      showError(error.message);
    }
  } finally {
    inFlight = null;
    setBusy(false);
  }
}

// ---- wiring ----

function init() {
  const key = $("api-key");
  key.value = localStorage.getItem(KEY_STORAGE) ?? "";
  let reload = null;
  key.addEventListener("input", () => {
    localStorage.setItem(KEY_STORAGE, key.value.trim());
    clearTimeout(reload);
    reload = setTimeout(loadModels, 300); // once typing pauses, not on every keystroke
  });
  $("model").addEventListener("change", selectModel);
  $("form").addEventListener("submit", submit);
  $("stop").addEventListener("click", () => inFlight?.abort());
  $("chat-reset").addEventListener("click", () => { inFlight?.abort(); resetChat(); });
  $("form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("form").requestSubmit();
  });
  loadModels();
}

init();
