// The browser's side of a Realtime session with the voice agent: the microphone streams to
// /v1/realtime continuously (the server's turn detection decides when the user has finished,
// and handles barge-in), the reply's audio plays as it comes, and both sides' words are shown.
// Audio on the wire: pcm16 mono at 24 kHz, little-endian, base64 in JSON events.
"use strict";

const WIRE_RATE = 24000;
// Audio not yet sent beyond this (a stalled connection) is dropped rather than queued without
// bound: the server would hear it late anyway.
const MAX_BUFFERED_BYTES = 1 << 20;

const $ = (id) => document.getElementById(id);
const ui = {
  token: $("token"), connect: $("connect"), interrupt: $("interrupt"), status: $("status"),
  transcript: $("transcript"), typed: $("typed"), message: $("message"), send: $("send"),
};

// Read by tests (and handy in the console): what came back from the server.
const stats = (window.agentStats = {
  audioBytesReceived: 0, audioBytesSent: 0, responsesDone: 0, errors: 0, lastError: null,
});

let socket = null;
let sound = null; // {context, node, stream} while connected
let leaving = false; // the user asked to disconnect: the close is not an error
let playing = false; // reply audio is coming out of the speaker
const userEntries = new Map(); // item_id -> <li>, the user's spoken turns
const replyEntries = new Map(); // response_id -> <li>

// -- connection -----------------------------------------------------------------------------

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) ui.status.textContent = text;
  const connected = state === "connected";
  ui.connect.textContent = state === "disconnected" || state === "error" ? "Connect" : "Disconnect";
  ui.connect.disabled = state === "connecting";
  ui.interrupt.disabled = !connected;
  ui.message.disabled = ui.send.disabled = !connected;
}

function tokenFromUrl() {
  // The fragment is never sent to a server, so it is the better place for a token.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  return fromHash || new URLSearchParams(location.search).get("token") || "";
}

