// The page's sound, on the audio rendering thread (the main thread may be busy laying out the
// transcript; audio must not wait for it).
//  - Capture: the microphone at the context's rate, as 24 kHz pcm16 chunks posted to the main
//    thread ({type: "mic", pcm: ArrayBuffer}), which sends them to the server.
//  - Playback: reply audio posted by the main thread ({type: "play", samples: Float32Array at
//    24 kHz}) is queued and played; {type: "flush"} drops everything queued (barge-in).
//    {type: "playing", playing} goes back when playback starts or runs dry.
// The page asks for a 24 kHz context, so both directions are usually plain copies; the linear
// interpolation is for browsers that run the context at the device's rate instead.

const WIRE_RATE = 24000;
// 50 ms a message: short enough for the server's turn detection (32 ms blocks), few messages.
const CHUNK_SAMPLES = 1200;
// Reply audio comes at the pace it plays: 100 ms queued before playing rides out the jitter of
// the network and of a busy server, at the cost of 100 ms more latency.
const CUSHION_SAMPLES = 2400;

class AgentAudio extends AudioWorkletProcessor {
  constructor() {
    super();
    // Capture: input samples per wire sample, and where the next one falls in the block.
    this.inStep = sampleRate / WIRE_RATE;
    this.inPos = 0;
    this.inLast = 0; // the previous block's last sample, to interpolate across blocks
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    // Playback: a queue of 24 kHz blocks, read from `head` in the first.
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.playing = false;
    this.waited = 0; // wire samples' worth of time waited with too little queued to start
    this.outStep = WIRE_RATE / sampleRate;
    this.outPos = 0;
    this.outPrev = 0;
    this.outNext = 0;
    this.port.onmessage = (event) => this.command(event.data);
  }

  command(message) {
    if (message.type === "play") {
      if (message.samples.length) {
        this.queue.push(message.samples);
        this.queued += message.samples.length;
      }
    } else if (message.type === "flush") {
      this.queue = [];
      this.head = 0;
      this.queued = 0;
      this.waited = 0;
      this.setPlaying(false);
    }
  }

  process(inputs, outputs) {
    const input = inputs[0];
    if (input && input.length) this.capture(input[0]);
    const output = outputs[0];
    if (output && output.length) {
      this.play(output[0]);
      for (let c = 1; c < output.length; c++) output[c].set(output[0]);
    }
    return true; // alive while connected, with or without a microphone
  }

  // -- capture ------------------------------------------------------------------------------

  capture(block) {
    if (this.inStep === 1) {
      for (let i = 0; i < block.length; i++) this.emit(block[i]);
      return;
    }
    // Position -1 is the previous block's last sample; stop before the block's last sample,
    // which the next block interpolates from.
    const n = block.length;
    let pos = this.inPos;
    while (pos < n - 1) {
      const i = Math.floor(pos);
      const a = i < 0 ? this.inLast : block[i];
      this.emit(a + (block[i + 1] - a) * (pos - i));
      pos += this.inStep;
    }
    this.inPos = pos - n;
    this.inLast = block[n - 1];
  }

  emit(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.chunk[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.filled === CHUNK_SAMPLES) {
      const pcm = this.chunk.buffer;
      this.port.postMessage({ type: "mic", pcm }, [pcm]); // transferred, not copied
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.filled = 0;
    }
  }

  // -- playback -----------------------------------------------------------------------------

  play(out) {
    if (!this.playing) {
      // Start with a cushion queued, or with what there is once waiting longer would not
      // bring more (the end of a short reply).
      if (this.queued > 0) this.waited += out.length * this.outStep;
      if (this.queued < CUSHION_SAMPLES && this.waited < CUSHION_SAMPLES) {
        out.fill(0);
        return;
      }
      this.setPlaying(true);
    }
    if (this.outStep === 1) {
      for (let i = 0; i < out.length; i++) out[i] = this.pull();
    } else {
      for (let i = 0; i < out.length; i++) {
        this.outPos += this.outStep;
        while (this.outPos >= 1) {
          this.outPrev = this.outNext;
          this.outNext = this.pull();
          this.outPos -= 1;
        }
        out[i] = this.outPrev + (this.outNext - this.outPrev) * this.outPos;
      }
    }
    if (this.queued === 0) {
      // Ran dry: the reply ended or the network is late; either way, cushion again.
      this.waited = 0;
      this.setPlaying(false);
    }
  }

  pull() {
    if (this.queued === 0) return 0;
    const block = this.queue[0];
    const sample = block[this.head++];
    this.queued--;
    if (this.head === block.length) {
      this.queue.shift();
      this.head = 0;
    }
    return sample;
  }

  setPlaying(playing) {
    if (playing !== this.playing) {
      this.playing = playing;
      this.port.postMessage({ type: "playing", playing });
    }
  }
}

registerProcessor("agent-audio", AgentAudio);