async function connect() {
  leaving = false;
  setState("connecting", "Connecting…");
  let micProblem = null;
  try {
    sound = await startSound();
  } catch (error) {
    setState("error", `Sound could not start: ${error.message}`);
    return;
  }
  try {
    await startMicrophone(sound);
  } catch (error) {
    // Still useful without a microphone: typed messages, spoken replies.
    micProblem = window.isSecureContext
      ? `no microphone (${error.message})`
      : "no microphone: browsers allow it only over https or on localhost";
  }
  const token = ui.token.value.trim();
  const protocols = token ? ["realtime", `openai-insecure-api-key.${token}`] : ["realtime"];
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/realtime`, protocols);
  socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    send({
      type: "session.update",
      session: {
        type: "realtime", output_modalities: ["audio"],
        audio: {
          input: { format: { type: "audio/pcm", rate: WIRE_RATE } },
          output: { format: { type: "audio/pcm", rate: WIRE_RATE } },
        },
      },
    });
    const hint = sound && sound.context.state === "suspended"
      ? " Click anywhere to let the page use sound." : "";
    setState("connected", micProblem
      ? `Connected, ${micProblem}: type a message.${hint}`
      : `Connected: listening. Speak when you like.${hint}`);
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onServerEvent(message);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return; // an older connection
    socket = null;
    stopSound();
    if (leaving) {
      setState("disconnected", "Disconnected.");
    } else if (!opened) {
      // The browser hides the HTTP answer (401, 503): name the likely causes.
      setState("error", "Could not connect: is the server running, and is the token right?");
    } else {
      const why = event.reason ? `: ${event.reason}` : "";
      setState("error", `The connection closed (${event.code}${why}).`);
    }
  };
}

function disconnect() {
  leaving = true;
  if (socket) socket.close(1000, "bye");
  else stopSound();
  setState("disconnected", "Disconnected.");
}

function send(event) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
}

// -- sound ----------------------------------------------------------------------------------

async function startSound() {
  // A 24 kHz context: the browser resamples the microphone and the speaker itself, better than
  // the worklet's fallback could.
  let context;
  try {
    context = new AudioContext({ sampleRate: WIRE_RATE, latencyHint: "interactive" });
  } catch {
    context = new AudioContext({ latencyHint: "interactive" });
  }
  await context.audioWorklet.addModule("/audio-worklet.js");
  const node = new AudioWorkletNode(context, "agent-audio", {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
  });
  node.port.onmessage = (event) => onWorkletMessage(event.data);
  node.connect(context.destination);
  if (context.state === "suspended") {
    // Autoplay rules: a page opened without a click may not start sound until the user acts.
    context.resume().catch(() => {});
    const resume = () => context.resume().catch(() => {});
    document.addEventListener("pointerdown", resume, { once: true });
    document.addEventListener("keydown", resume, { once: true });
  }
  return { context, node, stream: null };
}

async function startMicrophone(current) {
  if (!navigator.mediaDevices) throw new Error("getUserMedia is not available");
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  if (sound !== current) { // disconnected while the permission prompt was up
    stream.getTracks().forEach((track) => track.stop());
    return;
  }
  current.stream = stream;
  try {
    current.context.createMediaStreamSource(stream).connect(current.node);
  } catch (error) {
    // Some browsers refuse a microphone whose rate differs from the context's: run the
    // context at the device's rate, and the worklet resamples.
    if (current.context.sampleRate === WIRE_RATE) {
      current.context.close();
      const replacement = await startSound();
      Object.assign(current, replacement, { stream });
      current.context.createMediaStreamSource(stream).connect(current.node);
    } else {
      throw error;
    }
  }
}

function stopSound() {
  if (!sound) return;
  if (sound.stream) sound.stream.getTracks().forEach((track) => track.stop());
  sound.context.close().catch(() => {});
  sound = null;
  setPlaying(false);
}

function onWorkletMessage(message) {
  if (message.type === "mic") {
    // Nothing is sent before the session is open, nor piled up behind a stalled connection.
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) return;
    stats.audioBytesSent += message.pcm.byteLength;
    send({ type: "input_audio_buffer.append", audio: toBase64(message.pcm) });
  } else if (message.type === "playing") {
    setPlaying(message.playing);
  }
}

function setPlaying(value) {
  playing = value;
  document.body.dataset.playing = value ? "true" : "false";
}

function flushPlayback() {
  if (sound) sound.node.port.postMessage({ type: "flush" });
  setPlaying(false);
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function pcm16ToFloat(base64) {
  const binary = atob(base64);
  const samples = new Float32Array(binary.length >> 1);
  for (let i = 0; i < samples.length; i++) {
    const value = binary.charCodeAt(2 * i) | (binary.charCodeAt(2 * i + 1) << 8);
    samples[i] = (value >= 0x8000 ? value - 0x10000 : value) / 0x8000;
  }
  return { samples, bytes: binary.length };
}

// -- server events --------------------------------------------------------------------------

function onServerEvent(event) {
  switch (event.type) {
    case "input_audio_buffer.speech_started":
      // Barge-in: the server stops the reply; what is queued here must stop too, at once.
      if (playing) flushPlayback();
      ui.status.textContent = "Hearing you…";
      break;
    case "input_audio_buffer.speech_stopped":
      ui.status.textContent = "Thinking…";
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const entry = userEntry(event.item_id);
      entry.textContent += event.delta;
      scrollDown();
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const entry = userEntry(event.item_id);
      const text = (event.transcript || "").trim();
      if (text) {
        entry.textContent = text;
        entry.classList.remove("partial");
      } else {
        entry.remove(); // noise, not words
      }
      scrollDown();
      break;
    }
    case "response.created":
      ui.status.textContent = "Replying…";
      break;
    case "response.output_audio.delta": {
      const { samples, bytes } = pcm16ToFloat(event.delta);
      stats.audioBytesReceived += bytes;
      if (sound) sound.node.port.postMessage({ type: "play", samples }, [samples.buffer]);
      break;
    }
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta":
      replyEntry(event.response_id).textContent += event.delta;
      scrollDown();
      break;
    case "response.done":
      finishReply(event.response);
      break;
    case "error":
      onError(event.error || {});
      break;
    default:
      break; // session.created/updated, committed, item.added...: nothing to show
  }
}

function finishReply(response) {
  stats.responsesDone += 1;
  const content = response?.output?.[0]?.content?.[0];
  const text = content ? (content.transcript ?? content.text ?? "") : "";
  // The final text is the server's word for it; an entry appears even for a reply that only
  // spoke before it was cut short.
  if (text || replyEntries.has(response.id)) {
    const entry = replyEntry(response.id);
    if (text) entry.textContent = text;
    entry.classList.remove("partial");
    if (response.status === "cancelled") entry.classList.add("cancelled");
  }
  replyEntries.delete(response.id);
  if (document.body.dataset.state === "connected") ui.status.textContent = "Listening.";
  scrollDown();
}

function onError(error) {
  if (error.code === "response_cancel_not_active") return; // Interrupt with nothing to stop
  stats.errors += 1;
  stats.lastError = error.message || error.code || "error";
  ui.status.textContent = `The server said: ${stats.lastError}`;
}

// -- transcript -----------------------------------------------------------------------------

function addEntry(role, text) {
  const entry = document.createElement("li");
  entry.className = role;
  entry.textContent = text;
  ui.transcript.append(entry);
  return entry;
}

function userEntry(itemId) {
  let entry = userEntries.get(itemId);
  if (!entry || !entry.isConnected) {
    entry = addEntry("user partial", "");
    entry.dataset.itemId = itemId;
    userEntries.set(itemId, entry);
  }
  return entry;
}

function replyEntry(responseId) {
  let entry = replyEntries.get(responseId);
  if (!entry) {
    entry = addEntry("assistant partial", "");
    entry.dataset.responseId = responseId;
    replyEntries.set(responseId, entry);
  }
  return entry;
}

function scrollDown() {
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

// -- controls -------------------------------------------------------------------------------

ui.connect.addEventListener("click", () => (socket || sound ? disconnect() : connect()));

ui.interrupt.addEventListener("click", () => {
  flushPlayback();
  send({ type: "response.cancel" });
});

ui.typed.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text || !socket) return;
  addEntry("user", text);
  scrollDown();
  send({
    type: "conversation.item.create",
    item: { type: "message", role: "user", content: [{ type: "input_text", text }] },
  });
  send({ type: "response.create" });
  ui.message.value = "";
});

ui.token.value = tokenFromUrl();
setState("disconnected");
if (new URLSearchParams(location.search).get("autoconnect") === "1") connect();
